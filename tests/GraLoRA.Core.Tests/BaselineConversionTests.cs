using System.Collections.Generic;
using System.Text.Json;
using GraLoRA.IO;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// The paper's baselines rewritten as plain LoRA (ConvertTo-LoRAAdapter), on adapters their own code saved
    /// (shared/fixtures/baselines): the reference values are those implementations' logits, ΔW and merged weights. The
    /// exact ranks are the methods' published bounds worked out by hand for the fixture shapes (q_proj 64→64, v_proj 64→32).
    /// </summary>
    public sealed class BaselineConversionTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        static string Folder(string relative) => Path.Combine(TestEnvironment.Fixtures, relative);

        static Tensor Logits(BaseModel model, Dictionary<string, Tensor> reference)
        {
            using var _ = no_grad();
            return model.Module.Forward(reference["plain.input_ids"]).Logits;
        }

        // MoRA type 6 (kongds/MoRA): r̂ = 32 for q_proj, ⌈64/32⌉·32 = 64 → 64; r̂ = 28 for v_proj, ⌈64/28⌉·28 = 84 → capped
        // at min(out, in) = 32. RaSA (zwhe99/RaSA) r 16, k 2, two layers: r − k + k·L = 14 + 4 = 18 for both.
        public static TheoryData<string, int, int> LowRank() => new()
        {
            { "baselines/mora_llama_r8_t6", 64, 32 },
            { "baselines/rasa_llama_r16_k2", 18, 18 },
        };

        [Theory, MemberData(nameof(LowRank))]
        public void MoraAndRasaConvertExactlyToTheirAuthorsLogits(string adapter, int qRank, int vRank)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(adapter), "reference.safetensors"));
            using var model = BaseModel.Load(Folder("models/llama"));
            model.LoadAdapter(Folder(adapter));
            using var conversion = model.ConvertToLora(AdapterConfig.DefaultName);
            Assert.Equal(4, conversion.Layers.Count);
            foreach (var layer in conversion.Layers)
            {
                int expected = layer.Module.EndsWith("q_proj", StringComparison.Ordinal) ? qRank : vRank;
                Assert.Equal(expected, layer.ExactRank);
                Assert.Equal(expected, layer.Rank);
                Assert.True(layer.RelativeError < 1e-6, $"{layer.Module}: {layer.RelativeError:E3}");
                var (a, b) = conversion.Factors(layer.Module);
                TensorAssert.Close(b.mm(a), reference["delta." + layer.Module + ".weight"], 1e-5, layer.Module);
            }

            string folder = model.SaveLora(conversion, tmp.File("lora"));
            var keys = Safetensors.ReadHeader(Path.Combine(folder, PeftAdapterFormat.WeightsFile)).Entries.Keys.ToList();
            Assert.Equal(8, keys.Count);                                   // lora_A and lora_B per layer: no pool, no mixing, no second MoRA copy
            Assert.All(keys, k => Assert.Matches(@"^base_model\.model\.model\.layers\.\d\.self_attn\.[qv]_proj\.lora_[AB]\.weight$", k));
            using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, PeftAdapterFormat.ConfigFile))))
            {
                Assert.Equal("LORA", doc.RootElement.GetProperty("peft_type").GetString());
                Assert.False(doc.RootElement.TryGetProperty("use_mora", out _));
                Assert.False(doc.RootElement.TryGetProperty("rasa_k", out _));
            }
            using var fresh = BaseModel.Load(Folder("models/llama"));
            Assert.Equal(AdapterMethod.LoRA, fresh.LoadAdapter(folder).Method);
            TensorAssert.Close(Logits(fresh, reference), reference["plain.logits"], 1e-4, "LoRA logits vs the authors' logits");
        }

        [Fact]
        public void DoraConvertsOnlyTruncatedWithPeftsFullDeltaAsTheReference()
        {
            using var scope = NewDisposeScope();
            const string adapter = "baselines/dora_llama_r8";
            var reference = Safetensors.Read(Path.Combine(Folder(adapter), "reference.safetensors"));
            var baseWeights = Safetensors.Read(CheckpointLoader.WeightFiles(Folder("models/llama")).Single());
            using var model = BaseModel.Load(Folder("models/llama"));
            model.LoadAdapter(Folder(adapter));

            var refused = Assert.Throws<GraloraException>(() => model.ConvertToLora(AdapterConfig.DefaultName));
            Assert.Equal("FullRankDelta", refused.ErrorId);
            Assert.Contains("-Rank", refused.Message);

            // DoRA's whole ΔW is PEFT's merged weight minus the base: a rank-4 LoRA keeps its best rank-4 part (Eckart–Young).
            using (var truncated = model.ConvertToLora(AdapterConfig.DefaultName, new LoraConversionOptions { Rank = 4 }))
                foreach (var layer in truncated.Layers)
                {
                    var delta = (reference["merged." + layer.Module + ".weight"] - baseWeights[layer.Module + ".weight"]).to(ScalarType.Float64);
                    var sigma = linalg.svdvals(delta).square();
                    double expected = Math.Sqrt(sigma.narrow(0, 4, sigma.shape[0] - 4).sum().item<double>() / sigma.sum().item<double>());
                    Assert.Equal(layer.Module.EndsWith("q_proj", StringComparison.Ordinal) ? 64 : 32, layer.ExactRank);   // min(out, in)
                    Assert.True(Math.Abs(layer.RelativeError - expected) < 1e-4, $"{layer.Module}: {layer.RelativeError} vs {expected}");
                }

            // Every direction kept: the LoRA computes what PEFT's DoRA computes.
            using var whole = model.ConvertToLora(AdapterConfig.DefaultName, new LoraConversionOptions { Energy = 1 });
            using var fresh = BaseModel.Load(Folder("models/llama"));
            fresh.LoadAdapter(model.SaveLora(whole, tmp.File("dora-lora")));
            TensorAssert.Close(Logits(fresh, reference), reference["plain.logits"], 1e-4, "LoRA logits vs PEFT's DoRA logits");
        }
    }
}
