using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Generation;
using GraLoRA.IO;
using GraLoRA.Models;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>GGUF model files exported here, run by the real llama.cpp.</summary>
    public sealed class GgufModelTests : IDisposable
    {
        readonly ITestOutputHelper _out;
        readonly TempDirectory tmp = new();
        public GgufModelTests(ITestOutputHelper output) => _out = output;
        public void Dispose() => tmp.Dispose();

        /// <summary>llama.cpp's logits for transformers' tiny checkpoints equal transformers' own (shared/fixtures reference).</summary>
        [Theory]
        [InlineData("llama")]
        [InlineData("mistral")]
        [InlineData("qwen2")]
        public void Float32ExportComputesTransformersLogits(string arch)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(GgufFixtures.Folder("models/" + arch), "reference.safetensors"));
            using var model = BaseModel.Load(GgufFixtures.ReferenceModelWithTokenizer(tmp, arch));
            string gguf = model.ExportGguf(tmp.File(arch + ".gguf"), "float32");
            using var cpp = LlamaCpp.Load(gguf);
            Assert.Equal(arch == "qwen2" ? "qwen2" : "llama", cpp.Metadata("general.architecture"));
            var ids = reference["plain.input_ids"];
            for (int row = 0; row < ids.shape[0]; row++)
            {
                double error = GgufFixtures.RelativeError(cpp.Logits(GgufFixtures.Row(ids, row)), reference["plain.logits"][row]);
                _out.WriteLine($"{arch} row {row}: relative error {error:E2}");
                Assert.True(error <= 1e-4, $"{arch} row {row}: relative error {error:E3}");
            }
        }

        /// <summary>
        /// Every architecture and storage type against our forward pass on a tiny model with a real tokenizer: float32
        /// within 1e-4; float16, bfloat16 and q8_0 are reported, with bounds that only catch gross errors.
        /// </summary>
        [Theory]
        [InlineData("llama", "float32", 1e-4)]
        [InlineData("mistral", "float32", 1e-4)]
        [InlineData("qwen2", "float32", 1e-4)]
        [InlineData("qwen3", "float32", 1e-4)]
        [InlineData("qwen3", "float16", 1e-2)]
        [InlineData("qwen3", "bfloat16", 5e-2)]
        [InlineData("qwen3", "q8_0", 5e-2)]
        [InlineData("llama", "q8_0", 5e-2)]
        public void TinyModelLogitsMatchOurForward(string arch, string dtype, double bound)
        {
            string folder = TinyModelFactory.SaveWithTokenizer(tmp.File(arch), new TinyModelOptions { Architecture = arch, Seed = 5 });
            using var model = BaseModel.Load(folder);
            string gguf = model.ExportGguf(tmp.File($"{arch}-{dtype}.gguf"), dtype);
            var ids = model.Tokenizer!.Encode("The quick brown fox jumps over the lazy dog.");
            using var scope = NewDisposeScope();
            var ours = model.Forward(new[] { ids }).LogitsTensor[0];
            using var cpp = LlamaCpp.Load(gguf);
            double error = GgufFixtures.RelativeError(cpp.Logits(ids), ours);
            _out.WriteLine($"{arch} {dtype}: relative logit error {error:E2}, file {new FileInfo(gguf).Length} bytes");
            Assert.True(error <= bound, $"{arch} {dtype}: relative error {error:E3} > {bound:E1}");
        }

        /// <summary>llama3 rope scaling travels as llama.cpp's rope_freqs tensor (per-frequency divisors).</summary>
        [Fact]
        public void Llama3RopeScalingMatchesOurForward()
        {
            string folder = TinyModelFactory.SaveWithTokenizer(tmp.File("rope"), new TinyModelOptions { Architecture = "llama", Seed = 9 });
            string configPath = Path.Combine(folder, "config.json");
            var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!;
            // A short original context, so that most frequencies are divided or smoothed.
            config["rope_scaling"] = new System.Text.Json.Nodes.JsonObject
            {
                ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 32,
            };
            File.WriteAllText(configPath, config.ToJsonString());
            using var model = BaseModel.Load(folder);
            string gguf = model.ExportGguf(tmp.File("rope.gguf"));
            var factors = GraLoRA.Gguf.GgufFile.Read(gguf).ReadFloat32("rope_freqs.weight");
            Assert.Contains(factors, f => f > 1.5f);
            var ids = model.Tokenizer!.Encode("Rotary positions are scaled the llama3 way; this sentence is long enough to reach far positions.");
            using var scope = NewDisposeScope();
            var ours = model.Forward(new[] { ids }).LogitsTensor[0];
            using var cpp = LlamaCpp.Load(gguf, 128);
            double error = GgufFixtures.RelativeError(cpp.Logits(ids), ours);
            _out.WriteLine($"llama3 rope scaling: relative error {error:E2} over {ids.Length} positions");
            Assert.True(error <= 1e-4, $"relative error {error:E3}");
        }

        [Fact]
        public void GreedyGenerationGivesOurTokens()
        {
            string folder = TinyModelFactory.SaveWithTokenizer(tmp.File("g"), new TinyModelOptions { Architecture = "llama", Seed = 11 });
            using var model = BaseModel.Load(folder);
            string gguf = model.ExportGguf(tmp.File("g.gguf"));
            var ours = model.Generate(new[] { "Once upon a time" }, new GenerationOptions { MaxNewTokens = 16, DoSample = false })[0];
            using var cpp = LlamaCpp.Load(gguf);
            var theirs = cpp.Greedy(ours.PromptTokens, 16);
            _out.WriteLine($"ours {string.Join(",", ours.Tokens)} ({ours.FinishReason}); llama.cpp {string.Join(",", theirs)}");
            Assert.True(ours.Tokens.Length > 0);
            Assert.Equal(ours.Tokens, theirs.Take(ours.Tokens.Length));
        }
    }
}
