using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using GraLoRA.Hub;
using GraLoRA.IO;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>The Hub client against <see cref="FakeHubServer"/> on the loopback interface.</summary>
    public sealed class HubClientTests : IDisposable
    {
        const string Repo = FakeHubServer.RepoId;
        const string Commit = FakeHubServer.Commit;

        readonly TempDirectory tmp = new();
        readonly FakeHubServer server = new();

        public void Dispose()
        {
            server.Dispose();
            tmp.Dispose();
        }

        string HfHome => tmp.File("hf");
        string CacheDir => Path.Combine(HfHome, "hub");
        string RepoDir => Path.Combine(CacheDir, "models--test-org--tiny-model");

        HubSettings Settings(params (string Key, string? Value)[] vars)
        {
            var env = new Dictionary<string, string?> { ["HOME"] = tmp.File("home"), ["HF_HOME"] = HfHome, ["HF_ENDPOINT"] = server.Endpoint };
            foreach (var (k, v) in vars) env[k] = v;
            return HubSettings.FromEnvironment(env);
        }

        static HubClient Client(HubSettings settings) => new(settings) { RetryDelay = TimeSpan.FromMilliseconds(10) };

        HubClient Client(params (string Key, string? Value)[] vars) => Client(Settings(vars));

        static string LinkTarget(string path) => new FileInfo(path).LinkTarget ?? throw new Xunit.Sdk.XunitException($"'{path}' is not a symlink");

        sealed class ProgressLog : IProgress<HubDownloadProgress>
        {
            public List<HubDownloadProgress> Reports { get; } = new();
            public void Report(HubDownloadProgress value) { lock (Reports) Reports.Add(value); }
        }

        [Fact]
        public async Task DownloadFile_RegularFile_LaysOutCacheAsHuggingfaceHub()
        {
            using var client = Client();
            string path = await client.DownloadFileAsync(Repo, "config.json");

            var file = server["config.json"];
            Assert.Equal(Path.Combine(RepoDir, "snapshots", Commit, "config.json"), path);
            Assert.Equal(file.Content, File.ReadAllBytes(path));
            Assert.Equal("../../blobs/" + file.GitSha1, LinkTarget(path));
            Assert.Equal(file.Content, File.ReadAllBytes(Path.Combine(RepoDir, "blobs", file.GitSha1)));
            Assert.Equal(Commit, File.ReadAllText(Path.Combine(RepoDir, "refs", "main"))); // no newline, as Python writes it
            Assert.Equal(new[] { file.GitSha1 }, Directory.GetFiles(Path.Combine(RepoDir, "blobs")).Select(Path.GetFileName));
            Assert.True(File.Exists(Path.Combine(CacheDir, ".locks", "models--test-org--tiny-model", file.GitSha1 + ".lock")));
            Assert.True(File.Exists(Path.Combine(CacheDir, "CACHEDIR.TAG")));

            var requests = server.Requests;
            Assert.Equal(new[] { "HEAD", "GET" }, requests.Select(r => r.Method));
            Assert.All(requests, r => Assert.Equal($"/{Repo}/resolve/main/config.json", r.Target));
            Assert.All(requests, r => Assert.Null(r.Header("Authorization")));
        }

        // A crash right after a download must not lose the blob's rename, the snapshot link or the ref: each folder that
        // gained a name is fsynced (the blob itself is flushed before its rename, refs go through AtomicFile).
        [Fact]
        public async Task DownloadFile_FlushesEveryFolderThatGainedAName()
        {
            var synced = new System.Collections.Concurrent.ConcurrentBag<string>();
            void Record(string folder) { if (folder.StartsWith(tmp.Path, StringComparison.Ordinal)) synced.Add(folder); }
            AtomicFile.DirectorySynced += Record;
            try
            {
                using var client = Client();
                await client.DownloadFileAsync(Repo, "config.json");
            }
            finally { AtomicFile.DirectorySynced -= Record; }

            Assert.Contains(Path.Combine(RepoDir, "blobs"), synced);
            Assert.Contains(Path.Combine(RepoDir, "snapshots", Commit), synced);
            Assert.Contains(Path.Combine(RepoDir, "refs"), synced);
        }

        [Fact]
        public async Task DownloadFile_LfsFile_FollowsCdnRedirect_BlobNamedBySha256()
        {
            using var client = Client();
            var progress = new ProgressLog();
            string path = await client.DownloadFileAsync(Repo, "model.safetensors", progress: progress);

            var file = server["model.safetensors"];
            Assert.Equal(file.Content, File.ReadAllBytes(path));
            Assert.Equal("../../blobs/" + file.Sha256, LinkTarget(path));
            Assert.Equal(new[] { "HEAD /test-org/tiny-model/resolve/main/model.safetensors", $"GET /cdn/{file.Sha256}?X-Amz-Signature=fake" },
                server.Requests.Select(r => r.Method + " " + r.Target));
            Assert.Contains(progress.Reports, p => !p.IsComplete && !p.FromCache);
            var last = progress.Reports[^1];
            Assert.True(last.IsComplete);
            Assert.False(last.FromCache);
            Assert.Equal(file.Content.Length, last.BytesDownloaded);
            Assert.Equal(file.Content.Length, last.TotalBytes);
            Assert.Equal("model.safetensors", last.FilePath);
        }

        [Fact]
        public async Task DownloadFile_NestedPath_LinkClimbsOutOfEachFolder()
        {
            using var client = Client();
            string path = await client.DownloadFileAsync(Repo, "sub/dir/file.txt");
            Assert.Equal(Path.Combine(RepoDir, "snapshots", Commit, "sub", "dir", "file.txt"), path);
            Assert.Equal("../../../../blobs/" + server["sub/dir/file.txt"].GitSha1, LinkTarget(path));
            Assert.Equal("nested file\n", File.ReadAllText(path));
            Assert.Equal($"/{Repo}/resolve/main/sub/dir/file.txt", server.Requests[0].Target);
        }

        [Fact]
        public async Task DownloadFile_SecondCall_IsACacheHit_WithoutGet()
        {
            using var client = Client();
            string first = await client.DownloadFileAsync(Repo, "model.safetensors");
            server.ClearRequests();
            var progress = new ProgressLog();
            string second = await client.DownloadFileAsync(Repo, "model.safetensors", progress: progress);
            Assert.Equal(first, second);
            Assert.Equal(new[] { "HEAD" }, server.Requests.Select(r => r.Method));
            Assert.True(Assert.Single(progress.Reports).FromCache);

            server.ClearRequests();
            Assert.Equal(first, await client.DownloadFileAsync(Repo, "model.safetensors", revision: Commit));
            Assert.Empty(server.Requests); // a commit sha cannot move: no request at all
        }

        [Fact]
        public async Task DownloadFile_BlobPresentButPointerMissing_LinksWithoutGet()
        {
            using var client = Client();
            string path = await client.DownloadFileAsync(Repo, "config.json");
            File.Delete(path);
            server.ClearRequests();
            Assert.Equal(path, await client.DownloadFileAsync(Repo, "config.json"));
            Assert.Equal(0, server.ContentGets);
            Assert.Equal(server["config.json"].Content, File.ReadAllBytes(path));
        }

        [Fact]
        public async Task DownloadFile_TruncatedBlob_IsFetchedAgain()
        {
            using var client = Client();
            string path = await client.DownloadFileAsync(Repo, "config.json");
            File.WriteAllText(Path.Combine(RepoDir, "blobs", server["config.json"].GitSha1), "{");
            server.ClearRequests();
            await client.DownloadFileAsync(Repo, "config.json");
            Assert.Equal(1, server.ContentGets);
            Assert.Equal(server["config.json"].Content, File.ReadAllBytes(path));
        }

        [Fact]
        public async Task SnapshotDownload_AllowPatterns_FetchOnlyMatchingFiles()
        {
            using var client = Client();
            var progress = new ProgressLog();
            string folder = await client.SnapshotDownloadAsync(Repo, allowPatterns: new[] { "*.json" }, progress: progress);

            Assert.Equal(Path.Combine(RepoDir, "snapshots", Commit), folder);
            Assert.Equal(new[] { "config.json", "tokenizer.json" }, Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Select(Path.GetFileName).Order());
            Assert.Equal(server["tokenizer.json"].Content, File.ReadAllBytes(Path.Combine(folder, "tokenizer.json")));
            Assert.Equal(Commit, File.ReadAllText(Path.Combine(RepoDir, "refs", "main")));
            Assert.Equal($"/api/models/{Repo}/revision/main", server.Requests[0].Target);
            Assert.DoesNotContain(server.Requests, r => r.Target.Contains("safetensors", StringComparison.Ordinal));
            // Files are fetched at the commit the listing named, not at the moving branch.
            Assert.All(server.Requests.Skip(1), r => Assert.StartsWith($"/{Repo}/resolve/{Commit}/", r.Target));
            Assert.All(progress.Reports, p => Assert.Equal(2, p.FileCount));
            Assert.Equal(new[] { 1, 2 }, progress.Reports.Where(p => p.IsComplete).Select(p => p.FileIndex));

            server.ClearRequests();
            await client.SnapshotDownloadAsync(Repo, allowPatterns: new[] { "tokenizer*", "sub/" });
            Assert.True(File.Exists(Path.Combine(folder, "sub", "dir", "file.txt")));
            Assert.False(File.Exists(Path.Combine(folder, "model.safetensors")));
            Assert.DoesNotContain(server.Requests, r => r.Target.Contains("tokenizer.json", StringComparison.Ordinal)); // already cached at this commit
        }

        [Fact]
        public async Task SnapshotDownload_Everything_ThenCacheHitAsksOnlyForTheListing()
        {
            using var client = Client();
            string folder = await client.SnapshotDownloadAsync(Repo, ignorePatterns: new[] { "tokenizer*" });
            Assert.Equal(new[] { "config.json", "file.txt", "model.safetensors" }, Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Select(Path.GetFileName).Order());
            Assert.Equal(server["model.safetensors"].Content, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));

            server.ClearRequests();
            Assert.Equal(folder, client.SnapshotDownload(Repo, ignorePatterns: new[] { "tokenizer*" }));
            Assert.Equal(new[] { $"GET /api/models/{Repo}/revision/main" }, server.Requests.Select(r => r.Method + " " + r.Target));
        }

        [Fact]
        public async Task Revision_PrRef_IsUrlEncoded_AndStoredAsNestedRef()
        {
            using var client = Client();
            await client.SnapshotDownloadAsync(Repo, revision: "refs/pr/1", allowPatterns: new[] { "config.json" });
            Assert.Equal($"/api/models/{Repo}/revision/refs%2Fpr%2F1", server.Requests[0].Target);
            Assert.Equal(Commit, File.ReadAllText(Path.Combine(RepoDir, "refs", "refs", "pr", "1")));

            server.ClearRequests();
            await client.DownloadFileAsync(Repo, "tokenizer.json", revision: "refs/pr/1");
            Assert.Equal($"/{Repo}/resolve/refs%2Fpr%2F1/tokenizer.json", server.Requests[0].Target);
        }

        [Fact]
        public async Task Resume_ConnectionDroppedMidway_ResumesWithRange()
        {
            var file = server["model.safetensors"];
            server.DropAfterBytesOnce("model.safetensors", 70_000);
            using var client = Client();
            string path = await client.DownloadFileAsync(Repo, "model.safetensors");

            Assert.Equal(file.Content, File.ReadAllBytes(path));
            var gets = server.Requests.Where(r => r.IsContent).ToList();
            Assert.Equal(2, gets.Count);
            Assert.Null(gets[0].Header("Range"));
            string range = gets[1].Header("Range")!;
            Assert.StartsWith("bytes=", range);
            long from = long.Parse(range.Substring(6).TrimEnd('-'));
            Assert.InRange(from, 1, 70_000);
            Assert.False(File.Exists(Path.Combine(RepoDir, "blobs", file.Sha256 + ".incomplete")));
        }

        [Fact]
        public async Task Resume_StalledDownload_TimesOutAndResumes()
        {
            var file = server["model.safetensors"];
            server.StallAfterBytesOnce("model.safetensors", 100_000);
            using var client = Client(("HF_HUB_DOWNLOAD_TIMEOUT", "1"));
            var watch = System.Diagnostics.Stopwatch.StartNew();
            string path = await client.DownloadFileAsync(Repo, "model.safetensors");
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
            Assert.Equal(file.Content, File.ReadAllBytes(path));
            var gets = server.Requests.Where(r => r.IsContent).ToList();
            Assert.Equal(2, gets.Count);
            Assert.Equal("bytes=100000-", gets[1].Header("Range"));
        }

        [Fact]
        public async Task Timeout_HubThatNeverAnswers_NamesTheVariable()
        {
            server.Hang = true;
            using var client = Client(("HF_HUB_ETAG_TIMEOUT", "0.3"));
            var ex = await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync(Repo, "config.json"));
            Assert.Equal("HubRequestFailed", ex.ErrorId);
            Assert.Contains("HF_HUB_ETAG_TIMEOUT", ex.Message);
            var snap = await Assert.ThrowsAsync<GraloraException>(() => client.SnapshotDownloadAsync(Repo));
            Assert.Contains("HF_HUB_ETAG_TIMEOUT", snap.Message);
        }

        [Fact]
        public async Task Cancellation_KeepsThePartialFileForResuming()
        {
            var file = server["model.safetensors"];
            server.StallAfterBytesOnce("model.safetensors", 100_000);
            using var client = Client(("HF_HUB_DOWNLOAD_TIMEOUT", "20"));
            using var cts = new System.Threading.CancellationTokenSource(TimeSpan.FromSeconds(1));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.DownloadFileAsync(Repo, "model.safetensors", cancellationToken: cts.Token));
            string incomplete = Path.Combine(RepoDir, "blobs", file.Sha256 + ".incomplete");
            Assert.Equal(100_000, new FileInfo(incomplete).Length);
            Assert.False(File.Exists(Path.Combine(RepoDir, "blobs", file.Sha256)));

            Assert.Equal(file.Content, File.ReadAllBytes(await client.DownloadFileAsync(Repo, "model.safetensors")));
            Assert.Equal("bytes=100000-", server.Requests.Last(r => r.IsContent).Header("Range"));
        }

        [Fact]
        public async Task Resume_FromIncompleteFileOfAnEarlierRun()
        {
            var file = server["model.safetensors"];
            Directory.CreateDirectory(Path.Combine(RepoDir, "blobs"));
            string incomplete = Path.Combine(RepoDir, "blobs", file.Sha256 + ".incomplete");
            File.WriteAllBytes(incomplete, file.Content.AsSpan(0, 123_456).ToArray());

            using var client = Client();
            string path = await client.DownloadFileAsync(Repo, "model.safetensors");
            Assert.Equal(file.Content, File.ReadAllBytes(path));
            var get = Assert.Single(server.Requests, r => r.IsContent);
            Assert.Equal("bytes=123456-", get.Header("Range"));
            Assert.False(File.Exists(incomplete));
        }

        [Fact]
        public async Task Resume_ServerIgnoringRange_StartsOver()
        {
            var file = server["config.json"];
            Directory.CreateDirectory(Path.Combine(RepoDir, "blobs"));
            File.WriteAllBytes(Path.Combine(RepoDir, "blobs", file.GitSha1 + ".incomplete"), file.Content.AsSpan(0, 10).ToArray());
            server.IgnoreRange = true;
            using var client = Client();
            Assert.Equal(file.Content, File.ReadAllBytes(await client.DownloadFileAsync(Repo, "config.json")));
        }

        [Fact]
        public async Task Resume_CorruptPrefixOfEarlierRun_IsCaughtByTheHash()
        {
            var file = server["model.safetensors"];
            Directory.CreateDirectory(Path.Combine(RepoDir, "blobs"));
            string incomplete = Path.Combine(RepoDir, "blobs", file.Sha256 + ".incomplete");
            File.WriteAllBytes(incomplete, new byte[1000]);
            using var client = Client();
            var ex = await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync(Repo, "model.safetensors"));
            Assert.Equal("HubIntegrityError", ex.ErrorId);
            Assert.False(File.Exists(incomplete));
            // The next run starts clean and succeeds.
            Assert.Equal(file.Content, File.ReadAllBytes(await client.DownloadFileAsync(Repo, "model.safetensors")));
        }

        [Theory]
        [InlineData("model.safetensors", "sha256")]
        [InlineData("config.json", "git-sha1")]
        public async Task Integrity_CorruptContent_FailsAndLeavesNoBlob(string name, string algorithm)
        {
            var file = server[name];
            server.Corrupt.Add(name);
            using var client = Client();
            var ex = await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync(Repo, name));
            Assert.Equal("HubIntegrityError", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidData, ex.Kind);
            Assert.Contains(name, ex.Message);
            Assert.Contains(algorithm, ex.Message);
            Assert.Contains(file.Etag, ex.Message);
            var corrupted = (byte[])file.Content.Clone();
            corrupted[corrupted.Length / 2] ^= 0xFF;
            string actual = file.Lfs ? Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(corrupted)).ToLowerInvariant() : FakeHubFile.GitBlobSha1(corrupted);
            Assert.Contains(actual, ex.Message);
            Assert.Empty(Directory.GetFiles(Path.Combine(RepoDir, "blobs")));
            Assert.False(Directory.Exists(Path.Combine(RepoDir, "snapshots", Commit)) && Directory.EnumerateFileSystemEntries(Path.Combine(RepoDir, "snapshots", Commit)).Any());
        }

        [Fact]
        public async Task Token_FromHfToken_SentAsBearer()
        {
            server.RequiredToken = "hf_secret_token_123";
            using var client = Client(("HF_TOKEN", "hf_secret_token_123"));
            await client.SnapshotDownloadAsync(Repo, allowPatterns: new[] { "*.json", "*.safetensors" });
            var toHub = server.Requests.Where(r => !r.Target.StartsWith("/cdn/", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(toHub);
            Assert.All(toHub, r => Assert.Equal("Bearer hf_secret_token_123", r.Header("Authorization")));
        }

        [Fact]
        public async Task Token_FromTokenFileInHfHome()
        {
            server.RequiredToken = "hf_file_token_456";
            Directory.CreateDirectory(HfHome);
            File.WriteAllText(Path.Combine(HfHome, "token"), "hf_file_token_456\n");
            using var client = Client();
            string path = await client.DownloadFileAsync(Repo, "config.json");
            Assert.Equal(server["config.json"].Content, File.ReadAllBytes(path));
            Assert.All(server.Requests, r => Assert.Equal("Bearer hf_file_token_456", r.Header("Authorization")));
        }

        [Fact]
        public async Task Unauthorized_WithoutToken_NamesRepoAndHfToken()
        {
            server.RequiredToken = "hf_secret_token_123";
            using var client = Client();
            var ex = await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync(Repo, "config.json"));
            Assert.Equal("HubUnauthorized", ex.ErrorId);
            Assert.Contains(Repo, ex.Message);
            Assert.Contains("HF_TOKEN", ex.Message);
            Assert.Contains("401", ex.Message);

            var snap = await Assert.ThrowsAsync<GraloraException>(() => client.SnapshotDownloadAsync(Repo));
            Assert.Equal("HubUnauthorized", snap.ErrorId);
        }

        [Fact]
        public async Task Unauthorized_WrongToken_MessageNeverContainsIt()
        {
            server.RequiredToken = "hf_right_token";
            using var client = Client(("HF_TOKEN", "hf_wrong_token_789"));
            var ex = await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync(Repo, "config.json"));
            Assert.Equal("HubUnauthorized", ex.ErrorId);
            Assert.DoesNotContain("hf_wrong_token_789", ex.ToString());
            Assert.Contains("HF_TOKEN", ex.Message);
            var snap = await Assert.ThrowsAsync<GraloraException>(() => client.SnapshotDownloadAsync(Repo));
            Assert.DoesNotContain("hf_wrong_token_789", snap.ToString());
        }

        [Fact]
        public async Task Redirect_ToAnotherHost_DoesNotForwardToken()
        {
            server.RequiredToken = "hf_secret_token_123";
            server.LfsOnOtherHost = true;
            using var client = Client(("HF_TOKEN", "hf_secret_token_123"));
            string path = await client.DownloadFileAsync(Repo, "model.safetensors");
            Assert.Equal(server["model.safetensors"].Content, File.ReadAllBytes(path));

            var head = Assert.Single(server.Requests, r => r.Method == "HEAD");
            Assert.Equal(server.Port, head.Port);
            Assert.Equal("Bearer hf_secret_token_123", head.Header("Authorization"));
            var cdn = Assert.Single(server.Requests, r => r.IsContent);
            Assert.Equal(server.OtherPort, cdn.Port);
            Assert.Null(cdn.Header("Authorization"));
        }

        [Fact]
        public async Task Redirect_OnSameHost_KeepsToken()
        {
            server.RequiredToken = "hf_secret_token_123";
            using var client = Client(("HF_TOKEN", "hf_secret_token_123"));
            await client.DownloadFileAsync(Repo, "model.safetensors");
            var cdn = Assert.Single(server.Requests, r => r.IsContent);
            Assert.Equal(server.Port, cdn.Port);
            Assert.Equal("Bearer hf_secret_token_123", cdn.Header("Authorization"));
        }

        [Fact]
        public async Task RenamedRepo_RelativeRedirectsAreFollowed()
        {
            server.Aliases.Add("old-org/tiny-model");
            using var client = Client();
            string folder = await client.SnapshotDownloadAsync("old-org/tiny-model", allowPatterns: new[] { "config.json", "*.safetensors" });
            Assert.Equal(Path.Combine(CacheDir, "models--old-org--tiny-model", "snapshots", Commit), folder);
            Assert.Equal(server["model.safetensors"].Content, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
            Assert.Equal(server["config.json"].Content, File.ReadAllBytes(Path.Combine(folder, "config.json")));
            Assert.Contains(server.Requests, r => r.Target == $"/api/models/{Repo}/revision/main");
            Assert.Contains(server.Requests, r => r.Method == "HEAD" && r.Target == $"/{Repo}/resolve/{Commit}/model.safetensors");
        }

        [Fact]
        public async Task NotFound_RepoRevisionAndFile_AreNamed()
        {
            using var client = Client();
            var file = await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync(Repo, "missing.bin"));
            Assert.Equal("HubNotFound", file.ErrorId);
            Assert.Equal(GraloraErrorKind.NotFound, file.Kind);
            Assert.Contains("'missing.bin'", file.Message);
            Assert.Contains(Repo, file.Message);

            var repo = await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync("nobody/nothing", "config.json"));
            Assert.Equal("HubNotFound", repo.ErrorId);
            Assert.Contains("'nobody/nothing'", repo.Message);

            var revision = await Assert.ThrowsAsync<GraloraException>(() => client.SnapshotDownloadAsync(Repo, revision: "v9.9"));
            Assert.Equal("HubNotFound", revision.ErrorId);
            Assert.Contains("'v9.9'", revision.Message);

            var snapshotRepo = await Assert.ThrowsAsync<GraloraException>(() => client.SnapshotDownloadAsync("nobody/nothing"));
            Assert.Equal("HubNotFound", snapshotRepo.ErrorId);
            Assert.False(Directory.Exists(Path.Combine(CacheDir, "models--nobody--nothing", "blobs")));
        }

        [Fact]
        public async Task InvalidArguments_AreRejectedBeforeAnyRequest()
        {
            using var client = Client();
            Assert.Equal("InvalidRepoId", (await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync("a/b/c", "config.json"))).ErrorId);
            Assert.Equal("InvalidHubPath", (await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync(Repo, "../config.json"))).ErrorId);
            Assert.Equal("InvalidHubPath", (await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync(Repo, "/etc/passwd"))).ErrorId);
            Assert.Equal("InvalidRevision", (await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync(Repo, "config.json", "../../x"))).ErrorId);
            Assert.Equal("InvalidRepoId", (await Assert.ThrowsAsync<GraloraException>(() => client.SnapshotDownloadAsync("bad--id"))).ErrorId);
            Assert.Empty(server.Requests);
        }

        [Fact]
        public async Task Offline_UsesCacheWithoutAnyRequest()
        {
            using (var online = Client())
            {
                await online.SnapshotDownloadAsync(Repo);
            }
            server.ClearRequests();

            using var offline = Client(("HF_HUB_OFFLINE", "1"));
            Assert.True(offline.Settings.Offline);
            string path = await offline.DownloadFileAsync(Repo, "model.safetensors");
            Assert.Equal(server["model.safetensors"].Content, File.ReadAllBytes(path));
            Assert.Equal(Path.Combine(RepoDir, "snapshots", Commit), await offline.SnapshotDownloadAsync(Repo));
            Assert.Equal(Path.Combine(RepoDir, "snapshots", Commit), await offline.SnapshotDownloadAsync(Repo, revision: Commit, allowPatterns: new[] { "*.json" }));
            Assert.Equal(path, offline.DownloadFile(Repo, "model.safetensors", revision: Commit));
            Assert.Empty(server.Requests);
        }

        [Fact]
        public async Task Offline_CacheMiss_ErrorNamesRepoRevisionCacheAndVariable()
        {
            using var offline = Client(("HF_HUB_OFFLINE", "true"));
            var ex = await Assert.ThrowsAsync<GraloraException>(() => offline.DownloadFileAsync(Repo, "config.json"));
            Assert.Equal("HubOfflineCacheMiss", ex.ErrorId);
            Assert.Contains(Repo, ex.Message);
            Assert.Contains("'main'", ex.Message);
            Assert.Contains("config.json", ex.Message);
            Assert.Contains(CacheDir, ex.Message);
            Assert.Contains("HF_HUB_OFFLINE", ex.Message);

            var snap = await Assert.ThrowsAsync<GraloraException>(() => offline.SnapshotDownloadAsync(Repo, revision: "v1"));
            Assert.Equal("HubOfflineCacheMiss", snap.ErrorId);
            Assert.Contains("'v1'", snap.Message);

            // Cached config.json only: a pattern that matches nothing cached is a miss too.
            using (var online = Client()) await online.DownloadFileAsync(Repo, "config.json");
            var patterns = await Assert.ThrowsAsync<GraloraException>(() => offline.SnapshotDownloadAsync(Repo, allowPatterns: new[] { "*.safetensors" }));
            Assert.Equal("HubOfflineCacheMiss", patterns.ErrorId);
            Assert.Contains("*.safetensors", patterns.Message);
            var file = await Assert.ThrowsAsync<GraloraException>(() => offline.DownloadFileAsync(Repo, "tokenizer.json"));
            Assert.Contains(Commit, file.Message);
            Assert.DoesNotContain(server.Requests, r => r.Target.Contains("tokenizer", StringComparison.Ordinal));
        }

        /// <summary>Lays out a cache by hand exactly as Python's huggingface_hub leaves it.</summary>
        string BuildPythonCache(params string[] names)
        {
            string repoDir = RepoDir;
            Directory.CreateDirectory(Path.Combine(repoDir, "blobs"));
            Directory.CreateDirectory(Path.Combine(repoDir, "refs"));
            File.WriteAllText(Path.Combine(repoDir, "refs", "main"), Commit);
            foreach (string name in names)
            {
                var file = server[name];
                File.WriteAllBytes(Path.Combine(repoDir, "blobs", file.Etag), file.Content);
                string pointer = Path.Combine(repoDir, "snapshots", Commit, Path.Combine(name.Split('/')));
                Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
                string up = string.Concat(Enumerable.Repeat("../", name.Count(c => c == '/') + 2));
                File.CreateSymbolicLink(pointer, up + "blobs/" + file.Etag);
            }
            return Path.Combine(repoDir, "snapshots", Commit);
        }

        [Fact]
        public async Task PythonFilledCache_IsReusedWithoutDownloading()
        {
            string snapshot = BuildPythonCache("config.json", "model.safetensors", "sub/dir/file.txt");
            using var client = Client();

            Assert.Equal(Path.Combine(snapshot, "config.json"), await client.DownloadFileAsync(Repo, "config.json", revision: Commit));
            Assert.Empty(server.Requests);

            string model = await client.DownloadFileAsync(Repo, "model.safetensors");
            Assert.Equal(Path.Combine(snapshot, "model.safetensors"), model);
            Assert.Equal(new[] { "HEAD" }, server.Requests.Select(r => r.Method)); // metadata only, as Python does
            Assert.Equal("../../blobs/" + server["model.safetensors"].Sha256, LinkTarget(model)); // untouched

            using var offline = Client(("HF_HUB_OFFLINE", "1"));
            server.ClearRequests();
            Assert.Equal(snapshot, await offline.SnapshotDownloadAsync(Repo));
            Assert.Equal(Path.Combine(snapshot, "sub", "dir", "file.txt"), await offline.DownloadFileAsync(Repo, "sub/dir/file.txt"));
            Assert.Equal(Path.Combine(snapshot, "config.json"), client.Cache.TryGetCachedFile(Repo, "config.json"));
            Assert.Null(client.Cache.TryGetCachedFile(Repo, "tokenizer.json"));
            Assert.Empty(server.Requests);

            // Online, only what is missing is fetched.
            await client.SnapshotDownloadAsync(Repo);
            Assert.Equal(new[] { "tokenizer.json" }, server.Requests.Where(r => r.IsContent).Select(r => r.Target.Split('/').Last()));
        }

        [Fact]
        public async Task HubUnreachable_FallsBackToCachedFile_ElseClearError()
        {
            BuildPythonCache("config.json");
            int deadPort;
            using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
            {
                probe.Start();
                deadPort = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
            }
            using var client = Client(("HF_ENDPOINT", $"http://127.0.0.1:{deadPort}"));
            Assert.Equal(Path.Combine(RepoDir, "snapshots", Commit, "config.json"), await client.DownloadFileAsync(Repo, "config.json"));
            Assert.Equal(Path.Combine(RepoDir, "snapshots", Commit), await client.SnapshotDownloadAsync(Repo));

            var ex = await Assert.ThrowsAsync<GraloraException>(() => client.DownloadFileAsync(Repo, "tokenizer.json"));
            Assert.Equal("HubRequestFailed", ex.ErrorId);
            Assert.Contains($"127.0.0.1:{deadPort}", ex.Message);
            Assert.Contains("HF_HUB_OFFLINE", ex.Message);
        }

        [Fact]
        public async Task Cache_HfHubCacheWinsOverHfHome()
        {
            string custom = tmp.File("custom-cache");
            using var client = Client(("HF_HUB_CACHE", custom));
            string path = await client.DownloadFileAsync(Repo, "config.json");
            Assert.StartsWith(Path.Combine(custom, "models--test-org--tiny-model", "snapshots", Commit), path);
            Assert.False(Directory.Exists(CacheDir));
        }

        [Fact]
        public async Task Lock_HeldByAnotherWriter_DownloadWaits()
        {
            var file = server["config.json"];
            using var client = Client();
            string lockPath = Path.Combine(CacheDir, ".locks", "models--test-org--tiny-model", file.GitSha1 + ".lock");
            Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
            Task<string> download;
            using (await HubClient.AcquireLockAsync(lockPath, default))
            {
                download = client.DownloadFileAsync(Repo, "config.json");
                await Task.Delay(500);
                Assert.False(download.IsCompleted);
                Assert.Equal(0, server.ContentGets);
            }
            Assert.Equal(file.Content, File.ReadAllBytes(await download));
        }

        [Fact]
        public async Task ConcurrentDownloads_OfOneFile_FetchItOnce()
        {
            using var a = Client();
            using var b = Client();
            var results = await Task.WhenAll(a.DownloadFileAsync(Repo, "model.safetensors"), b.DownloadFileAsync(Repo, "model.safetensors"));
            Assert.Equal(results[0], results[1]);
            Assert.Equal(server["model.safetensors"].Content, File.ReadAllBytes(results[0]));
            Assert.Equal(1, server.ContentGets);
        }
    }
}
