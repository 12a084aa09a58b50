using System;
using System.IO;
using System.Linq;
using GraLoRA.Native;
using Xunit;

namespace GraLoRA.Tests
{
    public class ElfVersionNeedPatcherTests
    {
        static VersionNeedView Need(string path) =>
            new(ElfVersionNeedPatcher.ReadVersionNeeds(path).Single(n => n.File == "libstdc++.so.6" && n.Version == "GLIBCXX_3.4.32"));

        sealed record VersionNeedView(ElfVersionNeedPatcher.VersionNeed Need)
        {
            public bool IsWeak => Need.IsWeak;
        }

        [Fact]
        public void ShippedLibraryHasAStrongNeedAndTheNuGetCacheIsNeverModified()
        {
            // The premise of the whole fix, and proof that building (which hard-links natives) left the cache alone.
            Assert.True(File.Exists(TestEnvironment.OriginalLibTorchSharp), TestEnvironment.OriginalLibTorchSharp);
            Assert.False(Need(TestEnvironment.OriginalLibTorchSharp).IsWeak);
            Assert.Equal(ElfPatchOutcome.Patched, ElfVersionNeedPatcher.Inspect(TestEnvironment.OriginalLibTorchSharp));
        }

        [Fact]
        public void BuildOutputCopyIsPatched()
        {
            Assert.True(Need(TestEnvironment.OutputLibTorchSharp).IsWeak);
            Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionNeedPatcher.Inspect(TestEnvironment.OutputLibTorchSharp));
        }

        [Fact]
        public void PatchChangesExactlyTheOneFlagAndNothingElse()
        {
            using var dir = new TempDirectory();
            string copy = dir.File("libLibTorchSharp.so");
            File.Copy(TestEnvironment.OriginalLibTorchSharp, copy);
            var before = ElfVersionNeedPatcher.ReadVersionNeeds(copy);

            Assert.Equal(ElfPatchOutcome.Patched, ElfVersionNeedPatcher.Patch(copy));

            byte[] original = File.ReadAllBytes(TestEnvironment.OriginalLibTorchSharp);
            byte[] patched = File.ReadAllBytes(copy);
            Assert.Equal(original.Length, patched.Length);
            var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToArray();
            long flagsOffset = before.Single(n => n.Version == "GLIBCXX_3.4.32").FlagsOffset;
            Assert.Equal(new[] { (int)flagsOffset }, changed);          // low byte of vna_flags only
            Assert.Equal(original[flagsOffset] | 0x2, patched[flagsOffset]);

            var after = ElfVersionNeedPatcher.ReadVersionNeeds(copy);
            Assert.Equal(before.Count, after.Count);
            for (int i = 0; i < before.Count; i++)
            {
                Assert.Equal(before[i].Version, after[i].Version);
                Assert.Equal(before[i].Version == "GLIBCXX_3.4.32", after[i].IsWeak);
            }
        }

        [Fact]
        public void PatchIsIdempotentAndDoesNotRewriteAPatchedFile()
        {
            using var dir = new TempDirectory();
            string copy = dir.File("libLibTorchSharp.so");
            File.Copy(TestEnvironment.OriginalLibTorchSharp, copy);
            ElfVersionNeedPatcher.Patch(copy);
            byte[] once = File.ReadAllBytes(copy);
            var stamp = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
            File.SetLastWriteTimeUtc(copy, stamp);

            Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionNeedPatcher.Patch(copy));
            Assert.Equal(once, File.ReadAllBytes(copy));
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(copy));
        }

        [Fact]
        public void AVersionTheLibraryDoesNotNeedIsLeftAlone()
        {
            using var dir = new TempDirectory();
            string copy = dir.File("libLibTorchSharp.so");
            File.Copy(TestEnvironment.OriginalLibTorchSharp, copy);
            Assert.Equal(ElfPatchOutcome.NotNeeded, ElfVersionNeedPatcher.Patch(copy, "libstdc++.so.6", "GLIBCXX_9.9.99"));
            Assert.Equal(File.ReadAllBytes(TestEnvironment.OriginalLibTorchSharp), File.ReadAllBytes(copy));
        }

        public static TheoryData<string, Func<byte[], byte[]>, string> Malformed => new()
        {
            { "text", _ => System.Text.Encoding.ASCII.GetBytes("this is not a shared library\n"), "no ELF magic number" },
            { "elf32", b => With(b, 4, 1), "not a 64-bit ELF file" },
            { "big-endian", b => With(b, 5, 2), "not little-endian" },
            { "executable", b => With(b, 16, 2), "not a shared object" },
            { "truncated", b => b.Take(4096).ToArray(), "beyond the end of the file" },
            { "empty", _ => Array.Empty<byte>(), "no ELF magic number" },
        };

        static byte[] With(byte[] b, int offset, byte value)
        {
            var copy = (byte[])b.Clone();
            copy[offset] = value;
            return copy;
        }

        [Theory]
        [MemberData(nameof(Malformed))]
        public void UnexpectedLayoutsAreRefusedAndLeftUntouched(string name, Func<byte[], byte[]> corrupt, string expected)
        {
            using var dir = new TempDirectory();
            string path = dir.File(name + ".so");
            byte[] content = corrupt(File.ReadAllBytes(TestEnvironment.OriginalLibTorchSharp));
            File.WriteAllBytes(path, content);

            var ex = Assert.Throws<ElfFormatException>(() => ElfVersionNeedPatcher.Patch(path));
            Assert.Contains(expected, ex.Message);
            Assert.Contains(path, ex.Message);
            Assert.Contains("not changed", ex.Message);
            Assert.Equal(content, File.ReadAllBytes(path));
            Assert.Single(Directory.GetFiles(dir.Path));                 // no temp file left behind
        }

        [Fact]
        public void PreparedCopyLivesInTheCacheAndIsReused()
        {
            using var cache = new TempDirectory();
            string first = TorchNativeLoader.PreparePatchedCopy(TestEnvironment.OriginalLibTorchSharp, cache.Path);
            Assert.StartsWith(cache.Path, first);
            Assert.True(Need(first).IsWeak);
            Assert.False(Need(TestEnvironment.OriginalLibTorchSharp).IsWeak);
            var stamp = File.GetLastWriteTimeUtc(first);

            string second = TorchNativeLoader.PreparePatchedCopy(TestEnvironment.OriginalLibTorchSharp, cache.Path);
            Assert.Equal(first, second);
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(second));
        }

        [Fact]
        public void AnAlreadyCompatibleLibraryIsUsedInPlace()
        {
            using var cache = new TempDirectory();
            Assert.Equal(TestEnvironment.OutputLibTorchSharp, TorchNativeLoader.PreparePatchedCopy(TestEnvironment.OutputLibTorchSharp, cache.Path));
            Assert.Empty(Directory.GetFileSystemEntries(cache.Path));
        }
    }
}
