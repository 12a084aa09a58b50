namespace GraLoRA.Hub
{
    /// <summary>Progress of one file of a Hub download (reported at its start, about every MiB, and at its end).</summary>
    public sealed class HubDownloadProgress
    {
        /// <summary>The repository, e.g. "Qwen/Qwen2.5-0.5B".</summary>
        public string RepoId { get; }
        /// <summary>The file's path inside the repository.</summary>
        public string FilePath { get; }
        /// <summary>Bytes of this file on disk so far, counting a resumed partial download.</summary>
        public long BytesDownloaded { get; }
        /// <summary>The file's size.</summary>
        public long TotalBytes { get; }
        /// <summary>1-based position of this file among <see cref="FileCount"/>.</summary>
        public int FileIndex { get; }
        /// <summary>How many files this call fetches (1 for a single file).</summary>
        public int FileCount { get; }
        /// <summary>True when the file was already in the cache and nothing was downloaded.</summary>
        public bool FromCache { get; }
        /// <summary>True on the last report of this file.</summary>
        public bool IsComplete { get; }

        internal HubDownloadProgress(string repoId, string filePath, long bytesDownloaded, long totalBytes, int fileIndex, int fileCount, bool fromCache, bool isComplete)
        {
            RepoId = repoId;
            FilePath = filePath;
            BytesDownloaded = bytesDownloaded;
            TotalBytes = totalBytes;
            FileIndex = fileIndex;
            FileCount = fileCount;
            FromCache = fromCache;
            IsComplete = isComplete;
        }

        /// <summary>"[2/5] model.safetensors 12.0/48.0 MiB".</summary>
        public override string ToString() =>
            $"[{FileIndex}/{FileCount}] {FilePath} {BytesDownloaded / 1048576.0:0.0}/{TotalBytes / 1048576.0:0.0} MiB" + (FromCache ? " (cached)" : "");
    }
}
