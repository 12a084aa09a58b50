using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA.Adapters;
using GraLoRA.IO;
using GraLoRA.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Adapters saved by PEFT itself (shared/fixtures/gralora, lora; baselines/dora_*) and by the MoRA and RaSA authors'
    /// forks (baselines/mora_*, rasa_*): import, logits, ΔW, merge, save, export.
    /// </summary>
    public sealed class PeftAdapterParityTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        public static TheoryData<string, string> Fixtures() => new()
        {
            { "gralora/llama_r8_k2", "llama" }, { "gralora/qwen2_r8_k2_h4", "qwen2" }, { "lora/llama_r8", "llama" },
            { "baselines/dora_llama_r8", "llama" }, { "baselines/mora_llama_r8_t6", "llama" }, { "baselines/rasa_llama_r16_k2", "llama" },
        };

        static AdapterMethod MethodOf(string adapter) => (adapter.StartsWith("baselines/") ? adapter.Split('/')[1].Split('_')[0] : adapter.Split('/')[0]) switch
        {
            "dora" => AdapterMethod.DoRA, "mora" => AdapterMethod.MoRA, "rasa" => AdapterMethod.RaSA, "lora" => AdapterMethod.LoRA, _ => AdapterMethod.GraLoRA,
        };

        // RaSA's code cannot merge: its fixture has no merged logits; merging adds the ΔW its forward applies, so the merged
        // model must give its unmerged logits.
        static string MergedLogits(Dictionary<string, Tensor> reference) => reference.ContainsKey("plain.logits_merged") ? "logits_merged" : "logits";

        static string Folder(string relative) => Path.Combine(TestEnvironment.Fixtures, relative);

        static Tensor Logits(BaseModel model, Dictionary<string, Tensor> reference, string caseName)
        {
            reference.TryGetValue(caseName + ".attention_mask", out var mask);
            reference.TryGetValue(caseName + ".position_ids", out var positions);
            using var _ = no_grad();
            return model.Module.Forward(reference[caseName + ".input_ids"], mask, positions).Logits;
        }

        static void AssertLogits(BaseModel model, Dictionary<string, Tensor> reference, string suffix, string what)
        {
            foreach (var c in new[] { "plain", "padded", "padded_posids" })
            {
                var logits = Logits(model, reference, c);
                var valid = reference.TryGetValue(c + ".attention_mask", out var m) ? m.to(ScalarType.Bool) : ones(logits.shape[0], logits.shape[1], dtype: ScalarType.Bool);
                TensorAssert.Close(logits[valid], reference[c + "." + suffix][valid], 1e-4, $"{what} {c}");
            }
        }

        [Theory, MemberData(nameof(Fixtures))]
        public void ImportedAdapterComputesWhatPeftComputes(string adapter, string baseModel)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(adapter), "reference.safetensors"));
            using var model = BaseModel.Load(Folder("models/" + baseModel));
            var config = model.LoadAdapter(Folder(adapter));
            Assert.Equal(MethodOf(adapter), config.Method);
            AssertLogits(model, reference, "logits", adapter);

            // ΔW from the one builder equals PEFT's get_delta_weight.
            var layers = model.Adapters.Layers().ToDictionary(l => l.Name, l => l.Layer);
            var deltaKeys = reference.Keys.Where(k => k.StartsWith("delta.", StringComparison.Ordinal)).ToList();
            Assert.Equal(deltaKeys.Count, layers.Count);
            foreach (var key in deltaKeys)
            {
                string module = key["delta.".Length..^".weight".Length];
                // DoRA's delta is PEFT's get_delta_weight, the direction update sBA; the magnitude's part is checked by the merge.
                var delta = layers[module] is DoraLinear dora ? dora.DirectionUpdate(AdapterConfig.DefaultName) : layers[module].GetDeltaWeight(AdapterConfig.DefaultName);
                TensorAssert.Close(delta, reference[key], 1e-5, key);
                if (layers[module] is DoraLinear d)
                    TensorAssert.Close(d.WeightNorm(AdapterConfig.DefaultName), reference["weight_norm." + module + ".weight"], 1e-5, "weight_norm." + module);
            }

            // Merging: weights equal PEFT's merged weights, logits equal its merged logits.
            model.Adapters.Merge();
            foreach (var key in reference.Keys.Where(k => k.StartsWith("merged.", StringComparison.Ordinal)))
            {
                string module = key["merged.".Length..^".weight".Length];
                TensorAssert.Close(layers[module].BaseWeight(), reference[key], 1e-5, key);
            }
            AssertLogits(model, reference, MergedLogits(reference), adapter + " merged");
            Assert.All(model.Adapters.List(), a => Assert.True(a.Merged));

            model.Adapters.Unmerge();
            AssertLogits(model, reference, "logits", adapter + " unmerged");
        }

        [Theory, MemberData(nameof(Fixtures))]
        public void SavedAdapterHasPeftsKeysShapesAndConfigFields(string adapter, string baseModel)
        {
            using var scope = NewDisposeScope();
            using var model = BaseModel.Load(Folder("models/" + baseModel));
            model.LoadAdapter(Folder(adapter));
            string saved = model.SaveAdapter(AdapterConfig.DefaultName, tmp.File("saved"));

            var peft = Safetensors.ReadHeader(Path.Combine(Folder(adapter), PeftAdapterFormat.WeightsFile)).Entries;
            var ours = Safetensors.ReadHeader(Path.Combine(saved, PeftAdapterFormat.WeightsFile)).Entries;
            Assert.Equal(peft.Keys.OrderBy(k => k, StringComparer.Ordinal), ours.Keys.OrderBy(k => k, StringComparer.Ordinal));
            foreach (var (key, entry) in peft)
            {
                Assert.Equal(entry.Shape, ours[key].Shape);
                Assert.Equal(entry.DType, ours[key].DType);
            }
            // The tensors themselves survive the trip bit for bit.
            var a = Safetensors.Read(Path.Combine(Folder(adapter), PeftAdapterFormat.WeightsFile));
            var b = Safetensors.Read(Path.Combine(saved, PeftAdapterFormat.WeightsFile));
            foreach (var key in a.Keys) Assert.True(TensorAssert.Identical(a[key], b[key]), key);

            using var peftConfig = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(adapter), PeftAdapterFormat.ConfigFile)));
            using var ourConfig = JsonDocument.Parse(File.ReadAllText(Path.Combine(saved, PeftAdapterFormat.ConfigFile)));
            var peftFields = peftConfig.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
            var ourFields = ourConfig.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
            Assert.Equal(peftFields.Keys.OrderBy(k => k), ourFields.Keys.OrderBy(k => k));
            foreach (var field in new[] { "peft_type", "r", "gralora_k", "hybrid_r", "alpha", "lora_alpha", "bias", "task_type", "base_model_name_or_path", "init_weights", "init_lora_weights",
                                          "use_dora", "use_mora", "mora_type", "rasa_k", "rasa_alpha", "rasa_dropout", "lora_dropout", "use_rslora" })
                if (peftFields.TryGetValue(field, out var expected))
                {
                    if (expected.ValueKind == JsonValueKind.Number) Assert.Equal(expected.GetDouble(), ourFields[field].GetDouble());   // Python writes 0.0, .NET 0
                    else Assert.Equal(expected.GetRawText(), ourFields[field].GetRawText());
                }
            Assert.Equal(peftFields["target_modules"].EnumerateArray().Select(e => e.GetString()).OrderBy(s => s),
                         ourFields["target_modules"].EnumerateArray().Select(e => e.GetString()).OrderBy(s => s));
        }

        [Theory, MemberData(nameof(Fixtures))]
        public void ExportedMergedModelReimportsWithTheAdaptedLogits(string adapter, string baseModel)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(adapter), "reference.safetensors"));
            using var model = BaseModel.Load(Folder("models/" + baseModel));
            model.LoadAdapter(Folder(adapter));
            string exported = model.Export(tmp.File("export"), maxShardBytes: 100_000);
            Assert.True(File.Exists(Path.Combine(exported, "model.safetensors.index.json")));
            Assert.True(File.Exists(Path.Combine(exported, "generation_config.json")));
            var keys = CheckpointLoader.WeightFiles(exported).SelectMany(f => Safetensors.ReadHeader(f).Entries.Keys).ToList();
            Assert.DoesNotContain(keys, k => k.Contains("gralora_") || k.Contains("lora_") || k.Contains("base_layer"));
            var originalKeys = CheckpointLoader.WeightFiles(Folder("models/" + baseModel)).SelectMany(f => Safetensors.ReadHeader(f).Entries.Keys);
            Assert.Equal(originalKeys.OrderBy(k => k, StringComparer.Ordinal), keys.OrderBy(k => k, StringComparer.Ordinal));

            using var reimported = BaseModel.Load(exported);
            AssertLogits(reimported, reference, MergedLogits(reference), adapter + " exported");
            AssertLogits(reimported, reference, "logits", adapter + " exported vs adapted");
        }

        [Fact]
        public void AdapterForAnotherArchitectureFailsClearlyAndLeavesNothing()
        {
            using var scope = NewDisposeScope();
            // Same module names as the fixture's llama, other sizes.
            using var model = BaseModel.Load(TinyModelFactory.Save(tmp.File("small"), new TinyModelOptions { HiddenSize = 32, Heads = 2, KeyValueHeads = 1, IntermediateSize = 48 }));
            var before = model.Module.named_parameters().Select(p => p.name).OrderBy(n => n, StringComparer.Ordinal).ToList();
            var ex = Assert.Throws<GraloraException>(() => model.LoadAdapter(Folder("gralora/llama_r8_k2")));
            Assert.Equal("AdapterShapeMismatch", ex.ErrorId);
            Assert.Contains("base_model.model.model.layers.", ex.Message);
            Assert.Empty(model.Adapters.Names);
            Assert.Equal(before, model.Module.named_parameters().Select(p => p.name).OrderBy(n => n, StringComparer.Ordinal));
        }

        [Fact]
        public void UnsupportedPeftTypeIsNamed()
        {
            Directory.CreateDirectory(tmp.File("ia3"));
            File.WriteAllText(tmp.File("ia3/adapter_config.json"), "{\"peft_type\": \"IA3\", \"target_modules\": [\"q_proj\"]}");
            var ex = Assert.Throws<GraloraException>(() => PeftAdapterFormat.ReadConfig(tmp.File("ia3")));
            Assert.Equal("UnsupportedPeftType", ex.ErrorId);
            Assert.Contains("IA3", ex.Message);
            Assert.Equal("AdapterFolderNotFound", Assert.Throws<GraloraException>(() => PeftAdapterFormat.ReadConfig(tmp.File("none"))).ErrorId);
        }
    }
}
