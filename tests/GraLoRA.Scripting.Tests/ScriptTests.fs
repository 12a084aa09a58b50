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

// The package route: pack Core and Scripting (already built) into a fresh feed under a version no cache has seen,
// then run examples/04-nuget-package.fsx against it from a folder whose nuget.config names that feed, as
// examples/nuget.config names artifacts/feed.
[<Fact>]
let ``examples/04-nuget-package.fsx runs from a packed local feed with #r nuget`` () =
    let dir = tempDir ()
    let feed = Path.Combine(dir, "feed")
    let version = "0.1.0-test." + System.DateTime.UtcNow.ToString "yyyyMMddHHmmssfff"
    for project in [ "GraLoRA.Core"; "GraLoRA.Scripting" ] do
        let code, output =
            runDotnet repoRoot [] [ "pack"; Path.Combine("src", project); "-c"; "Release"; "--no-build"; "--nologo"; "-o"; feed; $"-p:Version={version}" ]
        Assert.True((code = 0), output)
    Assert.True(File.Exists(Path.Combine(feed, $"GraLoRA.Scripting.{version}.nupkg")))
    let examples = Path.Combine(repoRoot, "examples")
    let config = File.ReadAllText(Path.Combine(examples, "nuget.config"))
    Assert.Contains("value=\"../artifacts/feed\"", config)
    File.WriteAllText(Path.Combine(dir, "nuget.config"), config.Replace("../artifacts/feed", feed))
    let example = File.ReadAllText(Path.Combine(examples, "04-nuget-package.fsx"))
    Assert.Contains("#r \"nuget: GraLoRA.Scripting, 0.1.0\"", example)
    let script = Path.Combine(dir, "package.fsx")
    File.WriteAllText(
        script,
        example
            .Replace("#r \"nuget: GraLoRA.Scripting, 0.1.0\"", $"#r \"nuget: GraLoRA.Scripting, {version}\"")
            .Replace("__SOURCE_DIRECTORY__", $"@\"{examples}\""))
    let cache = Path.Combine(dir, "native-cache")
    let code, output = runDotnet dir [ "GRALORA_NATIVE_CACHE", cache ] [ "fsi"; "--quiet"; script ]
    Assert.True((code = 0), output)
    Assert.Contains($"libLibTorchSharp: {cache}", output)
    Assert.Contains("(patched copy: true)", output)
    Assert.Matches(@"trainable parameters: [1-9]\d*", output)
    Assert.Matches(@"trained 4 steps, loss \d+\.\d+ -> \d+\.\d+", output)
    // The throwaway version would otherwise stay in the global packages folder.
    let packages =
        match System.Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
        | null | "" -> Path.Combine(System.Environment.GetFolderPath System.Environment.SpecialFolder.UserProfile, ".nuget", "packages")
        | folder -> folder
    for id in [ "gralora.core"; "gralora.scripting" ] do
        let folder = Path.Combine(packages, id, version)
        if Directory.Exists folder then Directory.Delete(folder, true)
