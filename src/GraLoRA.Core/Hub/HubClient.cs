using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using GraLoRA.IO;
using System.Threading;
using System.Threading.Tasks;

namespace GraLoRA.Hub
{
    /// <summary>
    /// Downloads model files from the Hugging Face Hub into the shared cache, in huggingface_hub's
    /// layout (see <see cref="HubCache"/>), like Python's <c>hf_hub_download</c> and <c>snapshot_download</c>:
    /// files already cached are not downloaded again, interrupted downloads resume from
    /// <c>blobs/&lt;etag&gt;.incomplete</c>, and every blob is checked against its ETag (SHA-256 or git
    /// blob SHA-1) before it is moved into place. With <see cref="HubSettings.Offline"/> no request is made.
    /// </summary>
    public sealed class HubClient : IDisposable
    {
        const int ChunkBytes = 1 << 16;
        const long ReportEveryBytes = 1 << 20;
        const int MaxRetriesWithoutProgress = 5;

        readonly HubHttp http;

        /// <summary>The settings in use.</summary>
        public HubSettings Settings { get; }

        /// <summary>The cache the client reads and fills.</summary>
        public HubCache Cache { get; }

        /// <summary>Delay before resuming a download that broke off (tests shorten it).</summary>
        internal TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

        /// <summary>Creates a client.</summary>
        /// <param name="settings">Endpoint, cache, token and offline mode, usually <see cref="HubSettings.FromEnvironment"/>.</param>
        /// <param name="handler">
        /// An HTTP handler to use instead of the default one (proxies, tests). It must not follow redirects
        /// itself: the client follows them so that the token never leaves the endpoint's host. It is not disposed.
        /// </param>
        public HubClient(HubSettings settings, HttpMessageHandler? handler = null)
        {
            Settings = settings ?? throw new ArgumentNullException(nameof(settings));
            Cache = new HubCache(settings.CacheDirectory);
            http = new HubHttp(settings, handler);
        }

        /// <summary>Releases the HTTP connections.</summary>
        public void Dispose() => http.Dispose();

        /// <summary>
        /// Makes one file of a model repository available in the cache and returns its snapshot path,
        /// <c>&lt;cache&gt;/models--org--name/snapshots/&lt;commit&gt;/&lt;path&gt;</c>.
        /// </summary>
        /// <param name="repoId">"org/name" or "name".</param>
        /// <param name="path">The file's path in the repository, '/'-separated.</param>
        /// <param name="revision">Branch, tag or commit sha; "main" when null.</param>
        /// <param name="progress">Receives byte counts while the file downloads.</param>
        /// <param name="cancellationToken">Stops the download; the partial file is kept for resuming.</param>
        public Task<string> DownloadFileAsync(string repoId, string path, string? revision = null,
            IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
        {
            HubNames.ValidateRepoId(repoId);
            HubNames.ValidateFilePath(path);
            revision ??= HubNames.DefaultRevision;
            HubNames.ValidateRevision(revision);
            return DownloadFileCoreAsync(new HubTarget(repoId, revision, path), progress, 1, 1, cancellationToken);
        }

        /// <summary>
        /// Makes the files of a model repository at one revision available in the cache (all of them, or
        /// those matching <paramref name="allowPatterns"/> and not <paramref name="ignorePatterns"/>) and
        /// returns the snapshot folder, <c>&lt;cache&gt;/models--org--name/snapshots/&lt;commit&gt;</c>.
        /// </summary>
        /// <param name="repoId">"org/name" or "name".</param>
        /// <param name="revision">Branch, tag or commit sha; "main" when null.</param>
        /// <param name="allowPatterns">fnmatch globs such as "*.json", "*.safetensors", "tokenizer*"; null for every file.</param>
        /// <param name="ignorePatterns">fnmatch globs of files to leave out.</param>
        /// <param name="progress">Receives byte counts per file.</param>
        /// <param name="cancellationToken">Stops the download; partial files are kept for resuming.</param>
        public async Task<string> SnapshotDownloadAsync(string repoId, string? revision = null, IReadOnlyList<string>? allowPatterns = null,
            IReadOnlyList<string>? ignorePatterns = null, IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
        {
            HubNames.ValidateRepoId(repoId);
            revision ??= HubNames.DefaultRevision;
            HubNames.ValidateRevision(revision);
            var patterns = new HubPatterns(allowPatterns, ignorePatterns);
            var target = new HubTarget(repoId, revision, null);

            if (Settings.Offline)
                return CachedSnapshot(target, patterns, allowPatterns) ?? throw OfflineSnapshotMiss(target, allowPatterns);

            HubRepoInfo info;
            try
            {
                info = await http.GetRepoInfoAsync(target, cancellationToken).ConfigureAwait(false);
            }
            catch (GraloraException ex) when (CanFallBackToCache(ex))
            {
                // Network down, Hub failing, or no access: a snapshot already cached still serves, as in huggingface_hub.
                string? cached = CachedSnapshot(target, patterns, allowPatterns);
                if (cached is null) throw;
                return cached;
            }

            Cache.EnsureCacheDirTag();
            Cache.WriteRef(repoId, revision, info.Commit);
            var files = info.Files.Where(patterns.Matches).ToList();
            for (int i = 0; i < files.Count; i++)
                await DownloadFileCoreAsync(new HubTarget(repoId, info.Commit, files[i]), progress, i + 1, files.Count, cancellationToken).ConfigureAwait(false);
            string folder = Cache.SnapshotFolder(repoId, info.Commit);
            Directory.CreateDirectory(folder);
            return folder;
        }

        /// <summary>Synchronous <see cref="DownloadFileAsync"/>, for cmdlets.</summary>
        public string DownloadFile(string repoId, string path, string? revision = null,
            IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default) =>
            Task.Run(() => DownloadFileAsync(repoId, path, revision, progress, cancellationToken)).GetAwaiter().GetResult();

        /// <summary>Synchronous <see cref="SnapshotDownloadAsync"/>, for cmdlets.</summary>
        public string SnapshotDownload(string repoId, string? revision = null, IReadOnlyList<string>? allowPatterns = null,
            IReadOnlyList<string>? ignorePatterns = null, IProgress<HubDownloadProgress>? progress = null, CancellationToken cancellationToken = default) =>
            Task.Run(() => SnapshotDownloadAsync(repoId, revision, allowPatterns, ignorePatterns, progress, cancellationToken)).GetAwaiter().GetResult();

        // Errors after which huggingface_hub looks in the cache before giving up; a 404 is final.
        static bool CanFallBackToCache(GraloraException ex) => ex.ErrorId is "HubRequestFailed" or "HubUnauthorized" or "HubInvalidResponse";

        /// <summary>The cached snapshot folder of the revision, when it has at least one file the patterns ask for.</summary>
        string? CachedSnapshot(HubTarget t, HubPatterns patterns, IReadOnlyList<string>? allowPatterns)
        {
            string? commit = Cache.ResolveCommit(t.RepoId, t.Revision);
            if (commit is null) return null;
            string folder = Cache.SnapshotFolder(t.RepoId, commit);
            bool present = Directory.Exists(folder)
                && (allowPatterns is null || Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
                    .Any(f => patterns.Matches(Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/'))));
            return present ? folder : null;
        }

        GraloraException OfflineSnapshotMiss(HubTarget t, IReadOnlyList<string>? allowPatterns)
        {
            string? commit = Cache.ResolveCommit(t.RepoId, t.Revision);
            string what = allowPatterns is null ? "A snapshot of" : $"No file matching {string.Join(", ", allowPatterns.Select(p => "'" + p + "'"))} of";
            return OfflineMiss(t, $"{what} repository '{t.RepoId}' at revision '{t.Revision}'" + (commit is null ? "" : $" (commit {commit})"));
        }

        GraloraException OfflineMiss(HubTarget t, string what) =>
            new("HubOfflineCacheMiss", GraloraErrorKind.NotFound,
                $"{what} is not in the Hub cache '{Cache.Directory}', and HF_HUB_OFFLINE is set so it cannot be downloaded. "
                + "Download it once with network access (unset HF_HUB_OFFLINE), or set HF_HUB_CACHE to a cache that has it.", t.Path ?? t.RepoId);

        async Task<string> DownloadFileCoreAsync(HubTarget t, IProgress<HubDownloadProgress>? progress, int index, int count, CancellationToken ct)
        {
            string path = t.Path!;
            void Report(long done, long total, bool cached, bool complete) =>
                progress?.Report(new HubDownloadProgress(t.RepoId, path, done, total, index, count, cached, complete));
            string? FromCache(string? commit)
            {
                if (commit is null) return null;
                string pointer = Cache.PointerPath(t.RepoId, commit, path);
                if (!HubCache.PointerExists(pointer)) return null;
                long size = new FileInfo(pointer).Length;
                Report(size, size, true, true);
                return pointer;
            }

            // A commit sha never changes: a cached file needs no request at all.
            if (HubNames.IsCommitHash(t.Revision) && FromCache(t.Revision) is string pinned)
                return pinned;
            if (Settings.Offline)
            {
                string? commit = Cache.ResolveCommit(t.RepoId, t.Revision);
                return FromCache(commit) ?? throw OfflineMiss(t,
                    $"File '{path}' of repository '{t.RepoId}' at revision '{t.Revision}'" + (commit is null || commit == t.Revision ? "" : $" (commit {commit})"));
            }

            HubFileMetadata meta;
            try
            {
                meta = await http.HeadFileAsync(t, ct).ConfigureAwait(false);
            }
            catch (GraloraException ex) when (CanFallBackToCache(ex))
            {
                // As huggingface_hub: when the Hub cannot be asked, a file cached for this revision still serves.
                string? cached = FromCache(Cache.ResolveCommit(t.RepoId, t.Revision));
                if (cached is null) throw;
                return cached;
            }

            string blob = Cache.BlobPath(t.RepoId, meta.Etag);
            string pointerPath = Cache.PointerPath(t.RepoId, meta.Commit, path);
            if (HubCache.PointerExists(pointerPath) && new FileInfo(pointerPath).Length == meta.Size)
            {
                try { Cache.WriteRef(t.RepoId, t.Revision, meta.Commit); }
                catch (GraloraException) { } // a read-only cache still serves what it has
                Report(meta.Size, meta.Size, true, true);
                return pointerPath;
            }

            Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
            Cache.EnsureCacheDirTag();
            Cache.WriteRef(t.RepoId, t.Revision, meta.Commit);
            string lockPath = Cache.LockPath(t.RepoId, meta.Etag);
            Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
            bool downloaded = false;
            using (await AcquireLockAsync(lockPath, ct).ConfigureAwait(false))
            {
                // Another process may have finished it while we waited; a blob of the wrong size is fetched again.
                if (!(File.Exists(blob) && new FileInfo(blob).Length == meta.Size))
                {
                    File.Delete(blob);
                    await FetchBlobAsync(t, meta, blob, (done, complete) => Report(done, meta.Size, false, complete), ct).ConfigureAwait(false);
                    downloaded = true;
                }
                HubCache.CreatePointer(blob, pointerPath);
            }
            if (!downloaded) Report(meta.Size, meta.Size, true, true);
            return pointerPath;
        }

        /// <summary>
        /// Downloads into <c>&lt;blob&gt;.incomplete</c>, resuming what is there with a Range request and
        /// retrying reads that break off; checks size and hash; renames the result to <paramref name="blob"/>.
        /// </summary>
        async Task FetchBlobAsync(HubTarget t, HubFileMetadata meta, string blob, Action<long, bool> report, CancellationToken ct)
        {
            string incomplete = blob + ".incomplete";
            using var hasher = BlobHasher.For(meta.Etag, meta.Size);
            FileStream? file = null;
            bool keepPartial = true;
            try
            {
                file = new FileStream(incomplete, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, ChunkBytes, useAsync: true);
                var buffer = new byte[ChunkBytes];
                long have = file.Length;
                if (have > meta.Size) { file.SetLength(0); have = 0; }
                if (have > 0 && hasher is not null)
                {
                    // The hash covers the whole file: feed it what an earlier run left.
                    file.Position = 0;
                    for (long left = have; left > 0;)
                    {
                        int n = await file.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), ct).ConfigureAwait(false);
                        if (n == 0) throw new IOException("the partial file shrank while being read");
                        hasher.Append(buffer.AsSpan(0, n));
                        left -= n;
                    }
                }
                file.Position = have;
                report(have, false);

                long lastReport = have;
                int failures = 0;
                while (have < meta.Size)
                {
                    using var response = await http.GetContentAsync(meta.Location, have, t, ct).ConfigureAwait(false);
                    if (have > 0 && response.StatusCode != HttpStatusCode.PartialContent)
                    {
                        // The server ignored the Range header and sends everything: start over.
                        file.SetLength(0);
                        file.Position = 0;
                        have = 0;
                        hasher?.Reset();
                    }
                    else if (response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From != have)
                    {
                        throw http.UnexpectedRange(t, meta.Location, response.Content.Headers.ContentRange?.ToString(), have);
                    }

                    using var readCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    try
                    {
                        using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                        while (true)
                        {
                            readCts.CancelAfter(Settings.DownloadTimeout);
                            int n = await body.ReadAsync(buffer, readCts.Token).ConfigureAwait(false);
                            readCts.CancelAfter(Timeout.InfiniteTimeSpan);
                            if (n == 0) break;
                            if (have + n > meta.Size)
                            {
                                keepPartial = false;
                                throw Integrity(t, incomplete, $"the server sent more than the {meta.Size} bytes announced");
                            }
                            await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                            hasher?.Append(buffer.AsSpan(0, n));
                            have += n;
                            failures = 0;
                            if (have - lastReport >= ReportEveryBytes) { report(have, false); lastReport = have; }
                        }
                    }
                    catch (Exception ex) when ((ex is IOException || ex is HttpRequestException || ex is OperationCanceledException) && !ct.IsCancellationRequested)
                    {
                        // The connection broke off or stalled past HF_HUB_DOWNLOAD_TIMEOUT: resume from what we have,
                        // as huggingface_hub's http_get does, giving up after a few tries that bring nothing.
                        if (++failures > MaxRetriesWithoutProgress)
                            throw ex is OperationCanceledException
                                ? http.ReadTimedOut(t, meta.Location, ex)
                                : http.BrokenDownload(t, meta.Location, have, meta.Size, incomplete, ex);
                        await file.FlushAsync(ct).ConfigureAwait(false);
                        await Task.Delay(RetryDelay, ct).ConfigureAwait(false);
                        continue;
                    }
                    if (have < meta.Size && ++failures > MaxRetriesWithoutProgress)
                        throw http.BrokenDownload(t, meta.Location, have, meta.Size, incomplete, new IOException("the body ended early"));
                }

                file.Flush(flushToDisk: true);
                if (file.Length != meta.Size)
                {
                    keepPartial = false;
                    throw Integrity(t, incomplete, $"it has {file.Length} bytes, the Hub announced {meta.Size}");
                }
                if (hasher is not null)
                {
                    string actual = hasher.Finish();
                    if (!string.Equals(actual, meta.Etag, StringComparison.Ordinal))
                    {
                        keepPartial = false;
                        throw Integrity(t, incomplete, $"its {hasher.Algorithm} is {actual}, the Hub's ETag is {meta.Etag}");
                    }
                }
                file.Dispose();
                File.Move(incomplete, blob, overwrite: true);
                AtomicFile.SyncDirectory(Path.GetDirectoryName(blob)!);       // the rename, so a crash cannot lose a verified blob
                report(meta.Size, true);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw new GraloraException("HubCacheWriteFailed", GraloraErrorKind.IOFailure,
                    $"Could not write '{incomplete}' in the Hub cache: {ex.Message}. Check free space and that the cache folder is writable, or set HF_HUB_CACHE to another folder.", incomplete, ex);
            }
            finally
            {
                file?.Dispose();
                if (!keepPartial) File.Delete(incomplete);
            }
        }

        static GraloraException Integrity(HubTarget t, string incomplete, string problem) =>
            new("HubIntegrityError", GraloraErrorKind.InvalidData,
                $"The download of file '{t.Path}' of repository '{t.RepoId}' at revision '{t.Revision}' is corrupt: {problem}. "
                + $"The partial file '{incomplete}' was deleted; run the download again, and if it fails the same way the mirror or proxy serving HF_ENDPOINT is altering content.", t.Path);

        /// <summary>
        /// Takes the per-blob lock (the file huggingface_hub locks too; exclusive open = flock on Unix),
        /// waiting while another process or thread holds it.
        /// </summary>
        internal static async Task<FileStream> AcquireLockAsync(string lockPath, CancellationToken ct)
        {
            while (true)
            {
                try
                {
                    return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                }
                catch (IOException ex) when (IsLockConflict(ex))
                {
                    await Task.Delay(100, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
                {
                    throw new GraloraException("HubCacheWriteFailed", GraloraErrorKind.IOFailure,
                        $"Could not create the lock file '{lockPath}' in the Hub cache: {ex.Message}. Check that the cache folder is writable, or set HF_HUB_CACHE to another folder.", lockPath, ex);
                }
            }
        }

        // Unix reports the flock conflict as EWOULDBLOCK (11 on Linux, 35 on macOS); Windows as a sharing or lock violation.
        static bool IsLockConflict(IOException ex) =>
            ex.HResult is 11 or 35 or unchecked((int)0x80070020) or unchecked((int)0x80070021);
    }
}
