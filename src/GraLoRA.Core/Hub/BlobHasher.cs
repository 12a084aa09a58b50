using System;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace GraLoRA.Hub
{
    /// <summary>
    /// Checks downloaded content against its ETag the way the Hub computes it: a 64-hex ETag is the
    /// SHA-256 of an LFS file; a 40-hex ETag is the git blob id, SHA-1 of <c>"blob &lt;size&gt;\0"</c> + content.
    /// </summary>
    internal sealed class BlobHasher : IDisposable
    {
        readonly IncrementalHash hash;
        readonly byte[]? gitHeader;

        /// <summary>Which hash the ETag is: "sha256" or "git-sha1".</summary>
        public string Algorithm { get; }

        BlobHasher(HashAlgorithmName name, byte[]? gitHeader, string algorithm)
        {
            hash = IncrementalHash.CreateHash(name);
            this.gitHeader = gitHeader;
            Algorithm = algorithm;
            Reset();
        }

        /// <summary>A hasher for the ETag's kind, or null when the ETag is neither (then only the size is checked).</summary>
        public static BlobHasher? For(string etag, long size) =>
            HubNames.IsSha256(etag) ? new BlobHasher(HashAlgorithmName.SHA256, null, "sha256")
            : HubNames.IsCommitHash(etag) ? new BlobHasher(HashAlgorithmName.SHA1, Encoding.ASCII.GetBytes("blob " + size.ToString(CultureInfo.InvariantCulture) + "\0"), "git-sha1")
            : null;

        /// <summary>Starts over (the server ignored a Range request and sent everything).</summary>
        public void Reset()
        {
            hash.GetHashAndReset();
            if (gitHeader is not null) hash.AppendData(gitHeader);
        }

        public void Append(ReadOnlySpan<byte> data) => hash.AppendData(data);

        /// <summary>The lowercase hex digest, comparable with the ETag.</summary>
        public string Finish() => Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();

        public void Dispose() => hash.Dispose();
    }
}
