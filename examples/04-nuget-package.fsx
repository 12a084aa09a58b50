// The F# toolkit from a NuGet package instead of the build output: what a user outside this checkout writes.
// Run after './build.sh pack' (packs GraLoRA.Core and GraLoRA.Scripting into artifacts/feed):
//     dotnet fsi examples/04-nuget-package.fsx
// The feed comes from examples/nuget.config (dotnet fsi reads the nuget.config beside the script; `#i "nuget: <folder>"`
// works too, but only with an absolute path). NuGet caches a package version once: after repacking, bump it
// (GRALORA_PACKAGE_VERSION=0.1.1 ./build.sh pack and the version below) or delete ~/.nuget/packages/gralora.*.
#r "nuget: GraLoRA.Scripting, 0.1.0"

open System.IO
open GraLoRA.Scripting

// Loads libtorch from the NuGet cache; on Debian 12 (GCC 12's libstdc++) that needs a patched copy of
// libLibTorchSharp.so, which Runtime.init makes once in ~/.cache/gralora/native (or $GRALORA_NATIVE_CACHE).
Runtime.init ()
let native = GraLoRA.Native.TorchNativeLoader.EnsureLoaded()
printfn "libLibTorchSharp: %s (patched copy: %b)" native.LibTorchSharpLoaded native.UsedPatchedCopy

let work = Path.Combine(Path.GetTempPath(), "gralora-pkg-" + string (System.Guid.NewGuid()))
let data = Path.Combine(__SOURCE_DIRECTORY__, "data", "tiny-chat.jsonl")
let model = BaseModel.tiny (Path.Combine(work, "base")) |> Adapter.add { GraLoRA.defaults with Rank = 8; K = Fixed 2 }
printfn "trainable parameters: %d" (Adapter.parameterCounts model).Trainable

let result, _ =
    model
    |> Train.runWith ignore System.Threading.CancellationToken.None
        { Train.defaults with Dataset = data; MaxLength = 64; BatchSize = 4; MaxSteps = Some 4; LearningRate = 1e-2; LoggingSteps = 1 }
printfn "trained %d steps, loss %.4f -> %.4f" result.Steps result.History[0].Loss result.History[result.History.Count - 1].Loss
model.Dispose()
Directory.Delete(work, true)
