using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Threading;
using System.Threading.Tasks;
using System.Text.Json;

namespace GraLoRA.Hub
{
    /// <summary>What a HEAD on a resolve URL tells: the commit, the blob's ETag and size, and where to GET it.</summary>
    internal sealed record HubFileMetadata(string Commit, string Etag, long Size, Uri Location);

    /// <summary>The commit a revision points at and the files of the repository at that commit.</summary>
    internal sealed record HubRepoInfo(string Commit, IReadOnlyList<string> Files);

    /// <summary>The repository, revision and file a request is about, for error messages.</summary>
    internal readonly record struct HubTarget(string RepoId, string Revision, string? Path);

    /// <summary>
    /// The Hub's HTTP protocol as huggingface_hub uses it: HEAD <c>/{repo}/resolve/{revision}/{path}</c>
    /// for metadata, GET of the same URL (or of the CDN location it redirects to) for content, GET
    /// <c>/api/models/{repo}/revision/{revision}</c> for the file list. Redirects are followed by hand so
    /// that the token only goes to the endpoint's own host. Failures become <see cref="GraloraException"/>s
    /// that never contain the token.
    /// </summary>
    internal sealed class HubHttp : IDisposable
    {
        const int MaxRedirects = 10;
        static readonly string UserAgent = "GraLoRA/" + (typeof(HubHttp).Assembly.GetName().Version?.ToString(3) ?? "0") + " (huggingface_hub-compatible)";

        readonly HubSettings settings;
        readonly HttpClient client;
        readonly Uri endpoint;

        public HubHttp(HubSettings settings, HttpMessageHandler? handler)
        {
            this.settings = settings;
            endpoint = new Uri(HubSettings.NormalizeEndpoint(settings.Endpoint, "Endpoint") + "/");
            client = handler is null
                ? new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None }, disposeHandler: true)
                : new HttpClient(handler, disposeHandler: false);
            client.Timeout = Timeout.InfiniteTimeSpan; // per-request limits below
        }

        public void Dispose() => client.Dispose();

        public Uri ResolveUrl(HubTarget target) =>
            new(settings.Endpoint + "/" + EscapePath(target.RepoId) + "/resolve/" + Uri.EscapeDataString(target.Revision) + "/" + EscapePath(target.Path!));

        Uri RepoInfoUrl(HubTarget target) =>
            new(settings.Endpoint + "/api/models/" + EscapePath(target.RepoId) + "/revision/" + Uri.EscapeDataString(target.Revision));

        static string EscapePath(string path) => string.Join("/", path.Split('/').Select(Uri.EscapeDataString));

        /// <summary>
        /// HEAD the file. Relative redirects (a renamed repo) are followed; the first absolute redirect
        /// (the CDN) is not: its response carries the metadata and its Location is where to GET.
        /// </summary>
        public async Task<HubFileMetadata> HeadFileAsync(HubTarget target, CancellationToken ct)
        {
            Uri url = ResolveUrl(target);
            for (int hop = 0; ; hop++)
            {
                using var request = NewRequest(HttpMethod.Head, url);
                request.Headers.AcceptEncoding.ParseAdd("identity"); // the real size, not a compressed one
                using var response = await SendAsync(request, settings.MetadataTimeout, "HF_HUB_ETAG_TIMEOUT", target, ct).ConfigureAwait(false);
                bool redirect = IsRedirect(response.StatusCode);
                if (!redirect && !response.IsSuccessStatusCode)
                    throw StatusError(response, target);
                Uri? location = redirect ? LocationOf(response, url, target) : null;
                if (location is not null && IsRelative(response) && hop < MaxRedirects)
                {
                    url = location;
                    continue;
                }

                string? commit = Header(response, "X-Repo-Commit");
                string? etag = HubNames.NormalizeEtag(Header(response, "X-Linked-Etag") ?? Header(response, "ETag"));
                string? sizeText = Header(response, "X-Linked-Size") ?? (redirect ? null : response.Content.Headers.ContentLength?.ToString(System.Globalization.CultureInfo.InvariantCulture));
                if (commit is null)
                    throw Invalid(target, url, "it has no X-Repo-Commit header, so the server does not look like a Hugging Face Hub (check HF_ENDPOINT, proxy and firewall settings)");
                if (!HubNames.IsSafeEtag(commit))
                    throw Invalid(target, url, $"its X-Repo-Commit '{commit}' is not a commit id");
                if (string.IsNullOrEmpty(etag) || !HubNames.IsSafeEtag(etag))
                    throw Invalid(target, url, etag is null ? "it has no ETag, so the download could not be verified or cached" : $"its ETag '{etag}' cannot name a cache file");
                if (!long.TryParse(sizeText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long size))
                    throw Invalid(target, url, "it gives no file size (X-Linked-Size or Content-Length)");
                return new HubFileMetadata(commit, etag, size, location ?? url);
            }
        }

        /// <summary>GET the repository's commit and file list for a revision.</summary>
        public async Task<HubRepoInfo> GetRepoInfoAsync(HubTarget target, CancellationToken ct)
        {
            Uri url = RepoInfoUrl(target);
            using var response = await GetFollowingRedirectsAsync(url, 0, settings.MetadataTimeout, "HF_HUB_ETAG_TIMEOUT", target, ct).ConfigureAwait(false);
            string body;
            try
            {
                body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException || ex is System.IO.IOException)
            {
                throw Unreachable(target, url, ex);
            }
            try
            {
                using var doc = JsonDocument.Parse(body);
                var root = doc.RootElement;
                string? sha = root.TryGetProperty("sha", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
                if (!HubNames.IsCommitHash(sha))
                    throw Invalid(target, url, "its JSON has no 40-character 'sha' commit id");
                var files = new List<string>();
                if (root.TryGetProperty("siblings", out var siblings) && siblings.ValueKind == JsonValueKind.Array)
                    foreach (var sibling in siblings.EnumerateArray())
                    {
                        string? name = sibling.ValueKind == JsonValueKind.Object && sibling.TryGetProperty("rfilename", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
                        if (!HubNames.IsValidFilePath(name))
                            throw Invalid(target, url, $"it lists a file '{name}' that is not a safe relative path");
                        files.Add(name);
                    }
                return new HubRepoInfo(sha!, files);
            }
            catch (JsonException ex)
            {
                throw Invalid(target, url, "it is not JSON (" + ex.Message + ")");
            }
        }

        /// <summary>
        /// GET content from <paramref name="url"/>, from byte <paramref name="offset"/> on (a Range header when
        /// above zero), following redirects. Returns the 200 or 206 response with its body unread.
        /// </summary>
        public Task<HttpResponseMessage> GetContentAsync(Uri url, long offset, HubTarget target, CancellationToken ct) =>
            GetFollowingRedirectsAsync(url, offset, settings.DownloadTimeout, "HF_HUB_DOWNLOAD_TIMEOUT", target, ct);

        async Task<HttpResponseMessage> GetFollowingRedirectsAsync(Uri url, long offset, TimeSpan timeout, string timeoutVariable, HubTarget target, CancellationToken ct)
        {
            for (int hop = 0; ; hop++)
            {
                using var request = NewRequest(HttpMethod.Get, url);
                if (offset > 0) request.Headers.Range = new RangeHeaderValue(offset, null);
                var response = await SendAsync(request, timeout, timeoutVariable, target, ct).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                    return response;
                using (response)
                {
                    if (IsRedirect(response.StatusCode) && hop < MaxRedirects)
                    {
                        url = LocationOf(response, url, target);
                        continue;
                    }
                    throw StatusError(response, target);
                }
            }
        }

        HttpRequestMessage NewRequest(HttpMethod method, Uri url)
        {
            var request = new HttpRequestMessage(method, url);
            request.Headers.UserAgent.ParseAdd(UserAgent);
            if (settings.Token is not null && MaySendToken(url, endpoint))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", settings.Token);
            return request;
        }

        /// <summary>
        /// The token goes to the endpoint's own scheme, host and port only — never to a CDN or any other host a redirect
        /// names — and only over HTTPS, or plain HTTP to a loopback address (local test servers): never in clear text
        /// across a network.
        /// </summary>
        internal static bool MaySendToken(Uri url, Uri endpoint) =>
            SameOrigin(url, endpoint) && (url.Scheme == Uri.UriSchemeHttps || url.Scheme == Uri.UriSchemeHttp && url.IsLoopback);

        static bool SameOrigin(Uri a, Uri b) =>
            string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
            && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

        async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, TimeSpan timeout, string timeoutVariable, HubTarget target, CancellationToken ct)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            try
            {
                return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
            {
                throw TimedOut(target, request.RequestUri!, timeout, timeoutVariable, ex);
            }
            catch (HttpRequestException ex)
            {
                throw Unreachable(target, request.RequestUri!, ex);
            }
        }

        static bool IsRedirect(HttpStatusCode code) => code is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther
            or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

        static bool IsRelative(HttpResponseMessage response) => response.Headers.Location is { IsAbsoluteUri: false };

        Uri LocationOf(HttpResponseMessage response, Uri current, HubTarget target) =>
            response.Headers.Location is Uri location
                ? (location.IsAbsoluteUri ? location : new Uri(current, location))
                : throw Invalid(target, current, $"it answered HTTP {(int)response.StatusCode} without a Location header");

        static string? Header(HttpResponseMessage response, string name) =>
            response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault()
            : response.Content.Headers.TryGetValues(name, out var contentValues) ? contentValues.FirstOrDefault()
            : null;

        string Describe(HubTarget t) =>
            (t.Path is null ? "" : $"file '{t.Path}' of ") + $"repository '{t.RepoId}' at revision '{t.Revision}'";

        /// <summary>Turns an HTTP error status into the error a user can act on.</summary>
        GraloraException StatusError(HttpResponseMessage response, HubTarget t)
        {
            int code = (int)response.StatusCode;
            string status = $"HTTP {code} {response.ReasonPhrase}".TrimEnd();
            if (code is 401 or 403)
            {
                string sent = settings.Token is null
                    ? $"no token was sent: set HF_TOKEN or save a token in '{settings.TokenPath}'"
                    : $"the token from {settings.TokenSource ?? "the settings"} was refused or lacks access: check it, or set HF_TOKEN to one with read access";
                return new GraloraException("HubUnauthorized", GraloraErrorKind.InvalidOperation,
                    $"Access to {Describe(t)} on {settings.Endpoint} was denied ({status}). The repository may be private or gated (accept its terms on the Hub first) or may not exist; {sent}.", t.RepoId);
            }
            if (code == 404)
            {
                string? errorCode = Header(response, "X-Error-Code");
                string message = errorCode switch
                {
                    "RepoNotFound" => $"Repository '{t.RepoId}' was not found on {settings.Endpoint} ({status}). Check the repo id; if it is private, set HF_TOKEN to a token with access.",
                    "RevisionNotFound" => $"Revision '{t.Revision}' of repository '{t.RepoId}' was not found on {settings.Endpoint} ({status}). Check the branch, tag or commit.",
                    "EntryNotFound" => $"File '{t.Path}' was not found in repository '{t.RepoId}' at revision '{t.Revision}' on {settings.Endpoint} ({status}). Check the path (it is case-sensitive).",
                    _ => $"{char.ToUpperInvariant(Describe(t)[0])}{Describe(t).Substring(1)} was not found on {settings.Endpoint} ({status}). Check the repo id, the revision" + (t.Path is null ? "." : " and the file path."),
                };
                return new GraloraException("HubNotFound", GraloraErrorKind.NotFound, message, t.Path ?? t.RepoId);
            }
            return new GraloraException("HubRequestFailed", GraloraErrorKind.NotAvailable,
                $"The Hub at {settings.Endpoint} failed on {Describe(t)} ({status}). Retry later, or set HF_HUB_OFFLINE=1 to use only the cache.", t.RepoId);
        }

        GraloraException Unreachable(HubTarget t, Uri url, Exception ex) =>
            new("HubRequestFailed", GraloraErrorKind.NotAvailable,
                $"Could not reach {url.GetLeftPart(UriPartial.Authority)} for {Describe(t)}: {ex.Message}. Check the network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache.", t.RepoId, ex);

        GraloraException TimedOut(HubTarget t, Uri url, TimeSpan timeout, string variable, Exception ex) =>
            new("HubRequestFailed", GraloraErrorKind.NotAvailable,
                $"{url.GetLeftPart(UriPartial.Authority)} did not answer within {timeout.TotalSeconds:0.###} s for {Describe(t)}. Retry, raise {variable} (seconds), or set HF_HUB_OFFLINE=1 to use only the cache.", t.RepoId, ex);

        GraloraException Invalid(HubTarget t, Uri url, string problem) =>
            new("HubInvalidResponse", GraloraErrorKind.InvalidData,
                $"The answer of {url.GetLeftPart(UriPartial.Path)} for {Describe(t)} cannot be used: {problem}.", t.RepoId);

        /// <summary>A read of a download body that broke off, for the retry loop.</summary>
        internal GraloraException BrokenDownload(HubTarget t, Uri url, long have, long size, string incomplete, Exception ex) =>
            new("HubRequestFailed", GraloraErrorKind.NotAvailable,
                $"Downloading {Describe(t)} from {url.GetLeftPart(UriPartial.Authority)} broke off at {have} of {size} bytes: {ex.Message}. Run it again to resume from '{incomplete}'.", t.RepoId, ex);

        internal GraloraException ReadTimedOut(HubTarget t, Uri url, Exception ex) =>
            TimedOut(t, url, settings.DownloadTimeout, "HF_HUB_DOWNLOAD_TIMEOUT", ex);

        internal GraloraException UnexpectedRange(HubTarget t, Uri url, string? contentRange, long offset) =>
            Invalid(t, url, $"asked for bytes from {offset} on, it answered Content-Range '{contentRange}'");
    }
}
