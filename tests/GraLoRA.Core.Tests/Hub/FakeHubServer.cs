using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace GraLoRA.Tests
{
    /// <summary>One file of the fake repository, with the hashes the Hub would give it.</summary>
    internal sealed class FakeHubFile
    {
        public string Path { get; }
        public byte[] Content { get; }
        /// <summary>Stored in LFS: the Hub sends X-Linked-Etag (SHA-256) and redirects the content to a CDN.</summary>
        public bool Lfs { get; }
        public string Sha256 => Convert.ToHexString(SHA256.HashData(Content)).ToLowerInvariant();
        /// <summary>git's blob id: SHA-1 of "blob &lt;size&gt;\0" + content.</summary>
        public string GitSha1 => GitBlobSha1(Content);
        /// <summary>What the client stores the blob under.</summary>
        public string Etag => Lfs ? Sha256 : GitSha1;

        public FakeHubFile(string path, byte[] content, bool lfs) => (Path, Content, Lfs) = (path, content, lfs);

        public static string GitBlobSha1(byte[] content) =>
            Convert.ToHexString(SHA1.HashData(Encoding.ASCII.GetBytes($"blob {content.Length}\0").Concat(content).ToArray())).ToLowerInvariant();
    }

    /// <summary>A request the server received.</summary>
    internal sealed record FakeHubRequest(string Method, string Target, IReadOnlyDictionary<string, string> Headers, int Port)
    {
        public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;
        public bool IsContent => Method == "GET" && (Target.Contains("/resolve/", StringComparison.Ordinal) || Target.StartsWith("/cdn/", StringComparison.Ordinal));
    }

    /// <summary>
    /// A minimal Hugging Face Hub on 127.0.0.1 (raw HTTP/1.1 over TcpListener, one request per connection)
    /// serving one small model repository the way huggingface.co does: <c>GET /api/models/{repo}/revision/{rev}</c>,
    /// <c>HEAD|GET /{repo}/resolve/{rev}/{path}</c> (regular files with a git-sha1 ETag; LFS files with
    /// X-Linked-Etag/X-Linked-Size and a 302 to <c>/cdn/{sha256}</c>, on this host or on a second port), Range
    /// requests, X-Error-Code 404s, an optional bearer token, renamed-repo relative redirects, and faults on
    /// demand (drop the connection after N bytes once, corrupt content). Every request is recorded.
    /// </summary>
    internal sealed class FakeHubServer : IDisposable
    {
        public const string RepoId = "test-org/tiny-model";
        public const string Commit = "5f2a1c3b4d5e6f708192a3b4c5d6e7f8091a2b3c";

        readonly TcpListener main;
        readonly TcpListener other;
        readonly CancellationTokenSource stop = new();
        readonly ConcurrentQueue<FakeHubRequest> requests = new();
        readonly Task[] loops;

        public Dictionary<string, FakeHubFile> Files { get; } = new(StringComparer.Ordinal);
        /// <summary>Revision names (branches, tags, PR refs, the sha) and their commit.</summary>
        public Dictionary<string, string> Revisions { get; } = new(StringComparer.Ordinal) { ["main"] = Commit, [Commit] = Commit, ["refs/pr/1"] = Commit };
        /// <summary>Old repo ids answered with a relative 307 to <see cref="RepoId"/>, as the Hub does for renamed repos.</summary>
        public HashSet<string> Aliases { get; } = new(StringComparer.Ordinal);
        /// <summary>When set, api and resolve requests need "Authorization: Bearer &lt;token&gt;" (the CDN does not).</summary>
        public string? RequiredToken { get; set; }
        /// <summary>Redirect LFS content to the second port ("another host") instead of this one.</summary>
        public bool LfsOnOtherHost { get; set; }
        /// <summary>Files whose content is served with one byte flipped.</summary>
        public HashSet<string> Corrupt { get; } = new(StringComparer.Ordinal);
        /// <summary>Send no Content-Range/206 for Range requests, like a server that ignores them.</summary>
        public bool IgnoreRange { get; set; }

        /// <summary>Accept requests and never answer them (a Hub that hangs).</summary>
        public bool Hang { get; set; }

        readonly ConcurrentDictionary<string, long> dropOnce = new(StringComparer.Ordinal);
        readonly ConcurrentDictionary<string, long> stallOnce = new(StringComparer.Ordinal);

        public int Port => ((IPEndPoint)main.LocalEndpoint).Port;
        public int OtherPort => ((IPEndPoint)other.LocalEndpoint).Port;
        public string Endpoint => $"http://127.0.0.1:{Port}";
        public string OtherEndpoint => $"http://127.0.0.1:{OtherPort}";

        public FakeHubServer()
        {
            var rng = new Random(1234);
            var weights = new byte[300_000];
            rng.NextBytes(weights);
            Add(new FakeHubFile("config.json", Encoding.UTF8.GetBytes("{\"model_type\": \"llama\", \"hidden_size\": 8}\n"), lfs: false));
            Add(new FakeHubFile("model.safetensors", weights, lfs: true));
            Add(new FakeHubFile("tokenizer.json", Encoding.UTF8.GetBytes("{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\"}}\n"), lfs: false));
            Add(new FakeHubFile("sub/dir/file.txt", Encoding.UTF8.GetBytes("nested file\n"), lfs: false));

            main = new TcpListener(IPAddress.Loopback, 0);
            other = new TcpListener(IPAddress.Loopback, 0);
            main.Start();
            other.Start();
            loops = new[] { AcceptLoop(main), AcceptLoop(other) };
        }

        public void Add(FakeHubFile file) => Files[file.Path] = file;

        public FakeHubFile this[string path] => Files[path];

        /// <summary>The next content GET of <paramref name="path"/> announces the full length, sends <paramref name="bytes"/> bytes, and resets the connection.</summary>
        public void DropAfterBytesOnce(string path, long bytes) => dropOnce[path] = bytes;

        /// <summary>The next content GET of <paramref name="path"/> sends <paramref name="bytes"/> bytes, then stalls without closing.</summary>
        public void StallAfterBytesOnce(string path, long bytes) => stallOnce[path] = bytes;

        public IReadOnlyList<FakeHubRequest> Requests => requests.ToArray();
        public void ClearRequests() => requests.Clear();
        public int ContentGets => Requests.Count(r => r.IsContent);

        public void Dispose()
        {
            stop.Cancel();
            main.Stop();
            other.Stop();
            try { Task.WaitAll(loops, TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
            stop.Dispose();
        }

        async Task AcceptLoop(TcpListener listener)
        {
            while (!stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await listener.AcceptTcpClientAsync(stop.Token); }
                catch (Exception) { return; }
                _ = Task.Run(() => Serve(client, ((IPEndPoint)listener.LocalEndpoint).Port));
            }
        }

        async Task Serve(TcpClient client, int port)
        {
            using (client)
            {
                try
                {
                    var stream = client.GetStream();
                    string? head = await ReadHead(stream);
                    if (head is null) return;
                    string[] lines = head.Split("\r\n");
                    string[] requestLine = lines[0].Split(' ');
                    var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                    foreach (string line in lines.Skip(1))
                    {
                        int colon = line.IndexOf(':');
                        if (colon > 0) headers[line.Substring(0, colon).Trim()] = line.Substring(colon + 1).Trim();
                    }
                    var request = new FakeHubRequest(requestLine[0], requestLine[1], headers, port);
                    requests.Enqueue(request);
                    await Respond(request, client, stream);
                }
                catch (IOException) { }
                catch (SocketException) { }
                catch (ObjectDisposedException) { }
            }
        }

        static async Task<string?> ReadHead(NetworkStream stream)
        {
            var bytes = new List<byte>();
            var one = new byte[1];
            while (bytes.Count < 65536)
            {
                if (await stream.ReadAsync(one) == 0) return null;
                bytes.Add(one[0]);
                int n = bytes.Count;
                if (n >= 4 && bytes[n - 4] == '\r' && bytes[n - 3] == '\n' && bytes[n - 2] == '\r' && bytes[n - 1] == '\n')
                    return Encoding.ASCII.GetString(bytes.ToArray(), 0, n - 4);
            }
            return null;
        }

        sealed record Reply(int Status, Dictionary<string, string> Headers, byte[]? Body = null, string? FaultPath = null);

        static Reply Status(int status, params (string, string)[] headers) =>
            new(status, headers.ToDictionary(h => h.Item1, h => h.Item2));

        static Reply Json(object value) =>
            new(200, new() { ["Content-Type"] = "application/json" }, JsonSerializer.SerializeToUtf8Bytes(value));

        Reply Route(FakeHubRequest request)
        {
            string rawPath = request.Target.Split('?')[0];
            if (rawPath.StartsWith("/cdn/", StringComparison.Ordinal))
            {
                string sha = rawPath.Substring("/cdn/".Length);
                var file = Files.Values.FirstOrDefault(f => f.Lfs && f.Sha256 == sha);
                return file is null ? Status(404) : Content(request, file, new() { ["ETag"] = $"\"{file.Sha256}\"" });
            }

            bool api = rawPath.StartsWith("/api/models/", StringComparison.Ordinal);
            string rest = api ? rawPath.Substring("/api/models/".Length) : rawPath.TrimStart('/');
            string marker = api ? "/revision/" : "/resolve/";
            int at = rest.IndexOf(marker, StringComparison.Ordinal);
            if (at < 0) return Status(404);
            string repo = rest.Substring(0, at);
            string after = rest.Substring(at + marker.Length);

            if (RequiredToken is not null && request.Header("Authorization") != "Bearer " + RequiredToken)
                return Status(401, ("X-Error-Message", "Invalid credentials in Authorization header"));
            if (Aliases.Contains(repo))
                return Status(307, ("Location", (api ? "/api/models/" : "/") + RepoId + marker + after));
            if (repo != RepoId)
                return Status(404, ("X-Error-Code", "RepoNotFound"));

            string revisionPart = api ? after : after.Split('/')[0];
            string revision = Uri.UnescapeDataString(revisionPart);
            if (!Revisions.TryGetValue(revision, out string? commit))
                return Status(404, ("X-Error-Code", "RevisionNotFound"));

            if (api)
                return Json(new { id = RepoId, sha = commit, siblings = Files.Keys.Select(k => new { rfilename = k }).ToArray() });

            string path = Uri.UnescapeDataString(after.Substring(revisionPart.Length + 1));
            if (!Files.TryGetValue(path, out var entry))
                return Status(404, ("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", commit));
            if (entry.Lfs)
            {
                string cdn = (LfsOnOtherHost ? OtherEndpoint : Endpoint) + "/cdn/" + entry.Sha256 + "?X-Amz-Signature=fake";
                return Status(302, ("Location", cdn), ("X-Repo-Commit", commit), ("X-Linked-Etag", $"\"{entry.Sha256}\""),
                    ("X-Linked-Size", entry.Content.Length.ToString(CultureInfo.InvariantCulture)),
                    ("ETag", "\"" + FakeHubFile.GitBlobSha1(Encoding.ASCII.GetBytes("version https://git-lfs.github.com/spec/v1\n")) + "\""),
                    ("Content-Length", "0"));
            }
            return Content(request, entry, new() { ["ETag"] = $"\"{entry.GitSha1}\"", ["X-Repo-Commit"] = commit });
        }

        Reply Content(FakeHubRequest request, FakeHubFile file, Dictionary<string, string> headers)
        {
            byte[] content = file.Content;
            if (Corrupt.Contains(file.Path))
            {
                content = (byte[])content.Clone();
                content[content.Length / 2] ^= 0xFF;
            }
            long from = 0;
            string? range = request.Header("Range");
            if (range is not null && !IgnoreRange && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
                from = long.Parse(range.Substring(6, range.Length - 7), CultureInfo.InvariantCulture);
            if (from >= content.Length && from > 0)
                return Status(416, ("Content-Range", $"bytes */{content.Length}"));
            headers["Accept-Ranges"] = "bytes";
            if (from > 0)
                headers["Content-Range"] = $"bytes {from}-{content.Length - 1}/{content.Length}";
            string? fault = request.Method == "GET" && (dropOnce.ContainsKey(file.Path) || stallOnce.ContainsKey(file.Path)) ? file.Path : null;
            return new Reply(from > 0 ? 206 : 200, headers, content.AsSpan((int)from).ToArray(), fault);
        }

        async Task Respond(FakeHubRequest request, TcpClient client, NetworkStream stream)
        {
            if (Hang)
            {
                try { await Task.Delay(TimeSpan.FromSeconds(30), stop.Token); } catch (OperationCanceledException) { }
                return;
            }
            Reply reply = Route(request);
            var sb = new StringBuilder();
            sb.Append("HTTP/1.1 ").Append(reply.Status).Append(' ').Append(Reason(reply.Status)).Append("\r\n");
            foreach (var (k, v) in reply.Headers) sb.Append(k).Append(": ").Append(v).Append("\r\n");
            if (!reply.Headers.ContainsKey("Content-Length"))
                sb.Append("Content-Length: ").Append(reply.Body?.Length ?? 0).Append("\r\n");
            sb.Append("X-Request-Path: ").Append(request.Target.Split('?')[0]).Append("\r\n");
            sb.Append("Connection: close\r\n\r\n");
            await stream.WriteAsync(Encoding.ASCII.GetBytes(sb.ToString()));
            if (request.Method == "HEAD" || reply.Body is null) return;

            if (reply.FaultPath is not null && stallOnce.TryRemove(reply.FaultPath, out long sent))
            {
                await stream.WriteAsync(reply.Body.AsMemory(0, (int)Math.Min(sent, reply.Body.Length)));
                await stream.FlushAsync();
                try { await Task.Delay(TimeSpan.FromSeconds(30), stop.Token); } catch (OperationCanceledException) { }
                return;
            }
            if (reply.FaultPath is not null && dropOnce.TryRemove(reply.FaultPath, out long keep))
            {
                await stream.WriteAsync(reply.Body.AsMemory(0, (int)Math.Min(keep, reply.Body.Length)));
                await stream.FlushAsync();
                client.Client.LingerState = new LingerOption(true, 0); // RST: the client sees a broken connection
                client.Client.Close();
                return;
            }
            await stream.WriteAsync(reply.Body);
        }

        static string Reason(int status) => status switch
        {
            200 => "OK", 206 => "Partial Content", 302 => "Found", 307 => "Temporary Redirect",
            401 => "Unauthorized", 404 => "Not Found", 416 => "Range Not Satisfiable", _ => "Status",
        };
    }
}
