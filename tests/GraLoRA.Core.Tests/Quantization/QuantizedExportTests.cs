using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Quantization;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests.Quantization
{
    /// <summary>
    /// Exporting quantised: the checkpoint holds what transformers + bitsandbytes save for the same model (the bnb
    /// fixtures, made by tools/reference/bnb from the shared float32 Llama), and a quantised base exports dequantised
    /// (adapters folded in) unless asked to quantise, in which case the merged weights are quantised once.
    /// </summary>
    public sealed class QuantizedExportTests : IDisposable
    {
        readonly TempDirectory _tmp = new();
        public void Dispose() => _tmp.Dispose();

        static string SharedLlama => Path.Combine(TestEnvironment.Fixtures, "models", "llama");

        static Dictionary<string, Tensor> Weights(string folder) => Safetensors.Read(Path.Combine(folder, "model.safetensors"));
        static JsonObject Config(string folder) => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;

        [Theory]
        [InlineData("nf4", "llama_nf4")]
        [InlineData("nf4-dq", "llama_nf4_dq")]
        [InlineData("int8", "llama_int8")]
        public void AQuantisedExportWritesWhatTransformersSavesWithBitsandbytes(string scheme, string fixture)
        {
            using var scope = NewDisposeScope();
            using var model = BaseModel.Load(SharedLlama);
            string folder = _tmp.File("out-" + scheme);
            var rounding = model.ExportQuantized(folder, QuantizedAdapterTests.Options(scheme), "float32");
            string expectedFolder = BnbCheckpointTests.Folder(fixture);
            var ours = Weights(folder);
            var bnb = Weights(expectedFolder);
            Assert.Equal(bnb.Keys.Order(StringComparer.Ordinal), ours.Keys.Order(StringComparer.Ordinal));
            foreach (var (key, expected) in bnb)
            {
                if (key.EndsWith(".quant_state.bitsandbytes__nf4", StringComparison.Ordinal))
                {
                    var a = JsonNode.Parse(ours[key].data<byte>().ToArray())!.AsObject();
                    var b = JsonNode.Parse(expected.data<byte>().ToArray())!.AsObject();
                    Assert.Equal(b.Select(p => p.Key).Order(), a.Select(p => p.Key).Order());
                    foreach (var (field, value) in b)
                        if (field == "nested_offset") Assert.Equal(value!.GetValue<double>(), a[field]!.GetValue<double>(), 6);
                        else Assert.Equal(value!.ToJsonString(), a[field]!.ToJsonString());
                }
                else if (key.EndsWith(".nested_quant_map", StringComparison.Ordinal))
                    TensorAssert.Close(ours[key], expected, 1.2e-7, key);                      // torch.linspace's last bits (BnbCheckpointTests)
                else
                    Assert.True(TensorAssert.Identical(ours[key], expected), key);
            }
            Assert.True(JsonNode.DeepEquals(Config(expectedFolder)["quantization_config"], Config(folder)["quantization_config"]), "quantization_config");
            // One rounding per quantised projection, a few percent of each weight.
            Assert.Equal(14, rounding.Count);
            Assert.All(rounding, r => Assert.InRange(r.RelativeError, 1e-4, scheme == "int8" ? 0.02 : 0.2));
        }

        [Theory]
        [InlineData("nf4")]
        [InlineData("int8")]
        public void AQuantisedBaseExportsDequantisedWithTheAdapterFoldedInOrQuantisesTheMergedWeightsOnce(string scheme)
        {
            using var scope = NewDisposeScope();
            var options = QuantizedAdapterTests.Options(scheme);
            using var model = BaseModel.Load(SharedLlama, new BaseModelLoadOptions { Quantize = options });
            model.AddAdapter("default", new Adapters.AdapterConfig { Rank = 4, K = 2, Alpha = 8, TargetModules = new[] { Adapters.AdapterConfig.AllLinear } });
            using (no_grad())
            {
                manual_seed(5);
                foreach (var p in model.Module.parameters().Where(p => p.requires_grad)) p.normal_(0, 0.05);
            }
            Assert.NotNull(QuantizationNotes.DequantizedExportWarning(model));
            var baseWeights = QuantizedLoading.Layers(model.Network).ToDictionary(l => l.Name.Replace(".base_layer", "") + ".weight", l => l.Layer.DequantizedWeight(ScalarType.Float32));

            string plainFolder = model.Export(_tmp.File("plain"), "float32");
            Assert.Null(Config(plainFolder)["quantization_config"]);
            var plain = Weights(plainFolder);
            foreach (var (key, w) in baseWeights)
                Assert.True(plain[key].sub(w).abs().max().item<float>() > 1e-4, $"{key}: the adapter is folded in");

            string quantizedFolder = _tmp.File("quantized");
            var rounding = model.ExportQuantized(quantizedFolder, options, "float32");
            Assert.Equal(baseWeights.Count, rounding.Count);
            using var again = BaseModel.Load(quantizedFolder);
            Assert.Equal(options.Scheme, again.Quantization);
            foreach (var l in QuantizedLoading.Layers(again.Network))
            {
                using var expected = QuantizedWeight.Quantize(plain[l.Name + ".weight"], options);
                Assert.True(TensorAssert.Identical(l.Layer.DequantizedWeight(ScalarType.Float32), expected.Dequantize(ScalarType.Float32)), l.Name);
            }
        }

        [Fact]
        public void AGgufExportOfAQuantisedBaseHoldsTheDequantisedWeights()
        {
            using var scope = NewDisposeScope();
            string folder = TinyModelFactory.SaveWithTokenizer(_tmp.File("tiny"), new TinyModelOptions { Architecture = "llama", Seed = 2 });
            using var model = BaseModel.Load(folder, new BaseModelLoadOptions { Quantize = QuantizedAdapterTests.Options("nf4") });
            var file = Gguf.GgufFile.Read(model.ExportGguf(_tmp.File("nf4.gguf"), "float32"));
            var v = QuantizedLoading.Layers(model.Network).Single(l => l.Name == "model.layers.1.self_attn.v_proj").Layer.DequantizedWeight(ScalarType.Float32);
            Assert.Equal(v.data<float>().ToArray(), file.ReadFloat32("blk.1.attn_v.weight"));
            Assert.Equal(Gguf.GgmlType.F32, file.Tensors.Single(t => t.Name == "blk.1.attn_v.weight").Type);
        }
    }
}
