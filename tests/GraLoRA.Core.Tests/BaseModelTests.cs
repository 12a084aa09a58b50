using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Hub;
using GraLoRA.Models;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>BaseModel: loading from a folder and from a (loopback) Hub, forward passes as objects and files.</summary>
    public sealed class BaseModelTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        [Fact]
        public void LoadsFromTheHubIntoTheCacheThenOfflineWithoutRequests()
        {
            string folder = TinyModelFactory.Save(tmp.File("source"), new TinyModelOptions { Architecture = "qwen3", Seed = 4, MaxShardBytes = 60_000 });
            using var server = new FakeHubServer();
            server.Files.Clear();
            foreach (var file in Directory.GetFiles(folder))
                server.Add(new FakeHubFile(Path.GetFileName(file), File.ReadAllBytes(file), lfs: file.EndsWith(".safetensors", StringComparison.Ordinal)));
            server.Add(new FakeHubFile("README.md", new byte[] { 1, 2, 3 }, lfs: false));      // not a model file: not fetched
            var env = new Dictionary<string, string?> { ["HOME"] = tmp.File("home"), ["HF_HOME"] = tmp.File("hf"), ["HF_ENDPOINT"] = server.Endpoint };

            using var local = BaseModel.Load(folder);
            var log = new List<string>();
            using (var fromHub = BaseModel.LoadFromHub(FakeHubServer.RepoId, settings: HubSettings.FromEnvironment(env), log: log.Add))
            {
                Assert.Equal(FakeHubServer.RepoId, fromHub.Name);
                Assert.StartsWith(Path.Combine(tmp.File("hf"), "hub", "models--test-org--tiny-model", "snapshots", FakeHubServer.Commit), fromHub.Path);
                Assert.False(File.Exists(Path.Combine(fromHub.Path, "README.md")));
                AssertSameLogits(local, fromHub);
            }
            Assert.Contains(log, l => l.Contains(server.Endpoint));
            Assert.True(server.ContentGets >= Directory.GetFiles(folder).Length);

            server.ClearRequests();
            env["HF_HUB_OFFLINE"] = "1";
            using (var offline = BaseModel.LoadFromHub(FakeHubServer.RepoId, settings: HubSettings.FromEnvironment(env)))
                AssertSameLogits(local, offline);
            Assert.Empty(server.Requests);
        }

        [Fact]
        public void OfflineCacheMissIsNamed()
        {
            var env = new Dictionary<string, string?> { ["HOME"] = tmp.File("home"), ["HF_HOME"] = tmp.File("hf"), ["HF_HUB_OFFLINE"] = "1" };
            var ex = Assert.Throws<GraloraException>(() => BaseModel.LoadFromHub("org/absent", settings: HubSettings.FromEnvironment(env)));
            Assert.Equal("HubOfflineCacheMiss", ex.ErrorId);
            Assert.Contains("org/absent", ex.Message);
        }

        static void AssertSameLogits(BaseModel a, BaseModel b)
        {
            var ids = new[] { new[] { 1, 2, 3, 4 } };
            using var x = a.Forward(ids);
            using var y = b.Forward(ids);
            Assert.True(TensorAssert.Identical(x.LogitsTensor, y.LogitsTensor));
        }

        [Fact]
        public void ForwardMatchesTheModuleAndSavesLogitsAndHiddenStates()
        {
            string folder = TinyModelFactory.Save(tmp.File("m"), new TinyModelOptions { Seed = 9 });
            using var model = BaseModel.Load(folder);
            using var output = model.Forward(new[] { new[] { 0, 5, 6 }, new[] { 7, 8, 9 } }, new[] { new[] { 0, 1, 1 }, new[] { 1, 1, 1 } }, hiddenStates: true);
            Assert.Equal(new long[] { 2, 3, 256 }, output.Shape);
            Assert.Equal(model.Config.NumLayers + 1, output.HiddenStateCount);
            var nested = output.Logits;
            Assert.Equal(output.LogitsTensor[1, 2, 17].item<float>(), nested[1][2][17]);
            Assert.Equal(output.HiddenStateTensors[1][0, 1, 3].item<float>(), output.HiddenStates[1][0][1][3]);

            string file = tmp.File("out.safetensors");
            output.Save(file);
            var saved = GraLoRA.IO.Safetensors.Read(file);
            Assert.Equal(new[] { "hidden_states.0", "hidden_states.1", "hidden_states.2", "logits" }, saved.Keys.OrderBy(k => k, StringComparer.Ordinal));
            Assert.True(TensorAssert.Identical(saved["logits"], output.LogitsTensor));
            foreach (var t in saved.Values) t.Dispose();
        }

        [Fact]
        public void LoadsTheCheckpointsDTypeAndDefaults()
        {
            string folder = TinyModelFactory.Save(tmp.File("bf16"), new TinyModelOptions { DType = "bfloat16", EosTokenIds = new[] { 3, 4 } });
            using var model = BaseModel.Load(folder);
            Assert.Equal("bfloat16", model.DType);
            Assert.Equal("cpu", model.Device);
            Assert.Equal(new[] { 3, 4 }, model.GenerationDefaults.EosTokenIds);
            Assert.Equal(50, model.GenerationDefaults.TopK);    // transformers' default when generation_config.json leaves it out
            using var asFloat = BaseModel.Load(folder, new BaseModelLoadOptions { DType = "float32" });
            Assert.Equal("float32", asFloat.DType);
            Assert.Equal(model.ParameterCount, asFloat.ParameterCount);
        }

        public static TheoryData<string, string> BadInputs() => new()
        {
            { "ragged", "RaggedInput" }, { "empty", "EmptyInput" }, { "range", "TokenOutOfRange" }, { "mask", "InputShapeMismatch" },
        };

        [Theory, MemberData(nameof(BadInputs))]
        public void BadForwardInputIsNamed(string kind, string errorId)
        {
            string folder = TinyModelFactory.Save(tmp.File("m"), new TinyModelOptions());
            using var model = BaseModel.Load(folder);
            var ex = Assert.Throws<GraloraException>(() => kind switch
            {
                "ragged" => model.Forward(new[] { new[] { 1, 2 }, new[] { 3 } }),
                "empty" => model.Forward(Array.Empty<int[]>()),
                "range" => model.Forward(new[] { new[] { 1, 256 } }),
                _ => model.Forward(new[] { new[] { 1, 2 } }, new[] { new[] { 1, 1, 1 } }),
            });
            Assert.Equal(errorId, ex.ErrorId);
        }

        [Fact]
        public void MissingFolderCorruptHeaderAndMissingShardAreNamedAndNothingIsLeftLoaded()
        {
            Assert.Equal("ModelFolderNotFound", Assert.Throws<GraloraException>(() => BaseModel.Load(tmp.File("absent"))).ErrorId);

            string corrupt = TinyModelFactory.Save(tmp.File("corrupt"), new TinyModelOptions());
            string weights = Path.Combine(corrupt, "model.safetensors");
            var bytes = File.ReadAllBytes(weights);
            bytes[10] = (byte)'!';                                                    // break the JSON header
            File.WriteAllBytes(weights, bytes);
            var ex = Assert.Throws<GraloraException>(() => BaseModel.Load(corrupt));
            Assert.Equal("InvalidSafetensors", ex.ErrorId);
            Assert.Contains(weights, ex.Message);

            string sharded = TinyModelFactory.Save(tmp.File("sharded"), new TinyModelOptions { MaxShardBytes = 40_000 });
            File.Delete(Directory.GetFiles(sharded, "model-00002-*.safetensors").Single());
            var missing = Assert.Throws<GraloraException>(() => BaseModel.Load(sharded));
            Assert.Equal("ShardNotFound", missing.ErrorId);
            Assert.Contains("model-00002-of-", missing.Message);
        }

        [Fact]
        public void DTypeNotSupportedOnADeviceIsNamed()
        {
            string folder = TinyModelFactory.Save(tmp.File("m"), new TinyModelOptions());
            var ex = Assert.Throws<GraloraException>(() => BaseModel.Load(folder, new BaseModelLoadOptions { DType = "int8" }));
            Assert.Equal("UnsupportedDType", ex.ErrorId);
            if (!TorchSharp.torch.cuda.is_available())
                Assert.Equal("CudaNotAvailable", Assert.Throws<GraloraException>(() => BaseModel.Load(folder, new BaseModelLoadOptions { Device = "cuda" })).ErrorId);
        }
    }
}
