using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Quantization;
using GraLoRA.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests.Quantization
{
    /// <summary>
    /// Adapters wrap a quantised layer exactly as they wrap a Linear holding the dequantised weight: same forward, same
    /// gradients, float32 adapter weights; merges re-quantise and report their rounding; training on a quantised base
    /// lowers the loss (with gradient checkpointing too); the saved adapter is an ordinary PEFT adapter.
    /// </summary>
    public sealed class QuantizedAdapterTests : IDisposable
    {
        readonly TempDirectory _tmp = new();
        public void Dispose() => _tmp.Dispose();

        public static TheoryData<AdapterMethod, string, string> Cases() => new()
        {
            { AdapterMethod.GraLoRA, "nf4", "float32" },
            { AdapterMethod.GraLoRA, "nf4-dq", "bfloat16" },
            { AdapterMethod.GraLoRA, "int8", "float32" },
            { AdapterMethod.LoRA, "nf4", "bfloat16" },
            { AdapterMethod.LoRA, "int8", "float32" },
            { AdapterMethod.DoRA, "nf4", "float32" },
            { AdapterMethod.DoRA, "int8", "bfloat16" },
            { AdapterMethod.MoRA, "nf4-dq", "float32" },
        };

        internal static QuantizationOptions Options(string scheme) => scheme switch
        {
            "int8" => new QuantizationOptions { Scheme = QuantizationScheme.Int8 },
            "nf4-dq" => new QuantizationOptions { DoubleQuant = true },
            _ => new QuantizationOptions(),
        };

        static AdapterLayerBase Wrap(AdapterMethod method, nn.Module<Tensor, Tensor> baseLayer)
        {
            manual_seed(42);
            IAdapterOptions options = method switch
            {
                AdapterMethod.GraLoRA => new GraloraOptions { Rank = 8, K = 2, Alpha = 16, InitWeights = false },
                AdapterMethod.MoRA => new MoraOptions { Rank = 8, MoraType = 6, InitWeights = false },
                _ => new LoraOptions { Rank = 8, Alpha = 16, InitWeights = false, UseDora = method == AdapterMethod.DoRA },
            };
            AdapterLayerBase layer = method switch
            {
                AdapterMethod.GraLoRA => new GraloraLinear(baseLayer),
                AdapterMethod.DoRA => new DoraLinear(baseLayer),
                AdapterMethod.MoRA => new MoraLinear(baseLayer),
                _ => new LoraLinear(baseLayer),
            };
            layer.AddAdapter("default", options);
            return layer;
        }

        /// <summary>A quantised layer and a Linear holding its dequantised weight and the same bias, each wrapped by the same adapter.</summary>
        static (AdapterLayerBase Quantized, AdapterLayerBase Plain) Pair(AdapterMethod method, string scheme, ScalarType dtype)
        {
            manual_seed(5);
            var linear = nn.Linear(64, 32, hasBias: true, dtype: dtype);
            var quantized = QuantizedLinear.FromLinear(linear, Options(scheme));
            var plain = nn.Linear(new Parameter(quantized.DequantizedWeight().detach().clone()), new Parameter(linear.bias!.detach().clone()));
            return (Wrap(method, quantized), Wrap(method, plain));
        }

        [Theory, MemberData(nameof(Cases))]
        public void AnAdapterOnAQuantisedLayerComputesAsOnALinearHoldingTheDequantisedWeight(AdapterMethod method, string scheme, string dtypeName)
        {
            using var scope = NewDisposeScope();
            var dtype = ModelDType.Parse(dtypeName);
            var (quantized, plain) = Pair(method, scheme, dtype);
            Assert.True(quantized.BaseQuantized);
            Assert.All(quantized.AdapterParameters("default"), p => Assert.Equal(ScalarType.Float32, p.dtype));   // float32 adapters
            Assert.Equal(new[] { "bias" }, quantized.BaseLayer.named_parameters().Select(p => p.name));               // no weight parameter
            var x = randn(3, 7, 64, dtype: dtype);
            var y1 = quantized.forward(x);
            var y2 = plain.forward(x);
            Assert.True(TensorAssert.Identical(y1, y2), "same forward");
            var g = randn(y1.shape, dtype: dtype);
            y1.backward(new[] { g });
            y2.backward(new[] { g });
            foreach (var (a, b) in quantized.AdapterParameters("default").Zip(plain.AdapterParameters("default")))
                Assert.True(TensorAssert.Identical(a.grad!, b.grad!), "same adapter gradients");
            TensorAssert.Close(quantized.BaseWeight(), plain.BaseWeight(), 0, "one accessor: the dequantised weight");
        }

        [Theory]
        [InlineData("nf4")]
        [InlineData("int8")]
        public void MergingReQuantisesWWithDeltaAndReportsTheRounding(string scheme)
        {
            using var scope = NewDisposeScope();
            var (layer, _) = Pair(AdapterMethod.GraLoRA, scheme, ScalarType.Float32);
            var before = layer.BaseWeight().detach().clone();
            var expected = before.add(layer.GetDeltaWeight("default"));                        // W + ΔW
            var x = randn(4, 64);
            var unmerged = layer.forward(x);
            layer.Merge();
            var requantized = QuantizedWeight.Quantize(expected, Options(scheme));
            Assert.True(TensorAssert.Identical(layer.BaseWeight(), requantized.Dequantize(ScalarType.Float32)), "the base holds Q(W + ΔW)");
            var rounding = layer.LastRequantization!.Value;
            var difference = requantized.Dequantize(ScalarType.Float32).sub(expected);
            Assert.Equal(difference.abs().max().item<float>(), rounding.MaxAbs, 6);
            Assert.Equal(difference.norm().item<float>() / layer.GetDeltaWeight("default").norm().item<float>(), rounding.RelativeError, 3);
            TensorAssert.Close(layer.forward(x), nn.functional.linear(x, layer.BaseWeight(), layer.BaseBias), 1e-6, "merged forward = base alone");
            TensorAssert.Close(layer.forward(x), unmerged, scheme == "int8" ? 0.02 : 0.2, "merged ≈ unmerged, within the re-quantisation");
            layer.Unmerge();
            Assert.False(layer.Merged);
        }

        [Theory]
        [InlineData(AdapterMethod.DoRA, "nf4")]
        [InlineData(AdapterMethod.MoRA, "int8")]
        public void AMethodWhoseMergeIsItsOwnReQuantisesWhatItsMergeGivesOnALinear(AdapterMethod method, string scheme)
        {
            using var scope = NewDisposeScope();
            var (layer, plain) = Pair(method, scheme, ScalarType.Float32);
            // The plain layer holds the dequantised weight: its merge rule (DoRA's row rescaling, MoRA's ΔW) gives W'.
            var expected = plain.MergedWeight(new[] { "default" });
            layer.Merge();
            var requantized = QuantizedWeight.Quantize(expected, Options(scheme)).Dequantize(ScalarType.Float32);
            Assert.True(TensorAssert.Identical(layer.BaseWeight(), requantized), "the base holds Q(W')");
            Assert.NotNull(layer.LastRequantization);
            layer.Unmerge();
            Assert.False(layer.Merged);
        }

        string TinyFolder() => TinyModelFactory.Save(_tmp.File("tiny-" + Guid.NewGuid().ToString("N")), new TinyModelOptions { Seed = 9 });

        static BaseModel Quantized(string folder, string scheme, AdapterMethod method = AdapterMethod.GraLoRA)
        {
            var model = BaseModel.Load(folder, new BaseModelLoadOptions { Quantize = Options(scheme) });
            manual_seed(3);
            model.AddAdapter("default", new AdapterConfig { Method = method, Rank = 8, K = method == AdapterMethod.GraLoRA ? 2 : null, Alpha = method == AdapterMethod.MoRA ? null : 16, TargetModules = new[] { AdapterConfig.AllLinear } });
            return model;
        }

        /// <summary>Batches whose next token is a fixed function of the current one: learnable by the adapters.</summary>
        static IBatchSource Pattern(int batches)
        {
            var list = new List<DataBatch>();
            for (int b = 0; b < batches; b++)
            {
                long[] ids = new long[4 * 10], labels = new long[4 * 10], mask = Enumerable.Repeat(1L, 40).ToArray();
                for (int i = 0; i < 40; i++)
                {
                    ids[i] = 60 + (7 * i + 3 * b) % 23;
                    labels[i] = i % 10 == 0 ? TrainingExample.IgnoreIndex : 60 + (ids[i - 1] - 60 + 5) % 23;
                }
                list.Add(new DataBatch(4, 10, ids, labels, mask, Enumerable.Range(0, 40).Select(i => (long)(i % 10)).ToArray(), null, null, new[] { 0, 1, 2, 3 }));
            }
            return new FixedBatches(list);
        }

        [Theory]
        [InlineData("nf4", AdapterMethod.GraLoRA, false)]
        [InlineData("nf4-dq", AdapterMethod.GraLoRA, true)]
        [InlineData("int8", AdapterMethod.LoRA, false)]
        [InlineData("nf4", AdapterMethod.DoRA, true)]
        [InlineData("int8", AdapterMethod.MoRA, false)]
        [InlineData("nf4", AdapterMethod.RaSA, false)]
        public void TrainingOnAQuantisedBaseLowersTheLoss(string scheme, AdapterMethod method, bool checkpointing)
        {
            using var model = Quantized(TinyFolder(), scheme, method);
            var data = Pattern(4);
            double before = Trainer.Evaluate(model, data).Loss;
            var result = new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 40, WarmupSteps = 4, GradientCheckpointing = checkpointing }).Train(data);
            double after = Trainer.Evaluate(model, data).Loss;
            Assert.True(after < before * 0.7, $"loss {before:F3} → {after:F3}");
            Assert.Equal(40, result.Steps);
            Assert.Equal(14, QuantizedLoading.Layers(model.Network).Count());                  // the base stayed quantised
        }

        [Fact]
        public void GradientCheckpointingGivesTheSameGradientsOnQuantisedLayers()
        {
            using var scope = NewDisposeScope();
            using var model = Quantized(TinyFolder(), "nf4");
            var batch = Pattern(1).Epoch(0).First();
            Dictionary<string, Tensor> Gradients(bool checkpoint)
            {
                model.Module.GradientCheckpointing = checkpoint;
                model.Module.train();
                foreach (var p in model.Module.parameters()) p.grad = null;
                Trainer.LossSum(model.Module, batch, CPU).backward();
                return model.Module.named_parameters().Where(p => p.parameter.requires_grad).ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
            }
            var plain = Gradients(false);
            int replays = LayerCheckpoint.Replays;
            var checkpointed = Gradients(true);
            Assert.Equal(model.Config.NumLayers, LayerCheckpoint.Replays - replays);
            Assert.Contains(plain.Values, g => g.abs().max().item<float>() > 0);
            foreach (var key in plain.Keys) TensorAssert.Close(checkpointed[key], plain[key], 1e-5, key);
        }

        [Fact]
        public void TheSavedAdapterIsTheSamePeftAdapterAsOnAFullPrecisionBaseAndLoadsBack()
        {
            using var scope = NewDisposeScope();
            string folder = TinyFolder();
            using var quantized = Quantized(folder, "nf4");
            new Trainer(quantized, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 3 }).Train(Pattern(2));
            string saved = quantized.SaveAdapter("default", _tmp.File("adapter"));
            using var plain = BaseModel.Load(folder);
            manual_seed(3);
            plain.AddAdapter("default", quantized.Adapters.Config("default"));
            var keys = Safetensors.ReadHeader(Path.Combine(saved, PeftAdapterFormat.WeightsFile)).Entries.Values.ToDictionary(e => e.Name, e => (e.DType, string.Join(",", e.Shape)));
            var expected = plain.Adapters.StateDict("default").ToDictionary(kv => kv.Key, kv => ("F32", string.Join(",", kv.Value.shape)));
            Assert.Equal(expected.OrderBy(kv => kv.Key), keys.OrderBy(kv => kv.Key));
            Assert.DoesNotContain(keys.Keys, k => k.Contains("absmax") || k.Contains("quant"));
            // Into a fresh quantised model: the same logits.
            using var again = BaseModel.Load(folder, new BaseModelLoadOptions { Quantize = Options("nf4") });
            again.LoadAdapter(saved);
            IReadOnlyList<IReadOnlyList<int>> ids = new[] { new[] { 61, 70, 65, 80 } };
            using var a = quantized.Forward(ids);
            using var b = again.Forward(ids);
            Assert.True(TensorAssert.Identical(a.LogitsTensor, b.LogitsTensor));
        }

        [Fact]
        public void FullFineTuningOverAQuantisedBaseIsRefusedBeforeAnythingChanges()
        {
            var method = AdapterMethod.Full;
            using var model = BaseModel.Load(TinyFolder(), new BaseModelLoadOptions { Quantize = Options("nf4") });
            var config = AdapterConfig.ForComparison(method, 8) with { TargetModules = new[] { "q_proj", "v_proj" } };
            var ex = Assert.Throws<GraloraException>(() => model.AddAdapter("default", config));
            Assert.Equal("QuantizationUnsupported", ex.ErrorId);
            Assert.Contains("full fine-tuning", ex.Message);
            Assert.Contains("LoRA, GraLoRA, DoRA, MoRA, RaSA", ex.Message);
            Assert.Empty(model.Adapters.List());
        }

        [Fact]
        public void ModulesToSaveCannotBeQuantisedLayers()
        {
            using var model = BaseModel.Load(TinyFolder(), new BaseModelLoadOptions { Quantize = Options("nf4") });
            var ex = Assert.Throws<GraloraException>(() => model.AddAdapter("default", new AdapterConfig { Rank = 8, K = 2, TargetModules = new[] { "q_proj" }, ModulesToSave = new[] { "down_proj" } }));
            Assert.Equal("UnsupportedTarget", ex.ErrorId);
            Assert.Contains("quantised", ex.Message);
        }
    }
}
