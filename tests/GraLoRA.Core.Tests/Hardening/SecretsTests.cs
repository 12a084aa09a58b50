using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Hub;
using GraLoRA.Models;
using GraLoRA.Training;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>HF_TOKEN goes only to the Hub endpoint over HTTPS (or loopback), and never into any artefact, log or message.</summary>
    public sealed class SecretsTests : IDisposable
    {
        const string Token = "hf_SeCrEt_tOkEn_4242_do_not_leak";
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        [Theory]
        [InlineData("https://huggingface.co/", "https://huggingface.co/api/models/x", true)]
        [InlineData("http://127.0.0.1:5000/", "http://127.0.0.1:5000/x/resolve/main/a", true)]
        [InlineData("http://localhost:5000/", "http://localhost:5000/x", true)]
        [InlineData("http://[::1]:5000/", "http://[::1]:5000/x", true)]
        [InlineData("http://hub.example.com/", "http://hub.example.com/x", false)]        // clear text across a network
        [InlineData("https://huggingface.co/", "https://cdn-lfs.hf.co/x", false)]           // a redirect to another host
        [InlineData("https://huggingface.co/", "http://huggingface.co/x", false)]           // a downgrade
        [InlineData("https://huggingface.co/", "https://huggingface.co:8443/x", false)]     // another port
        [InlineData("http://127.0.0.1:5000/", "http://127.0.0.1:5001/x", false)]
        public void TokenGoesOnlyToTheEndpointOverHttpsOrLoopback(string endpoint, string url, bool sent) =>
            Assert.Equal(sent, HubHttp.MaySendToken(new Uri(url), new Uri(endpoint)));

        sealed class Batches : IBatchSource
        {
            public int BatchesPerEpoch => 2;
            public IEnumerable<DataBatch> Epoch(int epoch)
            {
                for (int i = 0; i < 2; i++)
                {
                    var ids = Enumerable.Range(0, 16).Select(j => (long)(100 + (i + j) % 16)).ToArray();
                    yield return new DataBatch(2, 8, ids, ids.ToArray(), Enumerable.Repeat(1L, 16).ToArray(),
                        Enumerable.Range(0, 16).Select(j => (long)(j % 8)).ToArray(), null, null, new[] { 2 * i, 2 * i + 1 });
                }
            }
        }

        sealed class Capture : TraceListener
        {
            public readonly StringBuilder Text = new();
            public override void Write(string? message) { lock (Text) Text.Append(message); }
            public override void WriteLine(string? message) { lock (Text) Text.AppendLine(message); }
        }

        [Fact]
        public void ARunThatUsedATokenLeavesItInNoFileLogOrMessage()
        {
            string source = TinyModelFactory.Save(tmp.File("source"), new TinyModelOptions { Seed = 4, MaxShardBytes = 60_000 });
            using var server = new FakeHubServer { RequiredToken = Token, LfsOnOtherHost = true };
            server.Files.Clear();
            foreach (var file in Directory.GetFiles(source))
                server.Add(new FakeHubFile(Path.GetFileName(file), File.ReadAllBytes(file), lfs: file.EndsWith(".safetensors", StringComparison.Ordinal)));
            var env = new Dictionary<string, string?> { ["HOME"] = tmp.File("home"), ["HF_HOME"] = tmp.File("hf"), ["HF_ENDPOINT"] = server.Endpoint, ["HF_TOKEN"] = Token };
            var settings = HubSettings.FromEnvironment(env);
            var texts = new List<string> { settings.ToString() };
            var trace = new Capture();
            Trace.Listeners.Add(trace);
            try
            {
                using (var model = BaseModel.LoadFromHub(FakeHubServer.RepoId, settings: settings, log: texts.Add))
                {
                    manual_seed(1);
                    model.AddAdapter("default", new AdapterConfig { Rank = 4, K = 2, Alpha = 8, TargetModules = new[] { AdapterConfig.AllLinear } });
                    var trainer = new Trainer(model, "default", new TrainingOptions { MaxSteps = 3, SaveSteps = 1, LoggingSteps = 1, OutputDirectory = tmp.File("run") });
                    trainer.Warning = texts.Add;
                    var result = trainer.Train(new Batches(), progress: new Progress<TrainingProgress>(p => texts.Add(p.ToString())));
                    texts.Add(result.ToString());
                    texts.Add(model.SaveAdapter("default", tmp.File("adapter")));
                    texts.Add(model.Export(tmp.File("export")));
                }
                // Failures with the token set: a missing repo, a missing file, a refused token.
                using (var client = new HubClient(settings) { RetryDelay = TimeSpan.FromMilliseconds(10) })
                {
                    texts.Add(Assert.Throws<GraloraException>(() => client.DownloadFile("test-org/absent", "config.json")).ToString());
                    texts.Add(Assert.ThrowsAny<Exception>(() => client.DownloadFile(FakeHubServer.RepoId, "absent.json")).ToString());
                }
                server.RequiredToken = "hf_another_token";
                using (var refused = new HubClient(HubSettings.FromEnvironment(env)) { RetryDelay = TimeSpan.FromMilliseconds(10) })
                    texts.Add(Assert.ThrowsAny<Exception>(() => refused.DownloadFile(FakeHubServer.RepoId, "config.json", revision: "refs/pr/1")).ToString());
            }
            finally
            {
                Trace.Listeners.Remove(trace);
            }
            texts.Add(trace.Text.ToString());

            // The token did reach the endpoint, and only there: no request to the other host ("the CDN") carried it.
            var requests = server.Requests;
            Assert.Contains(requests, r => r.Header("Authorization") == "Bearer " + Token);
            Assert.Contains(requests, r => r.Port == server.OtherPort);
            Assert.All(requests.Where(r => r.Port == server.OtherPort), r => Assert.Null(r.Header("Authorization")));

            // Every byte written anywhere under this test's folder (cache, checkpoints, metrics, TensorBoard events, adapter,
            // export), every log line, progress report, warning, result and exception text.
            var needles = new[] { Token, Convert.ToBase64String(Encoding.UTF8.GetBytes(Token)), Token[3..] };
            int files = 0;
            foreach (var file in Directory.EnumerateFiles(tmp.Path, "*", SearchOption.AllDirectories))
            {
                if (new FileInfo(file).LinkTarget is not null) continue;
                var bytes = File.ReadAllBytes(file);
                files++;
                foreach (var needle in needles)
                    Assert.True(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) < 0, $"the token is in '{file}'");
            }
            Assert.True(files > 20, $"only {files} files were checked");
            Assert.Contains(Directory.EnumerateFiles(tmp.Path, "*", SearchOption.AllDirectories), f => f.EndsWith("metrics.jsonl"));
            Assert.Contains(Directory.EnumerateFiles(tmp.Path, "*", SearchOption.AllDirectories), f => f.Contains("events.out.tfevents"));
            foreach (var text in texts)
                foreach (var needle in needles)
                    Assert.DoesNotContain(needle, text);
        }
    }
}
