using System;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using GraLoRA.Native;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Restoring the libtorch natives a module package leaves out, on small stand-in packages: from a folder, from a
    /// NuGet v3 feed over HTTP, and the refusals (wrong hash, missing file, entry outside the native folder, no source).
    /// The real libtorch goes through the same code in the Pester test that installs the packed module.
    /// </summary>
    public class LibTorchRestoreTests
    {
        const string Native = "runtimes/linux-x64/native";

        /// <summary>A .nupkg-shaped zip: the natives under runtimes/linux-x64/native plus files outside it, as NuGet packs them.</summary>
        static byte[] Nupkg(params (string Entry, string Content)[] entries)
        {
            using var memory = new MemoryStream();
            using (var zip = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
                foreach (var (entry, content) in entries)
                    using (var writer = new StreamWriter(zip.CreateEntry(entry).Open())) writer.Write(content);
            return memory.ToArray();
        }

        static readonly byte[] Good = Nupkg(
            ($"{Native}/libc10.so", "c10"), ($"{Native}/libtorch_cpu.so", "torch cpu"), ("lib/netstandard2.0/_._/empty.txt", ""), ("LICENSE-LIBTORCH.txt", "BSD"));

        // The hash NuGet records for a download (.nupkg.sha512): base64 of the file's SHA-512.
        static LibTorchPackage PackageFor(byte[] nupkg, params string[] files) =>
            new("libtorch-cpu-linux-x64", "2.10.0", Convert.ToBase64String(SHA512.HashData(nupkg)), Native,
                files.Length > 0 ? files : new[] { "libc10.so", "libtorch_cpu.so" }, nupkg.Length);

        static string Feed(TempDirectory dir, byte[] nupkg)
        {
            string feed = Directory.CreateDirectory(dir.File("feed")).FullName;
            File.WriteAllBytes(Path.Combine(feed, "libtorch-cpu-linux-x64.2.10.0.nupkg"), nupkg);
            return feed;
        }

        [Fact]
        public void RestoresTheNativesFromAFolderOnceAndThenUsesTheCache()
        {
            using var dir = new TempDirectory();
            var package = PackageFor(Good);
            string feed = Feed(dir, Good);
            var lines = new System.Collections.Generic.List<string>();

            string folder = LibTorchRestore.EnsureRestored(package, dir.File("cache"), feed, lines.Add);

            Assert.Equal(Path.Combine(dir.File("cache"), "libtorch", "libtorch-cpu-linux-x64", "2.10.0"), folder);
            Assert.Equal("c10", File.ReadAllText(Path.Combine(folder, "libc10.so")));
            Assert.Equal("torch cpu", File.ReadAllText(Path.Combine(folder, "libtorch_cpu.so")));
            Assert.Equal(new[] { "libc10.so", "libtorch_cpu.so" }, Directory.GetFiles(folder).Select(Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal));
            var line = Assert.Single(lines);
            Assert.Contains("libtorch-cpu-linux-x64 2.10.0", line);
            Assert.Contains(feed, line);
            // Nothing but the finished folder is left beside it (no partial download or staging folder).
            Assert.Equal(new[] { "2.10.0" }, Directory.GetFileSystemEntries(Path.GetDirectoryName(folder)!).Select(Path.GetFileName));

            Directory.Delete(feed, true);
            lines.Clear();
            Assert.Equal(folder, LibTorchRestore.EnsureRestored(package, dir.File("cache"), feed, lines.Add));
            Assert.Empty(lines);
        }

        [Fact]
        public void ReplacesAnIncompleteFolderLeftInThePlace()
        {
            using var dir = new TempDirectory();
            var package = PackageFor(Good);
            string target = LibTorchRestore.RestoredDirectory(package, dir.File("cache"));
            Directory.CreateDirectory(target);
            File.WriteAllText(Path.Combine(target, "libc10.so"), "half");

            Assert.Equal(target, LibTorchRestore.EnsureRestored(package, dir.File("cache"), Feed(dir, Good)));
            Assert.Equal("c10", File.ReadAllText(Path.Combine(target, "libc10.so")));
            Assert.Equal("torch cpu", File.ReadAllText(Path.Combine(target, "libtorch_cpu.so")));
            Assert.Equal(new[] { "2.10.0" }, Directory.GetFileSystemEntries(Path.GetDirectoryName(target)!).Select(Path.GetFileName));
        }

        [Fact]
        public void FindsThePackageInNuGetsHierarchicalLocalFeedLayout()
        {
            using var dir = new TempDirectory();
            string feed = Directory.CreateDirectory(dir.File("feed/libtorch-cpu-linux-x64/2.10.0")).FullName;
            File.WriteAllBytes(Path.Combine(feed, "libtorch-cpu-linux-x64.2.10.0.nupkg"), Good);
            string folder = LibTorchRestore.EnsureRestored(PackageFor(Good), dir.File("cache"), dir.File("feed"));
            Assert.True(File.Exists(Path.Combine(folder, "libtorch_cpu.so")));
        }

        [Fact]
        public void RefusesAPackageWhoseHashDiffersAndLeavesNothingBehind()
        {
            using var dir = new TempDirectory();
            var package = PackageFor(Good);
            byte[] tampered = Nupkg(($"{Native}/libc10.so", "c10"), ($"{Native}/libtorch_cpu.so", "torch cpu, changed"));
            string feed = Feed(dir, tampered);

            var ex = Assert.Throws<GraloraException>(() => LibTorchRestore.EnsureRestored(package, dir.File("cache"), feed));

            Assert.Equal("LibTorchPackageCorrupt", ex.ErrorId);
            Assert.Contains(Convert.ToBase64String(SHA512.HashData(tampered)), ex.Message);
            Assert.Contains(package.Sha512, ex.Message);
            Assert.Contains(LibTorchRestore.SourceVariable, ex.Message);
            Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(dir.File("cache"), "libtorch", "libtorch-cpu-linux-x64")));
        }

        [Fact]
        public void RefusesAPackageThatLacksAListedFile()
        {
            using var dir = new TempDirectory();
            var package = PackageFor(Good, "libc10.so", "libtorch_cpu.so", "libtorch.so");
            var ex = Assert.Throws<GraloraException>(() => LibTorchRestore.EnsureRestored(package, dir.File("cache"), Feed(dir, Good)));
            Assert.Equal("LibTorchPackageCorrupt", ex.ErrorId);
            Assert.Contains("lacks libtorch.so", ex.Message);
            Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(dir.File("cache"), "libtorch", "libtorch-cpu-linux-x64")));
        }

        [Fact]
        public void RefusesAnEntryThatClimbsOutOfTheNativeFolder()
        {
            using var dir = new TempDirectory();
            byte[] evil = Nupkg(($"{Native}/libc10.so", "c10"), ($"{Native}/libtorch_cpu.so", "torch cpu"), ($"{Native}/../../../escaped.so", "x"));
            var ex = Assert.Throws<GraloraException>(() => LibTorchRestore.EnsureRestored(PackageFor(evil), dir.File("cache"), Feed(dir, evil)));
            Assert.Equal("LibTorchPackageCorrupt", ex.ErrorId);
            Assert.Contains("escaped.so", ex.Message);
            Assert.False(File.Exists(dir.File("cache/libtorch/escaped.so")));
            Assert.False(File.Exists(dir.File("cache/escaped.so")));
        }

        [Fact]
        public void AFolderWithoutThePackageNamesWhereItLookedAndTheWaysOut()
        {
            using var dir = new TempDirectory();
            Directory.CreateDirectory(dir.File("empty"));
            var ex = Assert.Throws<GraloraException>(() => LibTorchRestore.EnsureRestored(PackageFor(Good), dir.File("cache"), dir.File("empty")));
            Assert.Equal("LibTorchRestoreFailed", ex.ErrorId);
            Assert.Contains(Path.Combine(dir.File("empty"), "libtorch-cpu-linux-x64.2.10.0.nupkg"), ex.Message);
            Assert.Contains(TorchNativeLoader.LibTorchVariable, ex.Message);
            Assert.Contains(TorchNativeLoader.CacheVariable, ex.Message);
        }

        [Fact]
        public void DownloadsFromANuGetV3FeedThroughItsPackageBaseAddress()
        {
            using var dir = new TempDirectory();
            using var feed = new TinyNuGetFeed(Good);
            string folder = LibTorchRestore.EnsureRestored(PackageFor(Good), dir.File("cache"), feed.ServiceIndex);
            Assert.Equal("torch cpu", File.ReadAllText(Path.Combine(folder, "libtorch_cpu.so")));
            Assert.Equal(new[] { "/v3/index.json", "/flat/libtorch-cpu-linux-x64/2.10.0/libtorch-cpu-linux-x64.2.10.0.nupkg" }, feed.Requests);
        }

        [Fact]
        public void AFeedWithoutThePackageIsAnErrorNamingTheUrl()
        {
            using var dir = new TempDirectory();
            using var feed = new TinyNuGetFeed(null);
            var ex = Assert.Throws<GraloraException>(() => LibTorchRestore.EnsureRestored(PackageFor(Good), dir.File("cache"), feed.ServiceIndex));
            Assert.Equal("LibTorchRestoreFailed", ex.ErrorId);
            Assert.Contains("/flat/libtorch-cpu-linux-x64/2.10.0/libtorch-cpu-linux-x64.2.10.0.nupkg answered 404", ex.Message);
        }

        [Fact]
        public void ReadsTheManifestTheWriterWritesAndRefusesAnIncompleteOne()
        {
            using var dir = new TempDirectory();
            var package = PackageFor(Good);
            Assert.Null(LibTorchRestore.ReadManifest(dir.Path));
            LibTorchRestore.WriteManifest(package, dir.Path);
            var read = LibTorchRestore.ReadManifest(dir.Path)!;
            Assert.Equal(package with { Files = read.Files }, read);
            Assert.Equal(package.Files, read.Files);

            File.WriteAllText(dir.File(LibTorchRestore.ManifestFileName), "{\"id\": \"libtorch-cpu-linux-x64\", \"version\": \"2.10.0\", \"files\": [\"../x.so\"]}");
            var ex = Assert.Throws<GraloraException>(() => LibTorchRestore.ReadManifest(dir.Path));
            Assert.Equal("LibTorchManifestInvalid", ex.ErrorId);
            Assert.Contains(dir.File(LibTorchRestore.ManifestFileName), ex.Message);
        }

        /// <summary>A NuGet v3 feed on 127.0.0.1: a service index naming a flat container, which serves one package (or none).</summary>
        sealed class TinyNuGetFeed : IDisposable
        {
            readonly TcpListener listener = new(IPAddress.Loopback, 0);
            readonly CancellationTokenSource stop = new();
            readonly Task loop;
            readonly System.Collections.Concurrent.ConcurrentQueue<string> requests = new();

            public TinyNuGetFeed(byte[]? nupkg)
            {
                listener.Start();
                loop = Task.Run(() => Serve(nupkg));
            }

            public string ServiceIndex => $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/v3/index.json";
            public string[] Requests => requests.ToArray();

            async Task Serve(byte[]? nupkg)
            {
                while (!stop.IsCancellationRequested)
                {
                    TcpClient client;
                    try { client = await listener.AcceptTcpClientAsync(stop.Token); }
                    catch (Exception) { return; }
                    using (client)
                    {
                        var stream = client.GetStream();
                        var reader = new StreamReader(stream, Encoding.ASCII);
                        string requestLine = await reader.ReadLineAsync() ?? "";
                        while (!string.IsNullOrEmpty(await reader.ReadLineAsync())) { }
                        string path = requestLine.Split(' ').ElementAtOrDefault(1) ?? "";
                        requests.Enqueue(path);
                        byte[] body; string status;
                        if (path == "/v3/index.json")
                        {
                            string baseAddress = ServiceIndex.Replace("/v3/index.json", "/flat/");
                            body = Encoding.UTF8.GetBytes($"{{\"version\": \"3.0.0\", \"resources\": [{{\"@id\": \"{baseAddress}\", \"@type\": \"PackageBaseAddress/3.0.0\"}}]}}");
                            status = "200 OK";
                        }
                        else if (nupkg != null && path == "/flat/libtorch-cpu-linux-x64/2.10.0/libtorch-cpu-linux-x64.2.10.0.nupkg")
                            (body, status) = (nupkg, "200 OK");
                        else
                            (body, status) = (Array.Empty<byte>(), "404 Not Found");
                        byte[] head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
                        await stream.WriteAsync(head);
                        await stream.WriteAsync(body);
                    }
                }
            }

            public void Dispose()
            {
                stop.Cancel();
                listener.Stop();
                try { loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
                stop.Dispose();
            }
        }
    }
}
