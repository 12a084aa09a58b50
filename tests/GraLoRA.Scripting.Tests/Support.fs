module GraLoRA.Scripting.Tests.Support

open System
open System.Diagnostics
open System.IO
open System.Reflection

// TorchSharp's random generator is process-wide: seeded adapter initialisation and training in one test must not
// interleave with another test's draws (the Core-parity test compares weights bit for bit), so tests run one at a time.
[<assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)>]
do ()

let private metadata key =
    Assembly.GetExecutingAssembly().GetCustomAttributes<AssemblyMetadataAttribute>()
    |> Seq.find (fun a -> a.Key = key)
    |> fun a -> match a.Value with null -> failwithf "missing build metadata %s" key | v -> v

/// The checkout this test assembly was built from.
let repoRoot = metadata "RepoRoot"
let torchSharpVersion = metadata "TorchSharpVersion"

/// A fresh folder under the temp directory.
let tempDir () =
    let dir = Path.Combine(Path.GetTempPath(), "gralora-fs-" + Guid.NewGuid().ToString "N")
    Directory.CreateDirectory dir |> ignore
    dir

/// Runs `dotnet <args>` in `workDir` with extra environment variables; returns exit code and all output.
let runDotnet (workDir: string) (env: (string * string) list) (args: string list) =
    let psi = ProcessStartInfo("dotnet", args, WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true)
    for k, v in env do psi.Environment[k] <- v
    use p = match Process.Start psi with null -> failwith "dotnet did not start" | p -> p
    let stdout = p.StandardOutput.ReadToEndAsync()
    let stderr = p.StandardError.ReadToEnd()
    if not (p.WaitForExit 600_000) then p.Kill true
    p.ExitCode, stdout.Result + stderr
