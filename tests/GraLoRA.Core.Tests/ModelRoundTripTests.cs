using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA.IO;
using GraLoRA.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>Factory → save → load gives the same model; shards, dtypes and tied embeddings.</summary>
    public class ModelRoundTripTests
    {
        static readonly long[] Ids = { 1, 2, 3, 250, 17, 99, 0, 4 };

        static Tensor Logits(DecoderForCausalLM model)
        {
            using var _ = no_grad();
            return model.Forward(tensor(Ids, new long[] { 1, Ids.Length }, device: model.Device)).Logits.to(ScalarType.Float32).cpu();
        }

        public static TheoryData<string, bool> Cases() => new()
        {
            { "llama", false }, { "llama", true }, { "mistral", false }, { "qwen2", false }, { "qwen3", true },
        };

        [Theory, MemberData(nameof(Cases))]
        public void SavedModelLoadsToTheSameLogits(string architecture, bool tied)
        {
            using var scope = NewDisposeScope();
            using var dir = new TempDirectory();
            var options = new TinyModelOptions { Architecture = architecture, TieWordEmbeddings = tied, Seed = 11 };
            using var original = TinyModelFactory.Create(options);
            string folder = TinyModelFactory.Save(dir.File("m"), options);
            using var loaded = CheckpointLoader.LoadDecoder(folder);
            Assert.True(TensorAssert.Identical(Logits(original), Logits(loaded)));
            var keys = Safetensors.ReadHeader(Path.Combine(folder, "model.safetensors")).Entries.Keys;
            Assert.Equal(!tied, keys.Contains("lm_head.weight"));   // transformers omits a tied head
            Assert.Contains("model.layers.1.self_attn.q_proj.weight", keys);
            Assert.Equal(architecture, DecoderConfig.Load(Path.Combine(folder, "config.json")).ModelType);
        }

        [Fact]
        public void ShardedAndSingleFileGiveIdenticalModels()
        {
            using var scope = NewDisposeScope();
            using var dir = new TempDirectory();
            var options = new TinyModelOptions { Seed = 5 };
            string single = TinyModelFactory.Save(dir.File("single"), options);
            string sharded = TinyModelFactory.Save(dir.File("sharded"), options with { MaxShardBytes = 40_000 });
            var shards = Directory.GetFiles(sharded, "model-*-of-*.safetensors");
            Assert.True(shards.Length > 2, $"expected several shards, got {shards.Length}");
            Assert.False(File.Exists(Path.Combine(sharded, "model.safetensors")));
            using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(sharded, "model.safetensors.index.json")));
            Assert.Equal(shards.Select(Path.GetFileName).OrderBy(s => s),
                index.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Value.GetString()).Distinct().OrderBy(s => s));
            using var a = CheckpointLoader.LoadDecoder(single);
            using var b = CheckpointLoader.LoadDecoder(sharded);
            foreach (var ((name, pa), (_, pb)) in a.named_parameters().Zip(b.named_parameters()))
                Assert.True(TensorAssert.Identical(pa, pb), name);
        }

        [Fact]
        public void DefaultDTypeIsTheCheckpointsOwnAndCanBeOverridden()
        {
            using var scope = NewDisposeScope();
            using var dir = new TempDirectory();
            var options = new TinyModelOptions { Seed = 2, DType = "bfloat16" };
            string folder = TinyModelFactory.Save(dir.File("bf16"), options);
            Assert.Equal("BF16", Safetensors.ReadHeader(Path.Combine(folder, "model.safetensors")).Entries["model.norm.weight"].DType);

            using var asStored = CheckpointLoader.LoadDecoder(folder);
            Assert.Equal(ScalarType.BFloat16, asStored.DType);
            Assert.All(asStored.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
            using var asFloat = CheckpointLoader.LoadDecoder(folder, ScalarType.Float32);
            Assert.Equal(ScalarType.Float32, asFloat.DType);

            // bf16 weights are the float32 ones rounded; the bf16 model computes close to float32 on them.
            using var original = TinyModelFactory.Create(options);
            using (no_grad())
                foreach (var ((name, p), (_, q)) in original.named_parameters().Zip(asFloat.named_parameters()))
                    Assert.True(TensorAssert.Identical(p.to(ScalarType.BFloat16).to(ScalarType.Float32), q), name);
            Assert.True(TensorAssert.RelativeError(Logits(asStored), Logits(asFloat)) < 0.05);
        }

        [Fact]
        public void UnknownDTypeNamesTheChoices()
        {
            var ex = Assert.Throws<GraloraException>(() => ModelDType.Parse("int8"));
            Assert.Equal("UnsupportedDType", ex.ErrorId);
            Assert.Contains("int8", ex.Message);
            Assert.Contains("bfloat16", ex.Message);
        }

        [Fact]
        public void SaveRefusesANonEmptyFolderAndLeavesNothingBehindOnFailure()
        {
            using var dir = new TempDirectory();
            File.WriteAllText(dir.File("keep.txt"), "x");
            var ex = Assert.Throws<GraloraException>(() => TinyModelFactory.Save(dir.Path, new TinyModelOptions()));
            Assert.Equal("OutputExists", ex.ErrorId);
            Assert.Equal(new[] { "keep.txt" }, Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));

            // A failing extra file aborts the save: no target folder, no staging folder.
            string target = dir.File("broken");
            Assert.Throws<InvalidOperationException>(() => TinyModelFactory.Save(target, new TinyModelOptions(),
                staging => throw new InvalidOperationException("disk full")));
            Assert.False(Directory.Exists(target));
            Assert.Equal(new[] { "keep.txt" }, Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName));
        }

        [Fact]
        public void FactoryRejectsImpossibleSizes()
        {
            Assert.Equal("UnsupportedArchitecture", Assert.Throws<GraloraException>(() => TinyModelFactory.Config(new TinyModelOptions { Architecture = "gpt2" })).ErrorId);
            var ex = Assert.Throws<GraloraException>(() => TinyModelFactory.Config(new TinyModelOptions { Heads = 3 }));
            Assert.Equal("InvalidModelSize", ex.ErrorId);
            Assert.Contains("Heads 3", ex.Message);
        }

        [Fact]
        public void ConfigWrittenByToJsonReadsBackTheSame()
        {
            var config = TinyModelFactory.Config(new TinyModelOptions { Architecture = "qwen2", TieWordEmbeddings = true, EosTokenIds = new[] { 3, 4 }, BosTokenId = 2 })
                with { RopeScaling = new RopeScaling { Type = "llama3", Factor = 8.0, LowFreqFactor = 1.0, HighFreqFactor = 4.0, OriginalMaxPositions = 8192 } };
            using var dir = new TempDirectory();
            CheckpointWriter.WriteJson(dir.File("config.json"), config.ToJson());
            var back = DecoderConfig.Load(dir.File("config.json"));
            Assert.Equal(config with { EosTokenIds = back.EosTokenIds, LayerTypes = back.LayerTypes }, back);
            Assert.Equal(config.LayerTypes, back.LayerTypes);
            Assert.Equal(config.EosTokenIds, back.EosTokenIds);
        }
    }
}
