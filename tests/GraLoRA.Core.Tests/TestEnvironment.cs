using System;
using System.IO;
using System.Linq;
using System.Reflection;

namespace GraLoRA.Tests
{
    /// <summary>Paths the tests need, recorded at build time.</summary>
    internal static class TestEnvironment
    {
        static string Metadata(string key) =>
            typeof(TestEnvironment).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
            ?? throw new InvalidOperationException("missing build metadata " + key);

        public static string RepoRoot => Metadata("RepoRoot");

        /// <summary>
        /// Reference outputs of transformers and PEFT: $GRALORA_FIXTURES, else ../shared/fixtures beside the checkout.
        /// </summary>
        public static string Fixtures
        {
            get
            {
                string? env = Environment.GetEnvironmentVariable("GRALORA_FIXTURES");
                string dir = !string.IsNullOrEmpty(env) ? env : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures"));
                if (!File.Exists(Path.Combine(dir, "manifest.json")))
                    throw new InvalidOperationException($"Reference fixtures not found at '{dir}': clone beside the project's shared/ folder or set GRALORA_FIXTURES.");
                return dir;
            }
        }

        /// <summary>
        /// Fixtures generated for this repository outside it (tests/GraLoRA.Core.Tests/Fixtures; how: the README there).
        /// </summary>
        public static string LocalFixtures => Path.Combine(RepoRoot, "tests", "GraLoRA.Core.Tests", "Fixtures");

        /// <summary>The library as shipped in the NuGet cache: never modified by anything we do.</summary>
        public static string OriginalLibTorchSharp => Path.Combine(Metadata("NuGetPackageRoot"), "torchsharp",
            Metadata("TorchSharpVersion"), "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

        /// <summary>The copy the build put beside the tests.</summary>
        public static string OutputLibTorchSharp => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    /// <summary>A folder deleted at dispose.</summary>
    internal sealed class TempDirectory : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "gralora-test-" + Guid.NewGuid().ToString("N"));
        public TempDirectory() => Directory.CreateDirectory(Path);
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose()
        {
            try { Directory.Delete(Path, true); } catch (IOException) { }
        }
    }
}
