using System.IO;
using GraLoRA.Native;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>Checks of a GRALORA_LIBTORCH folder before anything loads (the loading itself is tested from Pester, in child processes).</summary>
    public class LibTorchFolderTests
    {
        static string Layout(TempDirectory dir, string? versionPy = null, string? buildVersion = null, bool cuda = false)
        {
            string lib = Path.Combine(dir.Path, "site-packages", "torch", "lib");
            Directory.CreateDirectory(lib);
            foreach (var name in TorchNativeLoader.RequiredLibraries) File.WriteAllText(Path.Combine(lib, name), "");
            if (cuda) File.WriteAllText(Path.Combine(lib, "libtorch_cuda.so"), "");
            if (versionPy != null) File.WriteAllText(Path.Combine(lib, "..", "version.py"), versionPy);
            if (buildVersion != null) File.WriteAllText(Path.Combine(lib, "..", "build-version"), buildVersion);
            return lib;
        }

        [Fact]
        public void ReadsPipsVersionFileAndCuda()
        {
            using var dir = new TempDirectory();
            string lib = Layout(dir, "from typing import Optional\n__version__ = '2.11.0+cu130'\ncuda: Optional[str] = '13.0'\n", cuda: true);
            var found = TorchNativeLoader.InspectLibTorchFolder(lib, TorchNativeLoader.LibTorchVariable);
            Assert.Equal(lib, found.Directory);
            Assert.Equal("2.11.0+cu130", found.Version);
            Assert.True(found.HasCuda);
            Assert.False(found.VersionMatches);
            Assert.Equal(TorchNativeLoader.LibTorchVariable, found.Origin);
        }

        [Fact]
        public void AcceptsTheTorchFolderAboveLibAndLibtorchsBuildVersion()
        {
            using var dir = new TempDirectory();
            string lib = Layout(dir, buildVersion: "2.10.0+cpu\n");
            var found = TorchNativeLoader.InspectLibTorchFolder(Path.GetDirectoryName(lib)!, "option");
            Assert.Equal(lib, found.Directory);
            Assert.Equal("2.10.0+cpu", found.Version);
            Assert.True(found.VersionMatches);
            Assert.False(found.HasCuda);
        }

        [Fact]
        public void AFolderWithoutAVersionStatesNone()
        {
            using var dir = new TempDirectory();
            Assert.Null(TorchNativeLoader.InspectLibTorchFolder(Layout(dir), "option").Version);
        }

        [Theory]
        [InlineData("2.10.0+cpu", "2.10.0", true)]
        [InlineData("2.10", "2.10.0", true)]
        [InlineData("2.1.0", "2.10.0", false)]
        [InlineData("2.11.0+cu130", "2.10.0", false)]
        [InlineData("1.13.0a0", "2.10.0", false)]
        public void ComparesMajorAndMinor(string found, string expected, bool same) =>
            Assert.Equal(same, TorchNativeLoader.SameMinor(found, expected));

        [Fact]
        public void AMissingLibraryIsNamedWithTheVariable()
        {
            using var dir = new TempDirectory();
            string lib = Layout(dir);
            File.Delete(Path.Combine(lib, "libtorch_cpu.so"));
            var ex = Assert.Throws<GraloraException>(() => TorchNativeLoader.InspectLibTorchFolder(lib, TorchNativeLoader.LibTorchVariable));
            Assert.Equal("LibTorchPathInvalid", ex.ErrorId);
            Assert.Contains($"GRALORA_LIBTORCH='{lib}'", ex.Message);
            Assert.Contains("libtorch_cpu.so not found", ex.Message);
        }
    }
}
