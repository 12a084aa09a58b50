// One source file, compiled twice: into GraLoRA.Core (runtime helper) and, by
// build/TorchNative.targets, into an MSBuild inline task that patches build outputs.
// It must therefore depend on nothing but netstandard2.0's BCL (the inline task compiles
// against it) and MSBuild inside the task block.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace GraLoRA.Native
{
    /// <summary>What <see cref="ElfVersionNeedPatcher"/> found or did.</summary>
    public enum ElfPatchOutcome
    {
        /// <summary>The library does not ask for the version at all: nothing to do.</summary>
        NotNeeded,
        /// <summary>The need was already weak: nothing written.</summary>
        AlreadyWeak,
        /// <summary>The need was strong and has been (or would be) made weak.</summary>
        Patched,
    }

    /// <summary>Raised when a file is not the ELF layout the patcher understands; the file is left untouched.</summary>
    public sealed class ElfFormatException : Exception
    {
        /// <summary>Creates the exception for <paramref name="path"/>.</summary>
        public ElfFormatException(string path, string problem)
            : base($"'{path}' is not a patchable ELF shared library: {problem}. The file was not changed.") { }
    }

    /// <summary>
    /// Marks one version requirement (a Vernaux entry of .gnu.version_r) of an ELF64
    /// little-endian shared library as weak (VER_FLG_WEAK). TorchSharp 0.107.0's
    /// libLibTorchSharp.so asks for GLIBCXX_3.4.32 (GCC 13) although no relocation binds a
    /// symbol of that version; a weak need lets it load on GCC 12 systems (Debian 12,
    /// Ubuntu 22.04) and is still met normally where the version exists.
    /// </summary>
    public static class ElfVersionNeedPatcher
    {
        /// <summary>The library file TorchSharp loads on Linux.</summary>
        public const string LibraryFileName = "libLibTorchSharp.so";
        /// <summary>The dependency whose version is requested.</summary>
        public const string DefaultDependency = "libstdc++.so.6";
        /// <summary>The version that GCC 12 systems lack.</summary>
        public const string DefaultVersion = "GLIBCXX_3.4.32";

        const uint ShtGnuVerneed = 0x6ffffffe;
        const ushort VerFlagWeak = 0x2;

        /// <summary>Where one requirement sits in the file.</summary>
        public sealed class VersionNeed
        {
            /// <summary>Dependency file name (vn_file).</summary>
            public string File = "";
            /// <summary>Version name (vna_name).</summary>
            public string Version = "";
            /// <summary>Flags (vna_flags).</summary>
            public ushort Flags;
            /// <summary>File offset of vna_flags.</summary>
            public long FlagsOffset;
            /// <summary>True when VER_FLG_WEAK is set.</summary>
            public bool IsWeak => (Flags & VerFlagWeak) != 0;
        }

        /// <summary>Lists every version requirement of the library at <paramref name="path"/>.</summary>
        public static IReadOnlyList<VersionNeed> ReadVersionNeeds(string path)
        {
            byte[] image = System.IO.File.ReadAllBytes(path);
            return ParseVersionNeeds(image, path);
        }

        /// <summary>Reports what <see cref="Patch"/> would do, without writing.</summary>
        public static ElfPatchOutcome Inspect(string path, string dependency = DefaultDependency, string version = DefaultVersion)
        {
            var need = Find(ReadVersionNeeds(path), dependency, version);
            if (need == null) return ElfPatchOutcome.NotNeeded;
            return need.IsWeak ? ElfPatchOutcome.AlreadyWeak : ElfPatchOutcome.Patched;
        }

        /// <summary>
        /// Patches <paramref name="path"/> in place (via a temporary file and a rename, so a hard
        /// link to a shared copy is replaced rather than modified). Idempotent.
        /// </summary>
        public static ElfPatchOutcome Patch(string path, string dependency = DefaultDependency, string version = DefaultVersion)
            => PatchTo(path, path, dependency, version);

        /// <summary>
        /// Writes a patched copy of <paramref name="source"/> to <paramref name="destination"/>
        /// (which may be the same path). The destination is written to a temporary file,
        /// re-parsed to verify that exactly the one flag changed, then renamed into place.
        /// </summary>
        public static ElfPatchOutcome PatchTo(string source, string destination, string dependency = DefaultDependency, string version = DefaultVersion)
        {
            byte[] image = System.IO.File.ReadAllBytes(source);
            var needs = ParseVersionNeeds(image, source);
            var need = Find(needs, dependency, version);
            ElfPatchOutcome outcome;
            if (need == null) outcome = ElfPatchOutcome.NotNeeded;
            else if (need.IsWeak) outcome = ElfPatchOutcome.AlreadyWeak;
            else
            {
                outcome = ElfPatchOutcome.Patched;
                WriteUInt16(image, need.FlagsOffset, (ushort)(need.Flags | VerFlagWeak));
                Verify(image, needs, need, source);
            }

            bool samePath = string.Equals(Path.GetFullPath(source), Path.GetFullPath(destination), StringComparison.Ordinal);
            if (outcome != ElfPatchOutcome.Patched && samePath) return outcome;

            string fullDestination = Path.GetFullPath(destination);
            string directory = Path.GetDirectoryName(fullDestination)!;
            Directory.CreateDirectory(directory);
            string temp = Path.Combine(directory, "." + Path.GetFileName(fullDestination) + "." + Guid.NewGuid().ToString("N") + ".tmp");
            try
            {
                using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
                {
                    stream.Write(image, 0, image.Length);
                    stream.Flush(true);
                }
                CopyUnixMode(source, temp);
                // rename(2) on Unix: readers see the old file or the new one, never a mix.
                if (System.IO.File.Exists(fullDestination)) System.IO.File.Replace(temp, fullDestination, null);
                else System.IO.File.Move(temp, fullDestination);
            }
            finally
            {
                if (System.IO.File.Exists(temp)) System.IO.File.Delete(temp);
            }
            return outcome;
        }

        static void CopyUnixMode(string from, string to)
        {
#if GRALORA_CORE
            if (OperatingSystem.IsWindows()) return;
            System.IO.File.SetUnixFileMode(to, System.IO.File.GetUnixFileMode(from) | UnixFileMode.UserRead | UnixFileMode.UserWrite);
#endif
        }

        static VersionNeed? Find(IReadOnlyList<VersionNeed> needs, string dependency, string version)
        {
            foreach (var n in needs)
                if (n.File == dependency && n.Version == version) return n;
            return null;
        }

        // Re-parse the modified image: the same entries must be there and only the target's flags differ.
        static void Verify(byte[] image, IReadOnlyList<VersionNeed> before, VersionNeed target, string path)
        {
            var after = ParseVersionNeeds(image, path);
            if (after.Count != before.Count)
                throw new ElfFormatException(path, "verification failed: the version-need table changed shape");
            for (int i = 0; i < after.Count; i++)
            {
                var a = after[i];
                var b = before[i];
                bool isTarget = b.FlagsOffset == target.FlagsOffset;
                ushort expected = isTarget ? (ushort)(b.Flags | VerFlagWeak) : b.Flags;
                if (a.File != b.File || a.Version != b.Version || a.Flags != expected)
                    throw new ElfFormatException(path, $"verification failed at entry {b.File}/{b.Version}");
            }
        }

        static IReadOnlyList<VersionNeed> ParseVersionNeeds(byte[] image, string path)
        {
            if (image.Length < 64 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F')
                throw new ElfFormatException(path, "no ELF magic number");
            if (image[4] != 2) throw new ElfFormatException(path, "not a 64-bit ELF file (EI_CLASS is not ELFCLASS64)");
            if (image[5] != 1) throw new ElfFormatException(path, "not little-endian (EI_DATA is not ELFDATA2LSB)");
            ushort type = ReadUInt16(image, 16, path);
            if (type != 3) throw new ElfFormatException(path, $"not a shared object (e_type {type}, expected ET_DYN 3)");

            long shoff = checked((long)ReadUInt64(image, 0x28, path));
            ushort shentsize = ReadUInt16(image, 0x3A, path);
            ushort shnum = ReadUInt16(image, 0x3C, path);
            if (shoff <= 0 || shnum == 0) throw new ElfFormatException(path, "no section header table");
            if (shentsize != 64) throw new ElfFormatException(path, $"unexpected section header size {shentsize}");
            if (shoff + (long)shnum * shentsize > image.Length) throw new ElfFormatException(path, "section header table lies beyond the end of the file");

            var result = new List<VersionNeed>();
            bool found = false;
            for (int s = 0; s < shnum; s++)
            {
                long sh = shoff + (long)s * shentsize;
                uint shType = ReadUInt32(image, sh + 4, path);
                if (shType != ShtGnuVerneed) continue;
                if (found) throw new ElfFormatException(path, "more than one .gnu.version_r section");
                found = true;
                long offset = checked((long)ReadUInt64(image, sh + 0x18, path));
                long size = checked((long)ReadUInt64(image, sh + 0x20, path));
                uint link = ReadUInt32(image, sh + 0x28, path);
                uint count = ReadUInt32(image, sh + 0x2C, path);
                if (offset < 0 || size < 0 || offset + size > image.Length) throw new ElfFormatException(path, ".gnu.version_r lies beyond the end of the file");
                if (link >= shnum) throw new ElfFormatException(path, ".gnu.version_r links to a missing string table");
                long strSh = shoff + (long)link * shentsize;
                long strOffset = checked((long)ReadUInt64(image, strSh + 0x18, path));
                long strSize = checked((long)ReadUInt64(image, strSh + 0x20, path));
                if (strOffset < 0 || strSize < 0 || strOffset + strSize > image.Length) throw new ElfFormatException(path, "string table lies beyond the end of the file");

                long vn = offset;
                for (uint i = 0; i < count; i++)
                {
                    if (vn < offset || vn + 16 > offset + size) throw new ElfFormatException(path, "a Verneed entry lies outside .gnu.version_r");
                    ushort vnCnt = ReadUInt16(image, vn + 2, path);
                    string file = ReadString(image, strOffset, strSize, ReadUInt32(image, vn + 4, path), path);
                    uint vnAux = ReadUInt32(image, vn + 8, path);
                    uint vnNext = ReadUInt32(image, vn + 12, path);
                    long aux = vn + vnAux;
                    for (int j = 0; j < vnCnt; j++)
                    {
                        if (aux < offset || aux + 16 > offset + size) throw new ElfFormatException(path, "a Vernaux entry lies outside .gnu.version_r");
                        result.Add(new VersionNeed
                        {
                            File = file,
                            Flags = ReadUInt16(image, aux + 4, path),
                            FlagsOffset = aux + 4,
                            Version = ReadString(image, strOffset, strSize, ReadUInt32(image, aux + 8, path), path),
                        });
                        uint next = ReadUInt32(image, aux + 12, path);
                        if (next == 0 && j + 1 < vnCnt) throw new ElfFormatException(path, "Vernaux chain ends early");
                        aux += next;
                    }
                    if (vnNext == 0 && i + 1 < count) throw new ElfFormatException(path, "Verneed chain ends early");
                    vn += vnNext;
                }
            }
            if (!found) throw new ElfFormatException(path, "no .gnu.version_r (version needs) section");
            return result;
        }

        static string ReadString(byte[] image, long tableOffset, long tableSize, uint index, string path)
        {
            if (index >= tableSize) throw new ElfFormatException(path, "a name lies outside the string table");
            long start = tableOffset + index;
            long end = start;
            long limit = tableOffset + tableSize;
            while (end < limit && image[end] != 0) end++;
            if (end >= limit) throw new ElfFormatException(path, "an unterminated name in the string table");
            return Encoding.ASCII.GetString(image, (int)start, (int)(end - start));
        }

        static void Check(byte[] image, long offset, int width, string path)
        {
            if (offset < 0 || offset + width > image.Length) throw new ElfFormatException(path, "truncated file");
        }
        static ushort ReadUInt16(byte[] b, long o, string p) { Check(b, o, 2, p); return (ushort)(b[o] | b[o + 1] << 8); }
        static uint ReadUInt32(byte[] b, long o, string p) { Check(b, o, 4, p); return (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24); }
        static ulong ReadUInt64(byte[] b, long o, string p) => ReadUInt32(b, o, p) | (ulong)ReadUInt32(b, o + 4, p) << 32;
        static void WriteUInt16(byte[] b, long o, ushort v) { b[o] = (byte)v; b[o + 1] = (byte)(v >> 8); }
    }
}

#if !GRALORA_CORE
namespace GraLoRA.Build
{
    /// <summary>MSBuild task: patch every libLibTorchSharp.so below the given folders.</summary>
    public sealed class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
    {
        /// <summary>Folders to search recursively (an output or publish folder).</summary>
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Folders { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        /// <inheritdoc />
        public override bool Execute()
        {
            foreach (var folder in Folders)
            {
                string dir = folder.ItemSpec;
                if (!Directory.Exists(dir)) continue;
                foreach (var file in Directory.EnumerateFiles(dir, GraLoRA.Native.ElfVersionNeedPatcher.LibraryFileName, SearchOption.AllDirectories))
                {
                    try
                    {
                        var outcome = GraLoRA.Native.ElfVersionNeedPatcher.Patch(file);
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, "GraLoRA: {0}: {1}", file, outcome);
                    }
                    catch (Exception ex)
                    {
                        Log.LogError("GraLoRA native patch failed for {0}: {1}", file, ex.Message);
                    }
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
}
#endif
