using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace GraLoRA.Native
{
    /// <summary>What <see cref="TorchNativeLoader"/> did to make TorchSharp's natives load.</summary>
    /// <param name="LibTorchSharpSource">The libLibTorchSharp.so found beside TorchSharp.</param>
    /// <param name="LibTorchSharpLoaded">The file actually loaded (a patched or solo copy, or the source).</param>
    /// <param name="UsedPatchedCopy">True when a copy in the cache folder was loaded.</param>
    /// <param name="LibTorchDirectory">The folder libtorch (libtorch_cpu.so, libc10.so, …) was loaded from.</param>
    /// <param name="Detail">One line on how the natives were loaded.</param>
    /// <param name="LibTorchOrigin">"nuget" (the libtorch package TorchSharp ships with), "GRALORA_LIBTORCH" or "option" (<see cref="TorchNativeLoader.UseLibTorchFrom"/>).</param>
    /// <param name="LibTorchFoundVersion">The version of the libtorch loaded, as its installation states it (null when it states none).</param>
    /// <param name="LibTorchHasCuda">True when the libtorch loaded includes libtorch_cuda.so and it loaded.</param>
    /// <param name="Warning">Why this libtorch may misbehave (version mismatch, CUDA libraries that did not load), or null.</param>
    public sealed record TorchNativeLoadReport(
        string? LibTorchSharpSource,
        string? LibTorchSharpLoaded,
        bool UsedPatchedCopy,
        string? LibTorchDirectory,
        string Detail,
        string LibTorchOrigin = "nuget",
        string? LibTorchFoundVersion = null,
        bool LibTorchHasCuda = false,
        string? Warning = null);

    /// <summary>A libtorch folder outside the NuGet packages (a PyTorch installation's torch/lib), checked but not loaded.</summary>
    /// <param name="Directory">The folder holding libtorch_cpu.so.</param>
    /// <param name="Version">The version its installation states (torch/version.py or libtorch's build-version), or null.</param>
    /// <param name="HasCuda">True when libtorch_cuda.so is there.</param>
    /// <param name="Origin">Where the setting came from: "GRALORA_LIBTORCH" or "option".</param>
    public sealed record ExternalLibTorch(string Directory, string? Version, bool HasCuda, string Origin)
    {
        /// <summary>True when <see cref="Version"/> has the major.minor TorchSharp was built for.</summary>
        public bool VersionMatches => Version != null && TorchNativeLoader.SameMinor(Version, TorchNativeLoader.LibTorchVersion);
    }

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

        /// <summary>Environment variable naming the cache folder for patched natives and restored libtorch.</summary>
        public const string CacheVariable = "GRALORA_NATIVE_CACHE";

        /// <summary>Environment variable naming a PyTorch installation's torch/lib folder to load libtorch from.</summary>
        public const string LibTorchVariable = "GRALORA_LIBTORCH";

        /// <summary>
        /// Set to "lazy" to use an external libtorch even when some function TorchSharp's glue calls is missing (bound at
        /// first call instead of at load; calling a missing one aborts the process). For trying a newer PyTorch.
        /// </summary>
        public const string BindVariable = "GRALORA_LIBTORCH_BIND";

        static string? _libTorchOption;

        /// <summary>Runs once per process; later calls return the first report.</summary>
        public static TorchNativeLoadReport EnsureLoaded()
        {
            lock (Gate)
            {
                return _report ??= Load(typeof(TorchSharp.torch).Assembly);
            }
        }

        /// <summary>
        /// Loads libtorch from <paramref name="directory"/> (a PyTorch installation's torch/lib, CPU or CUDA) instead
        /// of the NuGet natives; overrides <c>GRALORA_LIBTORCH</c>. Must come before anything touches TorchSharp;
        /// afterwards it is accepted only for the folder already in use.
        /// </summary>
        public static void UseLibTorchFrom(string directory)
        {
            lock (Gate)
            {
                var checkedFolder = InspectLibTorchFolder(directory, "option");
                if (_report != null)
                {
                    if (string.Equals(_report.LibTorchDirectory, checkedFolder.Directory, StringComparison.Ordinal)) return;
                    throw new GraloraException("LibTorchAlreadyLoaded", GraloraErrorKind.InvalidOperation,
                        $"libtorch is already loaded in this process from '{_report.LibTorchDirectory}' ({_report.LibTorchOrigin}); it cannot be switched to '{directory}'. " +
                        $"Choose the libtorch first: set {LibTorchVariable} before starting the process (or before Import-Module), or call UseLibTorchFrom before any other GraLoRA call.", directory);
                }
                _libTorchOption = checkedFolder.Directory;
            }
        }

        /// <summary>The external libtorch this process is set to use (option, else GRALORA_LIBTORCH), checked; null for the NuGet natives.</summary>
        public static ExternalLibTorch? RequestedExternalLibTorch()
        {
            if (_libTorchOption != null) return InspectLibTorchFolder(_libTorchOption, "option");
            string? env = Environment.GetEnvironmentVariable(LibTorchVariable);
            return string.IsNullOrWhiteSpace(env) ? null : InspectLibTorchFolder(env, LibTorchVariable);
        }

        /// <summary>
        /// Checks that <paramref name="directory"/> holds a libtorch (libc10.so, libtorch_cpu.so, libtorch.so) and reads
        /// its version. Accepts torch/lib itself or the torch package folder above it. A folder that does not fit is a
        /// <see cref="GraloraException"/> "LibTorchPathInvalid" naming <paramref name="origin"/> and the fix.
        /// </summary>
        public static ExternalLibTorch InspectLibTorchFolder(string directory, string origin)
        {
            string setting = origin == LibTorchVariable ? $"{LibTorchVariable}='{directory}'" : $"libtorch folder '{directory}'";
            const string Fix = "Point it at a PyTorch installation's torch/lib folder, e.g. the output of " +
                "python3 -c \"import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))\", or unset it to use the libtorch bundled with TorchSharp.";
            string full;
            try { full = Path.GetFullPath(directory.Trim()); }
            catch (Exception ex) when (ex is ArgumentException || ex is NotSupportedException || ex is PathTooLongException)
            {
                throw new GraloraException("LibTorchPathInvalid", GraloraErrorKind.InvalidArgument, $"{setting} is not a usable path ({ex.Message}). {Fix}", directory, ex);
            }
            if (!Directory.Exists(full))
                throw new GraloraException("LibTorchPathInvalid", GraloraErrorKind.NotFound, $"{setting}: the folder does not exist. {Fix}", directory);
            if (!File.Exists(Path.Combine(full, "libtorch_cpu.so")) && File.Exists(Path.Combine(full, "lib", "libtorch_cpu.so")))
                full = Path.Combine(full, "lib");
            var missing = RequiredLibraries.Where(name => !File.Exists(Path.Combine(full, name))).ToList();
            if (missing.Count > 0)
                throw new GraloraException("LibTorchPathInvalid", GraloraErrorKind.NotFound,
                    $"{setting}: {string.Join(", ", missing)} not found in '{full}', so it is not a libtorch folder. {Fix}", directory);
            return new ExternalLibTorch(full, ReadInstalledVersion(full), File.Exists(Path.Combine(full, "libtorch_cuda.so")), origin);
        }

        /// <summary>Files a libtorch folder must hold (LibTorchSharp's DT_NEEDED entries).</summary>
        public static readonly IReadOnlyList<string> RequiredLibraries = new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" };

        /// <summary>
        /// The version a libtorch folder's installation states: torch/version.py's <c>__version__</c> beside lib/
        /// (pip and conda PyTorch), else libtorch's own build-version file (libtorch zip archives); null when neither.
        /// </summary>
        public static string? ReadInstalledVersion(string libDirectory)
        {
            string parent = Path.GetDirectoryName(Path.GetFullPath(libDirectory).TrimEnd('/')) ?? libDirectory;
            string versionPy = Path.Combine(parent, "version.py");
            if (File.Exists(versionPy))
            {
                var match = Regex.Match(File.ReadAllText(versionPy), @"^__version__\s*=\s*['""]([^'""]+)['""]", RegexOptions.Multiline);
                if (match.Success) return match.Groups[1].Value;
            }
            string buildVersion = Path.Combine(parent, "build-version");
            if (File.Exists(buildVersion))
            {
                string text = File.ReadAllText(buildVersion).Trim();
                if (text.Length > 0) return text;
            }
            return null;
        }

        /// <summary>True when two version strings ("2.10.0+cpu", "2.10") share major and minor.</summary>
        public static bool SameMinor(string a, string b)
        {
            static string MajorMinor(string v)
            {
                var m = Regex.Match(v, @"^\s*(\d+)\.(\d+)");
                return m.Success ? m.Groups[1].Value + "." + m.Groups[2].Value : v.Trim();
            }
            return MajorMinor(a) == MajorMinor(b);
        }

        /// <summary>
        /// The folder patched copies (and, under libtorch/, a libtorch a module package restored; see <see cref="LibTorchRestore"/>)
        /// go to: $GRALORA_NATIVE_CACHE, else $XDG_CACHE_HOME/gralora/native, else ~/.cache/gralora/native.
        /// </summary>
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
            var external = RequestedExternalLibTorch();
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
            {
                if (external != null)
                    throw new GraloraException("LibTorchPathUnsupported", GraloraErrorKind.NotAvailable,
                        $"{external.Origin} ('{external.Directory}') is supported on Linux only; unset it to use the libtorch bundled with TorchSharp.", external.Directory);
                return new TorchNativeLoadReport(null, null, false, null, "not Linux: TorchSharp's own loader is used");
            }

            string torchDir = Path.GetDirectoryName(torchAssembly.Location) ?? "";
            string? library = FindLibTorchSharp(torchDir);
            if (library == null)
            {
                if (external != null)
                    throw new GraloraException("TorchNativeLoadFailed", GraloraErrorKind.NotAvailable,
                        $"{ElfVersionNeedPatcher.LibraryFileName} (TorchSharp's native glue) was not found near {torchDir}, so libtorch from {external.Origin} ('{external.Directory}') cannot be used.", torchDir);
                return new TorchNativeLoadReport(null, null, false, null, $"{ElfVersionNeedPatcher.LibraryFileName} not found near {torchDir}: TorchSharp's own loader is used");
            }
            return external != null ? LoadExternal(torchAssembly, library, external) : LoadBundled(torchAssembly, library, torchDir);
        }

        static TorchNativeLoadReport LoadBundled(Assembly torchAssembly, string library, string torchDir)
        {
            string? libtorchDir = FindLibTorchDirectory(torchDir, Path.GetDirectoryName(library)!) ?? RestoreLibTorch(torchDir);
            string toLoad = InCache(library, () => PreparePatchedCopy(library, CacheDirectory()));

            try
            {
                // The patched copy may sit alone in the cache: load libtorch first by full path so
                // LibTorchSharp's DT_NEEDED entries (libtorch.so, libc10.so, libtorch_cpu.so) resolve by soname.
                if (libtorchDir != null)
                    foreach (var name in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
                    {
                        string path = Path.Combine(libtorchDir, name);
                        if (File.Exists(path)) _libraries[name] = NativeLibrary.Load(path);
                    }
                _handle = NativeLibrary.Load(toLoad);
            }
            catch (Exception ex) when (ex is DllNotFoundException || ex is BadImageFormatException)
            {
                throw new GraloraException("TorchNativeLoadFailed", GraloraErrorKind.NotAvailable,
                    $"TorchSharp's native library could not be loaded from '{toLoad}' (libtorch from '{libtorchDir ?? "not found"}'): {ex.Message}", toLoad, ex);
            }

            SetResolver(torchAssembly);
            bool patched = !string.Equals(toLoad, library, StringComparison.Ordinal);
            return new TorchNativeLoadReport(library, toLoad, patched, libtorchDir,
                patched ? "loaded a patched copy (GLIBCXX_3.4.32 need made weak)" : "loaded as found (already compatible)");
        }

        /// <summary>
        /// libtorch from a PyTorch installation. LibTorchSharp is loaded from a copy alone in the cache folder (so its
        /// $ORIGIN run path cannot pull in the NuGet libtorch beside the original) and with every symbol bound at once
        /// (RTLD_NOW): a libtorch that lacks a function TorchSharp calls is refused here with the symbol named, instead of
        /// killing the process at the first call of that function.
        /// </summary>
        static TorchNativeLoadReport LoadExternal(Assembly torchAssembly, string library, ExternalLibTorch external)
        {
            string where = $"{external.Origin}='{external.Directory}'";
            string stated = external.Version ?? "of unstated version";
            var warnings = new List<string>();
            if (external.Version == null)
                warnings.Add($"the libtorch at {where} states no version (no torch/version.py or build-version beside it); TorchSharp {TorchSharpVersion()} was built for libtorch {LibTorchVersion}");
            int versionWarning = -1;
            if (external.Version != null && !external.VersionMatches)
            {
                versionWarning = warnings.Count;
                warnings.Add($"libtorch {external.Version} at {where} is not the {MajorMinorOf(LibTorchVersion)} series TorchSharp {TorchSharpVersion()} was built for; " +
                             "every function TorchSharp uses resolved, so it is used, but behaviour may differ: prefer PyTorch " + MajorMinorOf(LibTorchVersion) + ".x");
            }

            string toLoad = InCache(library, () => PrepareSoloCopy(library, CacheDirectory()));
            foreach (var name in RequiredLibraries)
            {
                string path = Path.Combine(external.Directory, name);
                if (!NativeLibrary.TryLoad(path, out var handle))
                    throw new GraloraException("LibTorchLoadFailed", GraloraErrorKind.NotAvailable,
                        $"{path} (libtorch {stated}, from {where}) could not be loaded: {LastDlError() ?? "unknown reason"}. Check that it is a Linux x86-64 PyTorch installation whose own dependencies are present.", path);
                _libraries[name] = handle;
            }
            bool cuda = false;
            if (external.HasCuda)
            {
                cuda = true;
                // As `import torch` does: libtorch_global_deps.so, loaded globally, brings in the CUDA libraries of the
                // nvidia-* wheels beside torch (its run path points at them) before libtorch_cuda.so needs them.
                string globalDeps = Path.Combine(external.Directory, "libtorch_global_deps.so");
                if (File.Exists(globalDeps)) _ = DlOpen(globalDeps, RtldLazy | RtldGlobal);
                foreach (var name in new[] { "libc10_cuda.so", "libtorch_cuda.so" })
                {
                    string path = Path.Combine(external.Directory, name);
                    if (!File.Exists(path)) continue;
                    if (NativeLibrary.TryLoad(path, out var handle)) _libraries[name] = handle;
                    else
                    {
                        cuda = false;
                        warnings.Add($"{path} did not load ({LastDlError() ?? "unknown reason"}), so CUDA is not usable; the CPU part of this libtorch is used");
                        break;
                    }
                }
            }

            var strict = LoadNow(toLoad, out string? error);
            if (strict == IntPtr.Zero && Environment.GetEnvironmentVariable(BindVariable) == "lazy")
            {
                // Opt-in escape hatch: bind functions at their first call. Data symbols must still resolve now; a
                // missing function aborts the process when (if ever) it is called.
                if (NativeLibrary.TryLoad(toLoad, out strict))
                {
                    if (versionWarning >= 0)
                        warnings[versionWarning] = warnings[versionWarning].Replace("every function TorchSharp uses resolved, so it is used", "not every function TorchSharp uses resolved");
                    warnings.Add($"{error}; loaded anyway because {BindVariable}=lazy: calling a missing function aborts the process");
                }
                else
                    error += $" (also with {BindVariable}=lazy: {LastDlError() ?? "the lazy load failed too"})";
            }
            if (strict == IntPtr.Zero)
                throw new GraloraException("LibTorchIncompatible", GraloraErrorKind.NotAvailable,
                    $"libtorch {stated} at {where} is incompatible with TorchSharp {TorchSharpVersion()} (built for libtorch {LibTorchVersion}): {error}. " +
                    $"Use a PyTorch {MajorMinorOf(LibTorchVersion)}.x installation, or unset {LibTorchVariable} to use the libtorch bundled with TorchSharp.", external.Directory);
            _handle = strict;
            SetResolver(torchAssembly);

            string? warning = warnings.Count == 0 ? null : string.Join("; ", warnings);
            if (warning != null) Console.Error.WriteLine("GraLoRA warning: " + warning + ".");
            return new TorchNativeLoadReport(library, toLoad, true, external.Directory,
                $"libtorch {stated} from {where}{(cuda ? " with CUDA" : "")}; LibTorchSharp from a copy bound at load (RTLD_NOW)",
                external.Origin, external.Version, cuda, warning);
        }

        static readonly Dictionary<string, IntPtr> _libraries = new();

        /// <summary>
        /// The handle this loader loaded for a native library TorchSharp asks for by name ("LibTorchSharp", "torch_cpu",
        /// "torch_cuda", …), or zero. Hosts with their own AssemblyLoadContext serve these first, so the copy loaded here is
        /// the only one.
        /// </summary>
        public static IntPtr LoadedHandle(string name)
        {
            if (_handle == IntPtr.Zero) return IntPtr.Zero;
            if (name == "LibTorchSharp" || name == "libLibTorchSharp" || name == ElfVersionNeedPatcher.LibraryFileName) return _handle;
            string file = name.EndsWith(".so", StringComparison.Ordinal) ? name : (name.StartsWith("lib", StringComparison.Ordinal) ? name : "lib" + name) + ".so";
            return _libraries.TryGetValue(file, out var h) ? h : IntPtr.Zero;
        }

        static void SetResolver(Assembly torchAssembly)
        {
            try
            {
                // TorchSharp's CUDA initialisation also loads "torch_cuda" by name: serve the one already loaded.
                NativeLibrary.SetDllImportResolver(torchAssembly, (name, _, _) => LoadedHandle(name));
            }
            catch (InvalidOperationException)
            {
                // A resolver was already set by the host: LibTorchSharp is loaded under its soname, so
                // TorchSharp's own by-name load still finds the copy loaded above.
            }
        }

        static string InCache(string library, Func<string> prepare)
        {
            try
            {
                return prepare();
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw new GraloraException("TorchNativeCacheUnwritable", GraloraErrorKind.IOFailure,
                    $"Could not write a patched copy of {library} into '{CacheDirectory()}': {ex.Message}. Set {CacheVariable} to a writable folder.", library, ex);
            }
        }

        /// <summary>
        /// A copy of <paramref name="library"/> (patched when it needs it) alone in its own cache folder, so that its
        /// $ORIGIN run path finds no libtorch: LibTorchSharp's dependencies then resolve only to the libtorch already loaded.
        /// </summary>
        public static string PrepareSoloCopy(string library, string cacheDirectory)
        {
            string hash;
            using (var stream = File.OpenRead(library))
                hash = Convert.ToHexString(SHA256.HashData(stream)).Substring(0, 16).ToLowerInvariant();
            string destination = Path.Combine(cacheDirectory, hash + "-solo", ElfVersionNeedPatcher.LibraryFileName);
            if (!File.Exists(destination) || ElfVersionNeedPatcher.Inspect(destination) == ElfPatchOutcome.Patched)
                ElfVersionNeedPatcher.PatchTo(library, destination);
            return destination;
        }

        const int RtldLazy = 1, RtldNow = 2, RtldGlobal = 0x100;

        [DllImport("libc.so.6", EntryPoint = "dlopen")]
        static extern IntPtr DlOpen(string file, int mode);

        [DllImport("libc.so.6", EntryPoint = "dlerror")]
        static extern IntPtr DlError();

        static IntPtr LoadNow(string path, out string? error)
        {
            // Bind both entry points first (the runtime's lazy binding of a P/Invoke could reset dlerror's message).
            _ = DlOpen("libc.so.6", RtldNow);
            _ = DlError();
            var handle = DlOpen(path, RtldNow);
            error = handle == IntPtr.Zero ? LastDlError() : null;
            if (handle == IntPtr.Zero && error == null)
            {
                // Some hosts lose dlerror's message between the two calls: ask the runtime's own (lazy) load, whose
                // exception carries it; a lazy load that succeeds means only function symbols are missing.
                try
                {
                    NativeLibrary.Load(path);
                    error = "a function TorchSharp calls is missing from this libtorch (undefined symbol)";
                }
                catch (Exception ex) when (ex is DllNotFoundException || ex is BadImageFormatException)
                {
                    var lines = ex.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    error = lines.Length > 1 ? lines[^1] : ex.Message;
                }
            }
            return handle;
        }

        // NativeLibrary.TryLoad does not say why; dlerror() still holds the loader's message right after it.
        static string? LastDlError()
        {
            try
            {
                var p = DlError();
                return p == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(p);
            }
            catch (Exception ex) when (ex is DllNotFoundException || ex is EntryPointNotFoundException)
            {
                return null;
            }
        }

        static string TorchSharpVersion()
        {
            string v = typeof(TorchSharp.torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "unknown";
            int plus = v.IndexOf('+');
            return plus > 0 ? v.Substring(0, plus) : v;
        }

        static string MajorMinorOf(string version)
        {
            var m = Regex.Match(version, @"^(\d+)\.(\d+)");
            return m.Success ? m.Value : version;
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

        /// <summary>
        /// A module package leaves libtorch out and names it in <see cref="LibTorchRestore.ManifestFileName"/> beside
        /// TorchSharp: restore it into the cache (once), telling the user on stderr before the download starts.
        /// </summary>
        static string? RestoreLibTorch(string torchDir)
        {
            var package = LibTorchRestore.ReadManifest(torchDir);
            if (package == null) return null;
            return LibTorchRestore.EnsureRestored(package, CacheDirectory(), status: line => Console.Error.WriteLine(line));
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
