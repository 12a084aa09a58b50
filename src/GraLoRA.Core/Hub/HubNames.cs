using System;
using System.Text.RegularExpressions;

namespace GraLoRA.Hub
{
    /// <summary>Validation of repo ids, file paths, revisions and ETags, as huggingface_hub applies them.</summary>
    internal static class HubNames
    {
        /// <summary>The branch used when no revision is given.</summary>
        public const string DefaultRevision = "main";

        // huggingface_hub's REPO_ID_REGEX: optional namespace, then a name of word chars, '-' and '.',
        // starting and ending on a word character, at most 96 long.
        static readonly Regex RepoId = new(@"^(\b[\w\-.]+\b/)?\b[\w\-.]{1,96}\b$", RegexOptions.CultureInvariant);
        static readonly Regex CommitHash = new("^[0-9a-f]{40}$", RegexOptions.CultureInvariant);
        static readonly Regex Sha256 = new("^[0-9a-f]{64}$", RegexOptions.CultureInvariant);

        public static void ValidateRepoId(string? repoId)
        {
            string? problem =
                string.IsNullOrWhiteSpace(repoId) ? "it is empty"
                : repoId.Split('/').Length > 2 ? "it has more than one '/'"
                : !RepoId.IsMatch(repoId) ? "only letters, digits, '-', '_' and '.' are allowed, the name cannot start or end with '-' or '.', and it is at most 96 characters"
                : repoId.Contains("--", StringComparison.Ordinal) || repoId.Contains("..", StringComparison.Ordinal) ? "it contains '--' or '..'"
                : repoId.EndsWith(".git", StringComparison.Ordinal) ? "it ends with '.git'"
                : null;
            if (problem is not null)
                throw new GraloraException("InvalidRepoId", GraloraErrorKind.InvalidArgument,
                    $"Repo id '{repoId}' is not valid: {problem}. Give it as 'org/name' or 'name', e.g. 'Qwen/Qwen2.5-0.5B'.", repoId);
        }

        /// <summary>A path inside the repository, '/'-separated, that cannot leave the snapshot folder.</summary>
        public static bool IsValidFilePath([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? path) =>
            !string.IsNullOrEmpty(path) && !path.StartsWith('/') && !path.Contains('\\') && !path.Contains('\0')
            && !Array.Exists(path.Split('/'), s => s.Length == 0 || s == "." || s == "..");

        /// <summary>Throws InvalidHubPath unless <see cref="IsValidFilePath"/>.</summary>
        public static void ValidateFilePath(string? path)
        {
            if (!IsValidFilePath(path))
                throw new GraloraException("InvalidHubPath", GraloraErrorKind.InvalidArgument,
                    $"File path '{path}' is not a valid path inside a repository: give it relative to the repository root with '/' separators and no '.', '..' or empty parts, e.g. 'config.json' or 'sub/dir/file.txt'.", path);
        }

        /// <summary>A branch, tag, PR ref (refs/pr/1) or commit sha; stored as <c>refs/&lt;revision&gt;</c>, so it cannot leave that folder.</summary>
        public static void ValidateRevision(string? revision)
        {
            if (string.IsNullOrWhiteSpace(revision) || revision.StartsWith('/') || revision.Contains('\\') || revision.Contains('\0')
                || Array.Exists(revision.Split('/'), s => s.Length == 0 || s == "." || s == ".."))
                throw new GraloraException("InvalidRevision", GraloraErrorKind.InvalidArgument,
                    $"Revision '{revision}' is not valid: give a branch, tag or commit sha such as 'main', 'v1.0', 'refs/pr/1' or a 40-character sha, or omit it for 'main'.", revision);
        }

        public static bool IsCommitHash(string? value) => value is not null && CommitHash.IsMatch(value);

        public static bool IsSha256(string? value) => value is not null && Sha256.IsMatch(value);

        /// <summary>huggingface_hub's _normalize_etag: strip a weak 'W/' prefix and the quotes.</summary>
        public static string? NormalizeEtag(string? etag)
        {
            if (etag is null) return null;
            string e = etag.Trim();
            if (e.StartsWith("W/", StringComparison.Ordinal)) e = e.Substring(2);
            return e.Trim('"');
        }

        /// <summary>An ETag becomes a file name in blobs/: refuse anything that could not be one.</summary>
        public static bool IsSafeEtag(string etag) =>
            etag.Length > 0 && etag.Length <= 200 && etag != "." && etag != ".."
            && etag.IndexOfAny(new[] { '/', '\\', '\0', ':', '*', '?', '"', '<', '>', '|' }) < 0;
    }
}
