module GraLoRA.Scripting.Tests.ScriptTests

open System.IO
open Xunit
open GraLoRA.Scripting.Tests.Support

// Scripts run in a child `dotnet fsi`, as a user runs them.
[<Fact>]
let ``examples/00-devices.fsx runs with dotnet fsi against the built assembly`` () =
    let code, output = runDotnet repoRoot [] [ "fsi"; "--quiet"; Path.Combine("examples", "00-devices.fsx") ]
    Assert.True((code = 0), output)
    Assert.Contains("devices: cpu", output)
    Assert.Contains("tensor check: ok", output)

[<Fact>]
let ``a script loading TorchSharp from the NuGet cache gets a patched copy in the cache folder`` () =
    let dir = tempDir ()
    let cache = Path.Combine(dir, "native-cache")
    let core = Path.Combine(repoRoot, "src", "GraLoRA.Scripting", "bin", "Release", "net8.0", "GraLoRA.Core.dll")
    let script = Path.Combine(dir, "nuget.fsx")
    let lines =
        [ $"#r \"nuget: TorchSharp-cpu, {torchSharpVersion}\""
          $"#r @\"{core}\""
          "let report = GraLoRA.Native.TorchNativeLoader.EnsureLoaded()"
          "GraLoRA.TorchRuntime.EnsureInitialized()"
          "let total = TorchSharp.torch.ones(3L, 3L).sum().item<float32>()"
          "printfn \"loaded=%s patched=%b total=%g\" report.LibTorchSharpLoaded report.UsedPatchedCopy total" ]
    File.WriteAllLines(script, lines)
    let code, output = runDotnet dir [ "GRALORA_NATIVE_CACHE", cache ] [ "fsi"; "--quiet"; script ]
    Assert.True((code = 0), output)
    Assert.Contains($"loaded={cache}", output)
    Assert.Contains("patched=true", output)
    Assert.Contains("total=9", output)
    Assert.Single(Directory.GetFiles(cache, "libLibTorchSharp.so", SearchOption.AllDirectories)) |> ignore

[<Fact>]
let ``examples/01-fsharp-pipeline.fsx trains a tiny model, exports it and answers`` () =
    let code, output = runDotnet repoRoot [] [ "fsi"; "--quiet"; Path.Combine("examples", "01-fsharp-pipeline.fsx") ]
    Assert.True((code = 0), output)
    Assert.Matches(@"step +150/150 +loss \d", output)
    Assert.Contains("(falling)", output)
    Assert.Matches(@"answer: \S", output)
    Assert.Contains("exported: ", output)
