using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA.Adapters;
using GraLoRA.IO;
using GraLoRA.Models;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// GraLoRA → LoRA conversion on adapters PEFT saved (shared/fixtures/gralora): the reference values are PEFT's own
    /// (get_delta_weight, logits), and for truncation the Eckart–Young bound computed from an SVD of PEFT's ΔW.
    /// </summary>
    public sealed class LoraConversionTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        public static TheoryData<string, string, int> Fixtures() => new()
        {
            { "gralora/llama_r8_k2", "llama", 16 },          // k·r = 2·8
            { "gralora/qwen2_r8_k2_h4", "qwen2", 20 },       // k·r + hybrid_r = 16 + 4
        };

        static string Folder(string relative) => Path.Combine(TestEnvironment.Fixtures, relative);

        static Dictionary<string, Tensor> Deltas(Dictionary<string, Tensor> reference) => reference
            .Where(kv => kv.Key.StartsWith("delta.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key["delta.".Length..^".weight".Length], kv => kv.Value);

        static Tensor Logits(BaseModel model, Dictionary<string, Tensor> reference)
        {
            using var _ = no_grad();
            return model.Module.Forward(reference["plain.input_ids"]).Logits;
        }

        [Theory, MemberData(nameof(Fixtures))]
        public void ExactConversionReproducesPeftDeltaAndLogits(string adapter, string baseModel, int exactRank)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(adapter), "reference.safetensors"));
            using var model = BaseModel.Load(Folder("models/" + baseModel));
            model.LoadAdapter(Folder(adapter));
            using var conversion = model.ConvertToLora(AdapterConfig.DefaultName);

            var deltas = Deltas(reference);
            Assert.Equal(deltas.Keys.OrderBy(k => k), conversion.Layers.Select(l => l.Module).OrderBy(k => k));
            foreach (var layer in conversion.Layers)
            {
                Assert.Equal(exactRank, layer.ExactRank);
                Assert.Equal(exactRank, layer.Rank);
                Assert.True(layer.RelativeError < 1e-6, $"{layer.Module}: {layer.RelativeError:E3}");
                var (a, b) = conversion.Factors(layer.Module);
                TensorAssert.Close(b.mm(a), deltas[layer.Module], 1e-5, layer.Module);
            }

            // Saved as PEFT LoRA, loaded back as LoRA on a fresh base: PEFT's logits with the GraLoRA adapter.
            string folder = model.SaveLora(conversion, tmp.File(baseModel + "-lora"));
            using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, PeftAdapterFormat.ConfigFile))))
            {
                Assert.Equal("LORA", doc.RootElement.GetProperty("peft_type").GetString());
                Assert.Equal(exactRank, doc.RootElement.GetProperty("r").GetInt32());
                Assert.Equal(exactRank, doc.RootElement.GetProperty("lora_alpha").GetInt32());
            }
            using var fresh = BaseModel.Load(Folder("models/" + baseModel));
            var loaded = fresh.LoadAdapter(folder);
            Assert.Equal(AdapterMethod.LoRA, loaded.Method);
            TensorAssert.Close(Logits(fresh, reference), reference["plain.logits"], 1e-4, "LoRA logits vs PEFT's GraLoRA logits");
            TensorAssert.Close(Logits(fresh, reference), Logits(model, reference), 1e-4, "LoRA logits vs our GraLoRA logits");
        }

        [Fact]
        public void TruncationErrorIsEckartYoungAndShrinksWithRank()
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder("gralora/qwen2_r8_k2_h4"), "reference.safetensors"));
            var deltas = Deltas(reference);
            using var model = BaseModel.Load(Folder("models/qwen2"));
            model.LoadAdapter(Folder("gralora/qwen2_r8_k2_h4"));
            var previous = new Dictionary<string, double>();
            foreach (int rank in new[] { 1, 2, 4, 8, 12, 16, 20 })
            {
                using var conversion = model.ConvertToLora(AdapterConfig.DefaultName, new LoraConversionOptions { Rank = rank });
                foreach (var layer in conversion.Layers)
                {
                    Assert.Equal(rank, layer.Rank);
                    // Best rank-k error from PEFT's ΔW: sqrt(Σ_{i>k} σᵢ²) / sqrt(Σ σᵢ²).
                    var sigma = linalg.svdvals(deltas[layer.Module].to(ScalarType.Float64)).square();
                    double expected = Math.Sqrt(sigma.narrow(0, rank, sigma.shape[0] - rank).sum().item<double>() / sigma.sum().item<double>());
                    Assert.True(Math.Abs(layer.RelativeError - expected) < 1e-5, $"rank {rank} {layer.Module}: {layer.RelativeError} vs {expected}");
                    if (previous.TryGetValue(layer.Module, out var before)) Assert.True(layer.RelativeError <= before + 1e-12, $"{layer.Module} error grew at rank {rank}");
                    previous[layer.Module] = layer.RelativeError;
                }
            }
        }

        [Fact]
        public void EnergyPicksRanksPerLayerAndWritesRankAndAlphaPatterns()
        {
            using var scope = NewDisposeScope();
            using var model = BaseModel.Load(Folder("models/llama"));
            model.LoadAdapter(Folder("gralora/llama_r8_k2"));
            var reference = Safetensors.Read(Path.Combine(Folder("gralora/llama_r8_k2"), "reference.safetensors"));
            var deltas = Deltas(reference);
            const double energy = 0.9;
            using var conversion = model.ConvertToLora(AdapterConfig.DefaultName, new LoraConversionOptions { Energy = energy });
            foreach (var layer in conversion.Layers)
            {
                var share = linalg.svdvals(deltas[layer.Module].to(ScalarType.Float64)).square();
                share = share.cumsum(0) / share.sum();
                // The fewest directions reaching 90 % of ‖ΔW‖², per PEFT's ΔW.
                int expected = (int)share.lt(energy).sum().item<long>() + 1;
                Assert.Equal(expected, layer.Rank);
            }
            Assert.True(conversion.Layers.Select(l => l.Rank).Distinct().Count() > 1, "the fixture's layers should need different ranks");

            string folder = model.SaveLora(conversion, tmp.File("energy"));
            var config = PeftAdapterFormat.ReadConfig(folder);
            int common = config.EffectiveRank;
            Assert.Equal(common, config.EffectiveAlpha);
            foreach (var layer in conversion.Layers)
            {
                var options = (LoraOptions)config.OptionsFor(layer.Module);
                Assert.Equal(layer.Rank, options.Rank);
                Assert.Equal(1.0, options.Scaling);          // alpha_pattern = rank_pattern: PEFT's scaling is 1 everywhere
            }
            Assert.NotNull(config.RankPattern);
            Assert.Equal(config.RankPattern!.Keys.OrderBy(k => k), config.AlphaPattern!.Keys.OrderBy(k => k));

            // Loads back as LoRA with each layer's ΔW = the truncated B·A.
            using var fresh = BaseModel.Load(Folder("models/llama"));
            fresh.LoadAdapter(folder);
            foreach (var (module, layer) in fresh.Adapters.Layers())
            {
                var (a, b) = conversion.Factors(module);
                TensorAssert.Close(layer.GetDeltaWeight(AdapterConfig.DefaultName), b.mm(a), 1e-6, module);
            }
        }

        public static TheoryData<int?, double?, string> BadOptions() => new()
        {
            { 17, null, "RankAboveExact" }, { 0, null, "InvalidRank" }, { -3, null, "InvalidRank" },
            { null, 0.0, "InvalidEnergy" }, { null, 1.5, "InvalidEnergy" }, { null, -0.1, "InvalidEnergy" }, { null, double.NaN, "InvalidEnergy" },
            { 4, 0.9, "ConflictingTruncation" },
        };

        [Theory, MemberData(nameof(BadOptions))]
        public void BadTruncationIsRefusedByName(int? rank, double? energy, string errorId)
        {
            using var model = BaseModel.Load(Folder("models/llama"));
            model.LoadAdapter(Folder("gralora/llama_r8_k2"));
            var ex = Assert.Throws<GraloraException>(() => model.ConvertToLora(AdapterConfig.DefaultName, new LoraConversionOptions { Rank = rank, Energy = energy }));
            Assert.Equal(errorId, ex.ErrorId);
            Assert.Contains((rank?.ToString() ?? energy?.ToString())!, ex.Message);
        }

        [Fact]
        public void ALoraAdapterIsNotConverted()
        {
            using var model = BaseModel.Load(Folder("models/llama"));
            model.LoadAdapter(Folder("lora/llama_r8"));
            Assert.Equal("NotGraLoRA", Assert.Throws<GraloraException>(() => model.ConvertToLora(AdapterConfig.DefaultName)).ErrorId);
        }

        [Fact]
        public void AlphaPatternOnAGraloraConfigIsRefused()
        {
            var config = new AdapterConfig { AlphaPattern = new Dictionary<string, double> { ["q_proj"] = 4 } };
            Assert.Equal("NotForGraLoRA", Assert.Throws<GraloraException>(config.Validate).ErrorId);
        }
    }
}
