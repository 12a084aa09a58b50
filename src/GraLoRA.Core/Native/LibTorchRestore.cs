using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Net.Http;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Tasks;
using GraLoRA.IO;

namespace GraLoRA.Native
{
    /// <summary>
    /// The libtorch NuGet package a module package leaves out (it is ~500 MB unpacked), as the module's
    /// <c>dependencies/libtorch.restore.json</c> names it: written by the packer from the build's own restore.
    /// </summary>
    /// <param name="Id">The NuGet package id, e.g. libtorch-cpu-linux-x64.</param>
    /// <param name="Version">Its version, e.g. 2.10.0.</param>
    /// <param name="Sha512">The SHA-512 of the .nupkg file, base64, as NuGet records it (project.assets.json, .nupkg.sha512).</param>
    /// <param name="NativeDirectory">The folder inside the package that holds the natives, e.g. runtimes/linux-x64/native.</param>
    /// <param name="Files">The files that folder holds (all are extracted and must be there).</param>
    /// <param name="Size">The .nupkg's size in bytes (for the one-line status before a download).</param>
    public sealed record LibTorchPackage(string Id, string Version, string Sha512, string NativeDirectory, IReadOnlyList<string> Files, long Size);

    /// <summary>
    /// Restores the libtorch natives a module package leaves out, on first use: from the NuGet global packages folder when
    /// a .NET SDK restore already put them there, else once into a cache folder from a NuGet feed (nuget.org, or
    /// <c>GRALORA_LIBTORCH_SOURCE</c>: a v3 feed URL or a folder holding the .nupkg). The download is checked against the
    /// SHA-512 NuGet recorded for it when the module was built, extracted beside its final name and moved into place in
    /// one rename, so a crash or a second process never sees half a libtorch.
    /// </summary>
    public static class LibTorchRestore
    {
        /// <summary>File name of the restore manifest beside TorchSharp.dll in a module package.</summary>
        public const string ManifestFileName = "libtorch.restore.json";

        /// <summary>Environment variable naming where to restore from: a NuGet v3 service index URL, or a folder holding the .nupkg.</summary>
        public const string SourceVariable = "GRALORA_LIBTORCH_SOURCE";

        /// <summary>Where libtorch is restored from when <see cref="SourceVariable"/> is not set.</summary>
        public const string DefaultSource = "https://api.nuget.org/v3/index.json";

        static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

        /// <summary>Reads <see cref="ManifestFileName"/> from <paramref name="folder"/>; null when there is none.</summary>
        public static LibTorchPackage? ReadManifest(string folder)
        {
            string path = Path.Combine(folder, ManifestFileName);
            if (!File.Exists(path)) return null;
            LibTorchPackage? package;
            try { package = JsonSerializer.Deserialize<LibTorchPackage>(File.ReadAllText(path), JsonOptions); }
            catch (JsonException ex)
            {
                throw new GraloraException("LibTorchManifestInvalid", GraloraErrorKind.InvalidData,
                    $"'{path}' is not a libtorch restore manifest ({ex.Message}). Reinstall the GraLoRA module.", path, ex);
            }
            if (package == null || string.IsNullOrWhiteSpace(package.Id) || string.IsNullOrWhiteSpace(package.Version) ||
                string.IsNullOrWhiteSpace(package.Sha512) || string.IsNullOrWhiteSpace(package.NativeDirectory) || package.Files is not { Count: > 0 } ||
                package.Files.Any(f => !IsPlainFileName(f)))
                throw new GraloraException("LibTorchManifestInvalid", GraloraErrorKind.InvalidData,
                    $"'{path}' lacks id, version, sha512, nativeDirectory or files, or names a file with a folder in it. Reinstall the GraLoRA module.", path);
            return package;
        }

        /// <summary>Writes <paramref name="package"/> as <see cref="ManifestFileName"/> into <paramref name="folder"/> (the packer's side).</summary>
        public static void WriteManifest(LibTorchPackage package, string folder) =>
            AtomicFile.Write(Path.Combine(folder, ManifestFileName), stream => JsonSerializer.Serialize(stream, package, JsonOptions));

        /// <summary>The folder the natives of <paramref name="package"/> are restored into under <paramref name="cacheRoot"/>.</summary>
        public static string RestoredDirectory(LibTorchPackage package, string cacheRoot) =>
            Path.Combine(cacheRoot, "libtorch", package.Id.ToLowerInvariant(), package.Version.ToLowerInvariant());

        /// <summary>True when <paramref name="folder"/> holds every file of <paramref name="package"/>.</summary>
        public static bool IsComplete(LibTorchPackage package, string folder) =>
            Directory.Exists(folder) && package.Files.All(f => File.Exists(Path.Combine(folder, f)));

        /// <summary>
        /// Returns a folder holding the natives of <paramref name="package"/>: <paramref name="cacheRoot"/>'s copy when it
        /// is complete, else a fresh one restored from <paramref name="source"/> (null: <see cref="SourceVariable"/>, else
        /// <see cref="DefaultSource"/>). <paramref name="status"/> is told, once, before anything is downloaded or extracted.
        /// </summary>
        public static string EnsureRestored(LibTorchPackage package, string cacheRoot, string? source = null, Action<string>? status = null)
        {
            string target = RestoredDirectory(package, cacheRoot);
            if (IsComplete(package, target)) return target;
            source ??= Environment.GetEnvironmentVariable(SourceVariable);
            if (string.IsNullOrWhiteSpace(source)) source = DefaultSource;

            string parent = Path.GetDirectoryName(target)!;
            string nupkg = Path.Combine(parent, $".{package.Id}.{package.Version}.{Guid.NewGuid():N}.nupkg.partial");
            string staging = Path.Combine(parent, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.partial");
            try
            {
                Directory.CreateDirectory(parent);
                status?.Invoke($"GraLoRA: restoring libtorch ({package.Id} {package.Version}, {package.Size / (1024 * 1024)} MiB download, about 500 MiB unpacked) " +
                               $"from {source} into {target}; this happens once per libtorch version.");
                Fetch(package, source, nupkg);
                Extract(package, nupkg, staging, source);
                AtomicFile.SyncDirectory(staging);
                try
                {
                    Directory.Move(staging, target);
                    AtomicFile.SyncDirectory(parent);
                }
                catch (IOException) when (Directory.Exists(target))
                {
                    // Another process finished first (keep its folder: it may have loaded from it), or an incomplete
                    // folder is in the way (replace it).
                    if (!IsComplete(package, target)) AtomicFile.ReplaceDirectory(staging, target);
                }
                return target;
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw new GraloraException("LibTorchRestoreFailed", GraloraErrorKind.IOFailure,
                    $"Could not restore libtorch ({package.Id} {package.Version}) into '{target}': {ex.Message}. {Fix(package)}", target, ex);
            }
            finally
            {
                TryDelete(nupkg);
                if (Directory.Exists(staging)) { try { Directory.Delete(staging, true); } catch (IOException) { } }
            }
        }

        static string Fix(LibTorchPackage package) =>
            $"Set {TorchNativeLoader.CacheVariable} to a writable folder, {SourceVariable} to a NuGet feed or a folder holding {FileName(package)} " +
            $"(for machines without internet access), or {TorchNativeLoader.LibTorchVariable} to a PyTorch {package.Version} installation's torch/lib folder.";

        static string FileName(LibTorchPackage package) => $"{package.Id.ToLowerInvariant()}.{package.Version.ToLowerInvariant()}.nupkg";

        /// <summary>Copies the .nupkg from <paramref name="source"/> to <paramref name="destination"/>, checking its SHA-512 on the way.</summary>
        static void Fetch(LibTorchPackage package, string source, string destination)
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
            using (var output = new FileStream(destination, FileMode.CreateNew, FileAccess.Write))
            {
                using (var input = OpenSource(package, source, out string where))
                {
                    var buffer = new byte[1 << 20];
                    int read;
                    while ((read = input.Read(buffer, 0, buffer.Length)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                        output.Write(buffer, 0, read);
                    }
                    string actual = Convert.ToBase64String(hash.GetHashAndReset());
                    if (actual != package.Sha512)
                        throw new GraloraException("LibTorchPackageCorrupt", GraloraErrorKind.InvalidData,
                            $"{where} is not the {package.Id} {package.Version} package this module was built with: its SHA-512 is {actual}, expected {package.Sha512}. " +
                            $"Point {SourceVariable} at a feed or folder with the original nuget.org package.", where);
                }
                output.Flush(true);
            }
        }

        static Stream OpenSource(LibTorchPackage package, string source, out string where)
        {
            string file = FileName(package);
            if (Uri.TryCreate(source, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp))
                return Download(package, uri, out where);
            string folder = uri is { IsFile: true } ? uri.LocalPath : source;
            // A flat folder of .nupkg files, or NuGet's hierarchical local feed (id/version/id.version.nupkg).
            var candidates = new[] { Path.Combine(folder, file), Path.Combine(folder, package.Id.ToLowerInvariant(), package.Version.ToLowerInvariant(), file) };
            where = candidates.FirstOrDefault(File.Exists) ?? throw new GraloraException("LibTorchRestoreFailed", GraloraErrorKind.NotFound,
                $"{SourceVariable}='{source}': neither {string.Join(" nor ", candidates)} exists. {Fix(package)}", source);
            return File.OpenRead(where);
        }

        static Stream Download(LibTorchPackage package, Uri serviceIndex, out string where)
        {
            var http = new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
            string id = package.Id.ToLowerInvariant(), version = package.Version.ToLowerInvariant();
            string url = serviceIndex.ToString();
            try
            {
                string baseAddress = PackageBaseAddress(http, serviceIndex);
                url = $"{baseAddress.TrimEnd('/')}/{id}/{version}/{id}.{version}.nupkg";
                var response = http.Send(new HttpRequestMessage(HttpMethod.Get, url), HttpCompletionOption.ResponseHeadersRead);
                if (!response.IsSuccessStatusCode)
                    throw new GraloraException("LibTorchRestoreFailed", GraloraErrorKind.NotAvailable,
                        $"{url} answered {(int)response.StatusCode} {response.ReasonPhrase}. {Fix(package)}", url);
                where = url;
                return new OwningStream(response.Content.ReadAsStream(), response, http);
            }
            catch (Exception ex) when (ex is HttpRequestException || ex is TaskCanceledException || ex is JsonException)
            {
                http.Dispose();
                throw new GraloraException("LibTorchRestoreFailed", GraloraErrorKind.NotAvailable,
                    $"Could not download libtorch from {url}: {ex.Message}. {Fix(package)}", url, ex);
            }
            catch
            {
                http.Dispose();
                throw;
            }
        }

        /// <summary>The PackageBaseAddress/3.0.0 resource (NuGet's flat container) of a v3 service index.</summary>
        static string PackageBaseAddress(HttpClient http, Uri serviceIndex)
        {
            using var response = http.Send(new HttpRequestMessage(HttpMethod.Get, serviceIndex));
            if (!response.IsSuccessStatusCode)
                throw new HttpRequestException($"the service index answered {(int)response.StatusCode} {response.ReasonPhrase}");
            using var doc = JsonDocument.Parse(response.Content.ReadAsStream());
            if (doc.RootElement.TryGetProperty("resources", out var resources) && resources.ValueKind == JsonValueKind.Array)
                foreach (var resource in resources.EnumerateArray())
                    if (resource.TryGetProperty("@type", out var type) && type.GetString() == "PackageBaseAddress/3.0.0" &&
                        resource.TryGetProperty("@id", out var id) && id.GetString() is { Length: > 0 } address)
                        return address;
            throw new JsonException($"{serviceIndex} is not a NuGet v3 service index with a PackageBaseAddress/3.0.0 resource");
        }

        /// <summary>Extracts the package's native folder into <paramref name="staging"/> and checks every listed file arrived.</summary>
        static void Extract(LibTorchPackage package, string nupkg, string staging, string source)
        {
            Directory.CreateDirectory(staging);
            string prefix = package.NativeDirectory.TrimEnd('/') + "/";
            using (var zip = ZipFile.OpenRead(nupkg))
            {
                foreach (var entry in zip.Entries)
                {
                    if (!entry.FullName.StartsWith(prefix, StringComparison.Ordinal)) continue;
                    string name = entry.FullName.Substring(prefix.Length);
                    if (name.Length == 0) continue;
                    if (!IsPlainFileName(name))
                        throw new GraloraException("LibTorchPackageCorrupt", GraloraErrorKind.InvalidData,
                            $"The {package.Id} package from {source} has an entry '{entry.FullName}' that is not a plain file in {package.NativeDirectory}.", entry.FullName);
                    string path = Path.Combine(staging, name);
                    entry.ExtractToFile(path, overwrite: false);
                    AtomicFile.SyncFile(path);
                }
            }
            var missing = package.Files.Where(f => !File.Exists(Path.Combine(staging, f))).ToList();
            if (missing.Count > 0)
                throw new GraloraException("LibTorchPackageCorrupt", GraloraErrorKind.InvalidData,
                    $"The {package.Id} package from {source} lacks {string.Join(", ", missing)} in {package.NativeDirectory}.", source);
        }

        static bool IsPlainFileName(string name) =>
            name.Length > 0 && name != "." && name != ".." && name.IndexOfAny(new[] { '/', '\\', '\0' }) < 0;

        static void TryDelete(string path)
        {
            try { if (File.Exists(path)) File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }

        /// <summary>A response stream that disposes its response and client with it.</summary>
        sealed class OwningStream : Stream
        {
            readonly Stream inner;
            readonly IDisposable[] owned;
            public OwningStream(Stream inner, params IDisposable[] owned) => (this.inner, this.owned) = (inner, owned);
            public override bool CanRead => true;
            public override bool CanSeek => false;
            public override bool CanWrite => false;
            public override long Length => throw new NotSupportedException();
            public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
            public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
            public override void Flush() { }
            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
            public override void SetLength(long value) => throw new NotSupportedException();
            public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
            protected override void Dispose(bool disposing)
            {
                if (disposing)
                {
                    inner.Dispose();
                    foreach (var d in owned) d.Dispose();
                }
                base.Dispose(disposing);
            }
        }
    }
}
