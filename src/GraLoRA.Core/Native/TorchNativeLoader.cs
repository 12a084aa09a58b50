using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace GraLoRA.Native
{
    /// <summary>What <see cref="TorchNativeLoader"/> did to make TorchSharp's natives load.</summary>
    public sealed record TorchNativeLoadReport(
        string? LibTorchSharpSource,
        string? LibTorchSharpLoaded,
        bool UsedPatchedCopy,
        string? LibTorchDirectory,
        string Detail);

    /// <summary>
    /// Loads TorchSharp's native glue before TorchSharp initialises, for every kind of host:
    /// build outputs (already patched by build/TorchNative.targets), the PowerShell module's
    /// dependency folder, and hosts that load TorchSharp straight from the NuGet cache
    /// (<c>dotnet fsi</c> with <c>#r "nuget: ..."</c>, notebooks). Where the library found still
    /// has a strong GLIBCXX_3.4.32 need, a patched copy is made in a cache folder (never in the
    /// NuGet cache) and TorchSharp's P/Invokes are pointed at it.
    /// </summary>
    public static class TorchNativeLoader
    {
        /// <summary>libtorch version TorchSharp 0.107.0 was built for.</summary>
        public const string LibTorchVersion = "2.10.0";

        static readonly object Gate = new();
        static TorchNativeLoadReport? _report;
        static IntPtr _handle;

        /// <summary>Environment variable naming the cache folder for patched natives.</summary>
        public const string CacheVariable = "GRALORA_NATIVE_CACHE";

        /// <summary>Runs once per process; later calls return the first report.</summary>
        public static TorchNativeLoadReport EnsureLoaded()
        {
            lock (Gate)
            {
                return _report ??= Load(typeof(TorchSharp.torch).Assembly);
            }
        }

        /// <summary>The folder patched copies go to: $GRALORA_NATIVE_CACHE, else $XDG_CACHE_HOME/gralora/native, else ~/.cache/gralora/native.</summary>
        public static string CacheDirectory()
        {
            string? explicitDir = Environment.GetEnvironmentVariable(CacheVariable);
            if (!string.IsNullOrEmpty(explicitDir)) return explicitDir;
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "gralora", "native");
        }

        /// <summary>
        /// Returns a loadable LibTorchSharp for <paramref name="library"/>: the file itself when its
        /// GLIBCXX need is already weak or absent, otherwise a patched copy in <paramref name="cacheDirectory"/>
        /// (keyed by the original's SHA-256, so different TorchSharp versions never collide).
        /// </summary>
        public static string PreparePatchedCopy(string library, string cacheDirectory)
        {
            if (ElfVersionNeedPatcher.Inspect(library) != ElfPatchOutcome.Patched) return library;
            string hash;
            using (var stream = File.OpenRead(library))
                hash = Convert.ToHexString(SHA256.HashData(stream)).Substring(0, 16).ToLowerInvariant();
            string destination = Path.Combine(cacheDirectory, hash, ElfVersionNeedPatcher.LibraryFileName);
            if (!File.Exists(destination) || ElfVersionNeedPatcher.Inspect(destination) != ElfPatchOutcome.AlreadyWeak)
                ElfVersionNeedPatcher.PatchTo(library, destination);
            return destination;
        }

        static TorchNativeLoadReport Load(Assembly torchAssembly)
        {
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
                return new TorchNativeLoadReport(null, null, false, null, "not Linux: TorchSharp's own loader is used");

            string torchDir = Path.GetDirectoryName(torchAssembly.Location) ?? "";
            string? library = FindLibTorchSharp(torchDir);
            if (library == null)
                return new TorchNativeLoadReport(null, null, false, null, $"{ElfVersionNeedPatcher.LibraryFileName} not found near {torchDir}: TorchSharp's own loader is used");

            string? libtorchDir = FindLibTorchDirectory(torchDir, Path.GetDirectoryName(library)!);
            string toLoad;
            try
            {
                toLoad = PreparePatchedCopy(library, CacheDirectory());
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw new GraloraException("TorchNativeCacheUnwritable", GraloraErrorKind.IOFailure,
                    $"Could not write a patched copy of {library} into '{CacheDirectory()}': {ex.Message}. Set {CacheVariable} to a writable folder.", library, ex);
            }

            try
            {
                // The patched copy may sit alone in the cache: load libtorch first by full path so
                // LibTorchSharp's DT_NEEDED entries (libtorch.so, libc10.so, libtorch_cpu.so) resolve by soname.
                if (libtorchDir != null)
                    foreach (var name in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
                    {
                        string path = Path.Combine(libtorchDir, name);
                        if (File.Exists(path)) NativeLibrary.Load(path);
                    }
                _handle = NativeLibrary.Load(toLoad);
            }
            catch (Exception ex) when (ex is DllNotFoundException || ex is BadImageFormatException)
            {
                throw new GraloraException("TorchNativeLoadFailed", GraloraErrorKind.NotAvailable,
                    $"TorchSharp's native library could not be loaded from '{toLoad}' (libtorch from '{libtorchDir ?? "not found"}'): {ex.Message}", toLoad, ex);
            }

            try
            {
                NativeLibrary.SetDllImportResolver(torchAssembly, (name, _, _) =>
                    name == "LibTorchSharp" || name == "libLibTorchSharp" || name == ElfVersionNeedPatcher.LibraryFileName ? _handle : IntPtr.Zero);
            }
            catch (InvalidOperationException)
            {
                // A resolver was already set by the host: LibTorchSharp is loaded under its soname, so
                // TorchSharp's own by-name load still finds the copy loaded above.
            }
            bool patched = !string.Equals(toLoad, library, StringComparison.Ordinal);
            return new TorchNativeLoadReport(library, toLoad, patched, libtorchDir,
                patched ? "loaded a patched copy (GLIBCXX_3.4.32 need made weak)" : "loaded as found (already compatible)");
        }

        static string? FindLibTorchSharp(string torchDir)
        {
            foreach (var dir in CandidateNativeDirectories(torchDir))
            {
                string path = Path.Combine(dir, ElfVersionNeedPatcher.LibraryFileName);
                if (File.Exists(path)) return path;
            }
            return null;
        }

        static IEnumerable<string> CandidateNativeDirectories(string torchDir)
        {
            yield return torchDir;                                           // PowerShell module: natives beside TorchSharp.dll
            yield return Path.Combine(torchDir, "runtimes", "linux-x64", "native"); // build output without deps.json host
            yield return Path.GetFullPath(Path.Combine(torchDir, "..", "..", "runtimes", "linux-x64", "native")); // NuGet cache
        }

        static string? FindLibTorchDirectory(string torchDir, string libraryDir)
        {
            if (File.Exists(Path.Combine(libraryDir, "libtorch_cpu.so"))) return libraryDir;
            foreach (var root in NuGetRoots(torchDir))
            {
                string dir = Path.Combine(root, "libtorch-cpu-linux-x64", LibTorchVersion, "runtimes", "linux-x64", "native");
                if (File.Exists(Path.Combine(dir, "libtorch_cpu.so"))) return dir;
            }
            return null;
        }

        static IEnumerable<string> NuGetRoots(string torchDir)
        {
            // TorchSharp.dll inside the cache: <root>/torchsharp/<version>/lib/<tfm>/TorchSharp.dll
            var cacheRoot = Path.GetFullPath(Path.Combine(torchDir, "..", "..", "..", ".."));
            if (Directory.Exists(Path.Combine(cacheRoot, "torchsharp"))) yield return cacheRoot;
            string? env = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
            if (!string.IsNullOrEmpty(env)) yield return env;
            yield return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        }
    }
}
