using System;
using System.IO;
using System.Text;
using GraLoRA.IO;

namespace GraLoRA.Hub
{
    /// <summary>
    /// The Hub cache folder in huggingface_hub's layout, so that a cache filled by Python is reused
    /// as-is and the other way round:
    /// <code>
    /// &lt;cache&gt;/models--org--name/blobs/&lt;etag&gt;                 file content (git sha1 or LFS sha256)
    /// &lt;cache&gt;/models--org--name/snapshots/&lt;commit&gt;/&lt;path&gt;  relative symlink to ../../blobs/&lt;etag&gt;
    /// &lt;cache&gt;/models--org--name/refs/&lt;revision&gt;            commit sha of a branch or tag
    /// &lt;cache&gt;/.locks/models--org--name/&lt;etag&gt;.lock          held while a blob is written
    /// </code>
    /// </summary>
    public sealed class HubCache
    {
        /// <summary>The cache folder (HF_HUB_CACHE).</summary>
        public string Directory { get; }

        /// <summary>Opens a cache folder; nothing is created until something is downloaded.</summary>
        public HubCache(string directory)
        {
            if (string.IsNullOrWhiteSpace(directory))
                throw new GraloraException("InvalidHubCache", GraloraErrorKind.InvalidArgument, "The Hub cache folder is empty: set HF_HUB_CACHE or HF_HOME, or pass a folder.");
            Directory = Path.GetFullPath(directory);
        }

        /// <summary>huggingface_hub's repo_folder_name: <c>models--org--name</c>.</summary>
        public static string RepoFolderName(string repoId)
        {
            HubNames.ValidateRepoId(repoId);
            return "models--" + repoId.Replace("/", "--", StringComparison.Ordinal);
        }

        /// <summary>The folder of one model repository in the cache.</summary>
        public string RepoFolder(string repoId) => Path.Combine(Directory, RepoFolderName(repoId));

        /// <summary>The snapshot folder of one commit.</summary>
        public string SnapshotFolder(string repoId, string commit) => Path.Combine(RepoFolder(repoId), "snapshots", commit);

        /// <summary>
        /// The commit a revision stands for without asking the network: a 40-hex sha is itself, a branch
        /// or tag is read from <c>refs/&lt;revision&gt;</c>. Null when the cache does not know it.
        /// </summary>
        public string? ResolveCommit(string repoId, string? revision = null)
        {
            revision ??= HubNames.DefaultRevision;
            HubNames.ValidateRevision(revision);
            if (HubNames.IsCommitHash(revision)) return revision;
            string refPath = RefPath(repoId, revision);
            if (!File.Exists(refPath)) return null;
            string commit = File.ReadAllText(refPath).Trim();
            return commit.Length > 0 && HubNames.IsSafeEtag(commit) ? commit : null;
        }

        /// <summary>
        /// The snapshot path of a file already in the cache for <paramref name="revision"/> (default "main"),
        /// or null; like huggingface_hub's try_to_load_from_cache. Touches no network.
        /// </summary>
        public string? TryGetCachedFile(string repoId, string path, string? revision = null)
        {
            HubNames.ValidateFilePath(path);
            string? commit = ResolveCommit(repoId, revision);
            if (commit is null) return null;
            string pointer = PointerPath(repoId, commit, path);
            return PointerExists(pointer) ? pointer : null;
        }

        internal string BlobPath(string repoId, string etag) => Path.Combine(RepoFolder(repoId), "blobs", etag);

        internal string IncompletePath(string repoId, string etag) => BlobPath(repoId, etag) + ".incomplete";

        /// <summary>Where huggingface_hub takes its lock for a blob, so both tools exclude each other (flock on Unix).</summary>
        internal string LockPath(string repoId, string etag) => Path.Combine(Directory, ".locks", RepoFolderName(repoId), etag + ".lock");

        internal string RefPath(string repoId, string revision) =>
            Path.Combine(RepoFolder(repoId), "refs", Path.Combine(revision.Split('/')));

        internal string PointerPath(string repoId, string commit, string path) =>
            Path.Combine(SnapshotFolder(repoId, commit), Path.Combine(path.Split('/')));

        /// <summary>Records the commit of a branch or tag; nothing for a sha, nor when the ref is already right.</summary>
        internal void WriteRef(string repoId, string revision, string commit)
        {
            if (revision == commit) return;
            string refPath = RefPath(repoId, revision);
            if (File.Exists(refPath) && File.ReadAllText(refPath) == commit) return;
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
            AtomicFile.Write(refPath, s => s.Write(Encoding.ASCII.GetBytes(commit)));
        }

        /// <summary>Marks the cache for backup tools (Cache Directory Tagging Standard), as huggingface_hub does.</summary>
        internal void EnsureCacheDirTag()
        {
            string tag = Path.Combine(Directory, "CACHEDIR.TAG");
            if (File.Exists(tag)) return;
            try
            {
                File.WriteAllText(tag, "Signature: 8a477f597d28d172789f06886806bc55\n"
                    + "# This file is a cache directory tag created by GraLoRA (huggingface_hub cache layout).\n"
                    + "# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n");
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException) { }
        }

        /// <summary>True when the path is a file, or a symlink whose final target is a file (a dangling link is not).</summary>
        internal static bool PointerExists(string path)
        {
            var info = new FileInfo(path);
            if (info.LinkTarget is null) return info.Exists;
            try
            {
                return info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo { Exists: true };
            }
            catch (IOException)
            {
                return false;
            }
        }

        /// <summary>The link text huggingface_hub writes: the blob relative to the pointer's folder.</summary>
        internal static string RelativeLinkTarget(string pointer, string blob) =>
            Path.GetRelativePath(Path.GetDirectoryName(Path.GetFullPath(pointer))!, Path.GetFullPath(blob));

        /// <summary>
        /// Points a snapshot path at a blob with a relative symlink; where symlinks cannot be made
        /// (Windows without the privilege) the blob is copied instead, as huggingface_hub does.
        /// </summary>
        internal static void CreatePointer(string blob, string pointer)
        {
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
            var existing = new FileInfo(pointer);
            if (existing.Exists || existing.LinkTarget is not null) existing.Delete();
            string target = RelativeLinkTarget(pointer, blob);
            try
            {
                File.CreateSymbolicLink(pointer, target);
                AtomicFile.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(pointer))!);   // the new name, as for every other write
                return;
            }
            catch (IOException) when (PointerExists(pointer) && SameFile(pointer, blob))
            {
                return; // another process made the same link between our delete and create
            }
            catch (Exception ex) when ((ex is UnauthorizedAccessException || ex is IOException) && OperatingSystem.IsWindows())
            {
                // no symlink privilege: fall through to a copy
            }
            try
            {
                File.Copy(blob, pointer, overwrite: true);
                AtomicFile.SyncFile(pointer);
                AtomicFile.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(pointer))!);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw new GraloraException("HubCacheWriteFailed", GraloraErrorKind.IOFailure,
                    $"Could not create '{pointer}' in the Hub cache: {ex.Message}. Check that the cache folder is writable, or set HF_HUB_CACHE to another folder.", pointer, ex);
            }
        }

        static bool SameFile(string pointer, string blob)
        {
            var resolved = new FileInfo(pointer).ResolveLinkTarget(returnFinalTarget: true);
            return resolved is not null && string.Equals(Path.GetFullPath(resolved.FullName), Path.GetFullPath(blob), StringComparison.Ordinal);
        }
    }
}
