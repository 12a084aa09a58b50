using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// One row of the case table every adapter-layer behaviour runs over. K is GraLoRA's grid size, MoRA's type and
    /// RaSA's rasa_k; RaSA layers share a pool of K·<see cref="RasaLayers"/> ranks.
    /// </summary>
    public sealed record LayerCase(string Name, AdapterMethod Method, int In, int Out, int Rank, int K, int HybridRank, ScalarType DType)
    {
        public const int RasaLayers = 3;

        public override string ToString() => Name;

        public IAdapterOptions Options(bool initWeights) => Method switch
        {
            AdapterMethod.GraLoRA => new GraloraOptions { Rank = Rank, K = K, HybridRank = HybridRank, Alpha = 2 * Rank, InitWeights = initWeights },
            AdapterMethod.LoRA or AdapterMethod.DoRA => new LoraOptions { Rank = Rank, Alpha = 2 * Rank, UseDora = Method == AdapterMethod.DoRA, InitWeights = initWeights },
            AdapterMethod.MoRA => new MoraOptions { Rank = Rank, MoraType = K, InitWeights = initWeights },
            AdapterMethod.RaSA => new RasaOptions { Rank = Rank, K = K, Alpha = 2 * Rank, SharedLayers = RasaLayers, InitWeights = initWeights },
            _ => new FullOptions { InitWeights = initWeights },
        };

        /// <summary>Trainable parameters one layer adds, by each method's own formula (RaSA: the layer's share excludes the pool).</summary>
        public long ParameterFormula => Method switch
        {
            AdapterMethod.GraLoRA or AdapterMethod.LoRA => (long)(Rank + HybridRank) * (In + Out),
            AdapterMethod.DoRA => (long)Rank * (In + Out) + Out,                                      // LoRA plus one magnitude per output row
            AdapterMethod.MoRA => Square * Square,                                                      // one r̂ × r̂ matrix
            AdapterMethod.RaSA => (long)(Rank - K) * (In + Out) + (Rank - K) + K * RasaLayers,        // private A, B and the mixing vector
            _ => (long)In * Out,
        };

        /// <summary>MoRA's r̂ by hand: ⌊√((in + out)·r) + ½⌋, even for type 6.</summary>
        public long Square => K == 6 ? (long)(Math.Sqrt((In + Out) * Rank) + 0.5) / 2 * 2 : (long)(Math.Sqrt((In + Out) * Rank) + 0.5);

        /// <summary>Whether a default-initialised adapter already has a non-zero parameter (LoRA's A; MoRA starts all zero).</summary>
        public bool InitHasRandomParameter => Method != AdapterMethod.MoRA;

        /// <summary>A layer of this case's method around <paramref name="linear"/> (RaSA: with a fresh pool for the adapter names given).</summary>
        public AdapterLayerBase NewLayer(Linear linear, bool initWeights, params string[] rasaAdapters)
        {
            if (Method != AdapterMethod.RaSA) return NewLayer(Method, linear);
            var pool = new RasaSharedPool();
            foreach (var name in rasaAdapters)
                pool.Add(name, "t", In, Out, (long)K * RasaLayers, initWeights, DType, linear.weight!.device);
            return new RasaLinear(linear, pool, "t");
        }

        /// <summary>A layer for a method without shared parameters.</summary>
        public static AdapterLayerBase NewLayer(AdapterMethod method, Linear linear) => method switch
        {
            AdapterMethod.GraLoRA => new GraloraLinear(linear),
            AdapterMethod.LoRA => new LoraLinear(linear),
            AdapterMethod.DoRA => new DoraLinear(linear),
            AdapterMethod.MoRA => new MoraLinear(linear),
            AdapterMethod.Full => new FullLinear(linear),
            _ => throw new ArgumentException($"{method} needs a pool", nameof(method)),
        };

        /// <summary>Relative tolerance for comparing with a float64 reference.</summary>
        public double Tolerance => DType switch
        {
            ScalarType.Float32 => 1e-5,
            ScalarType.BFloat16 => 3e-2,
            _ => 5e-3,
        };

        public AdapterLayerBase Build(bool initWeights = false, long seed = 1234)
        {
            torch.manual_seed(seed);
            var linear = nn.Linear(In, Out, hasBias: true, dtype: DType);
            var layer = NewLayer(linear, initWeights, "default");
            layer.AddAdapter("default", Options(initWeights), DType);
            return layer;
        }
    }

    public class AdapterLayerTests
    {
        public static readonly LayerCase[] Cases =
        {
            new("gralora k1 16x16 r4", AdapterMethod.GraLoRA, 16, 16, 4, 1, 0, ScalarType.Float32),
            new("gralora k2 16x16 r8", AdapterMethod.GraLoRA, 16, 16, 8, 2, 0, ScalarType.Float32),
            new("gralora k4 48x32 r8", AdapterMethod.GraLoRA, 48, 32, 8, 4, 0, ScalarType.Float32),
            new("gralora k4 32x64 r16", AdapterMethod.GraLoRA, 32, 64, 16, 4, 0, ScalarType.Float32),
            new("gralora k2 hybrid4 32x48 r8", AdapterMethod.GraLoRA, 32, 48, 8, 2, 4, ScalarType.Float32),
            new("gralora k4 hybrid4 48x32 r8", AdapterMethod.GraLoRA, 48, 32, 8, 4, 4, ScalarType.Float32),
            new("gralora k2 32x32 r8 bf16", AdapterMethod.GraLoRA, 32, 32, 8, 2, 0, ScalarType.BFloat16),
            new("gralora k2 hybrid2 32x16 r4 f16", AdapterMethod.GraLoRA, 32, 16, 4, 2, 2, ScalarType.Float16),
            new("lora 48x32 r8", AdapterMethod.LoRA, 48, 32, 8, 1, 0, ScalarType.Float32),
            new("lora 32x32 r8 bf16", AdapterMethod.LoRA, 32, 32, 8, 1, 0, ScalarType.BFloat16),
            new("dora 48x32 r8", AdapterMethod.DoRA, 48, 32, 8, 1, 0, ScalarType.Float32),
            new("dora 32x32 r4 bf16", AdapterMethod.DoRA, 32, 32, 4, 1, 0, ScalarType.BFloat16),
            new("mora type 1 48x32 r4", AdapterMethod.MoRA, 48, 32, 4, 1, 0, ScalarType.Float32),   // r̂ 18: padded input, repeated output
            new("mora type 1 16x40 r8", AdapterMethod.MoRA, 16, 40, 8, 1, 0, ScalarType.Float32),   // r̂ 21 > in: one padded block
            new("mora type 6 48x32 r4", AdapterMethod.MoRA, 48, 32, 4, 6, 0, ScalarType.Float32),   // r̂ 18: 3 blocks, last padded
            new("mora type 6 24x64 r8", AdapterMethod.MoRA, 24, 64, 8, 6, 0, ScalarType.Float32),   // r̂ 26 > in, output tiled
            new("mora type 6 32x32 r4 bf16", AdapterMethod.MoRA, 32, 32, 4, 6, 0, ScalarType.BFloat16),
            new("rasa 48x32 r8 k2", AdapterMethod.RaSA, 48, 32, 8, 2, 0, ScalarType.Float32),
            new("rasa 32x32 r4 k4 (all shared)", AdapterMethod.RaSA, 32, 32, 4, 4, 0, ScalarType.Float32),
            new("full 48x32", AdapterMethod.Full, 48, 32, 0, 0, 0, ScalarType.Float32),
        };

        public static TheoryData<LayerCase> AllCases() => new(Cases);
        public static TheoryData<LayerCase> Float32GraloraCases() =>
            new(Cases.Where(c => c.Method == AdapterMethod.GraLoRA && c.DType == ScalarType.Float32));

        static readonly long[][] InputShapes = { new long[] { 5 }, new long[] { 3, 5 }, new long[] { 2, 3, 4 } };

        static Tensor Input(LayerCase c, long[] lead, long seed = 99)
        {
            torch.manual_seed(seed);
            return randn(lead.Append(c.In).ToArray()).to(c.DType);
        }

        /// <summary>x·(W+ΔW)ᵀ + b in float64: what every forward must equal.</summary>
        static Tensor Reference(AdapterLayerBase layer, Tensor x, bool withDelta = true)
        {
            using var _ = no_grad();
            var w = layer.BaseWeight().to(ScalarType.Float64);
            if (withDelta)
                foreach (var n in layer.ActiveAdapters) w = w + layer.GetDeltaWeight(n).to(ScalarType.Float64);
            return x.to(ScalarType.Float64).matmul(w.t()) + layer.BaseBias!.to(ScalarType.Float64);
        }

        [Theory, MemberData(nameof(AllCases))]
        public void ForwardEqualsBaseOutputPlusInputTimesDeltaWeight(LayerCase c)
        {
            using var scope = NewDisposeScope();
            var layer = c.Build();
            foreach (var lead in InputShapes)
            {
                var x = Input(c, lead);
                var y = layer.forward(x);
                Assert.Equal(c.DType, y.dtype);
                Assert.Equal(lead.Append(c.Out).ToArray(), y.shape);
                TensorAssert.Close(y, Reference(layer, x), c.Tolerance, $"{c} {string.Join("x", lead)}");
            }
        }

        [Theory, MemberData(nameof(AllCases))]
        public void MergedForwardEqualsUnmergedAndUnmergeRestoresTheWeight(LayerCase c)
        {
            using var scope = NewDisposeScope();
            var layer = c.Build();
            var x = Input(c, new long[] { 2, 3 });
            var weight = layer.BaseWeight().detach().clone();
            var unmerged = layer.forward(x);

            layer.Merge();
            Assert.True(layer.Merged);
            Assert.False(TensorAssert.Identical(weight, layer.BaseWeight()));
            TensorAssert.Close(layer.forward(x), unmerged, 2 * c.Tolerance, "merged vs unmerged");

            layer.Unmerge();
            Assert.False(layer.Merged);
            TensorAssert.Close(layer.BaseWeight(), weight, c.DType == ScalarType.Float32 ? 1e-6 : c.Tolerance, "unmerged weight");
            TensorAssert.Close(layer.forward(x), unmerged, 2 * c.Tolerance, "after unmerge");
        }

        [Theory, MemberData(nameof(AllCases))]
        public void SafeMergeEqualsMerge(LayerCase c)
        {
            using var scope = NewDisposeScope();
            var plain = c.Build();
            var safe = c.Build();
            plain.Merge();
            safe.Merge(safe: true);
            Assert.True(TensorAssert.Identical(plain.BaseWeight(), safe.BaseWeight()));
        }

        [Theory, MemberData(nameof(AllCases))]
        public void DisabledEqualsBaseAndEnableRestoresTheAdapter(LayerCase c)
        {
            using var scope = NewDisposeScope();
            var layer = c.Build();
            var x = Input(c, new long[] { 4 });
            var adapted = layer.forward(x);
            layer.Merge();
            layer.DisableAdapters();
            Assert.False(layer.Merged);                       // disabling unmerges first, as PEFT does
            TensorAssert.Close(layer.forward(x), Reference(layer, x, withDelta: false), c.Tolerance, "disabled");
            layer.EnableAdapters();
            TensorAssert.Close(layer.forward(x), adapted, 2 * c.Tolerance, "enabled again");
        }

        [Theory, MemberData(nameof(AllCases))]
        public void AtDefaultInitTheOutputEqualsTheBaseOutput(LayerCase c)
        {
            using var scope = NewDisposeScope();
            var layer = c.Build(initWeights: true);
            var x = Input(c, new long[] { 2, 3 });
            if (c.Method == AdapterMethod.DoRA && c.DType != ScalarType.Float32)
            {
                // A half-precision magnitude is ‖W‖ rounded, so m/n is 1 only within that rounding (as in PEFT).
                TensorAssert.Close(layer.forward(x), layer.BaseLayer.forward(x), c.Tolerance, "half-precision DoRA at init");
                return;
            }
            Assert.Equal(0, layer.GetDeltaWeight("default").abs().max().to(ScalarType.Float32).item<float>());
            Assert.True(TensorAssert.Identical(layer.forward(x), layer.BaseLayer.forward(x)));
            if (c.InitHasRandomParameter)
                Assert.NotEqual(0, layer.AdapterParameters("default").First(p => p.numel() > 0).abs().max().to(ScalarType.Float32).item<float>()); // A is random
        }

        [Theory, MemberData(nameof(AllCases))]
        public void ParameterCountFollowsTheMethodsFormula(LayerCase c)
        {
            using var scope = NewDisposeScope();
            var layer = c.Build();
            Assert.Equal(c.ParameterFormula, layer.AdapterParameterCount("default"));
            if (c.Method == AdapterMethod.GraLoRA)
            {
                var lora = new LoraLinear(nn.Linear(c.In, c.Out), "default", new LoraOptions { Rank = c.Rank + c.HybridRank });
                Assert.Equal(lora.AdapterParameterCount("default"), layer.AdapterParameterCount("default"));   // equal to LoRA at the same total rank
            }
            Assert.All(layer.AdapterParameters("default"), p => Assert.True(p.requires_grad));
        }

        [Theory, MemberData(nameof(Float32GraloraCases))]
        public void DeltaWeightRankIsKTimesR(LayerCase c)
        {
            using var scope = NewDisposeScope();
            var layer = c.Build();
            long expected = Math.Min((long)c.K * c.Rank + c.HybridRank, Math.Min(c.In, c.Out));
            Assert.Equal(expected, layer.DeltaWeightRank("default"));
            var lora = new LoraLinear(nn.Linear(c.In, c.Out), "default", new LoraOptions { Rank = c.Rank, InitWeights = false });
            Assert.Equal(Math.Min(c.Rank, Math.Min(c.In, c.Out)), lora.DeltaWeightRank("default"));
        }

        [Fact]
        public void GraloraWithKEqualOneIsLora()
        {
            using var scope = NewDisposeScope();
            var gralora = (GraloraLinear)new LayerCase("k1", AdapterMethod.GraLoRA, 24, 40, 6, 1, 0, ScalarType.Float32).Build();
            var lora = new LoraLinear(gralora.BaseLayer, "default", new LoraOptions { Rank = 6, Alpha = 12 });
            using (no_grad())
            {
                lora.A("default").copy_(gralora.A("default")[0].t());   // [in, r] -> [r, in]
                lora.B("default").copy_(gralora.B("default")[0].t());   // [r, out] -> [out, r]
            }
            var x = randn(3, 24);
            TensorAssert.Close(lora.forward(x), gralora.forward(x), 1e-6, "forward");
            TensorAssert.Close(lora.GetDeltaWeight("default"), gralora.GetDeltaWeight("default"), 1e-6, "delta");
        }

        [Fact]
        public void HalfPrecisionBasesGetFloat32AdaptersByDefault()
        {
            using var scope = NewDisposeScope();
            var layer = new GraloraLinear(nn.Linear(16, 16, dtype: ScalarType.BFloat16), "default", new GraloraOptions { Rank = 4, K = 2, InitWeights = false });
            Assert.All(layer.AdapterParameters("default"), p => Assert.Equal(ScalarType.Float32, p.dtype));
            var x = randn(2, 16).to(ScalarType.BFloat16);
            Assert.Equal(ScalarType.BFloat16, layer.forward(x).dtype);
            Assert.Equal(ScalarType.Float32, layer.GetDeltaWeight("default").dtype);
        }

        [Fact]
        public void Float64WeightsMergeWithoutLosingPrecision()
        {
            using var scope = NewDisposeScope();
            var layer = new GraloraLinear(nn.Linear(16, 16, dtype: ScalarType.Float64), "default", new GraloraOptions { Rank = 4, K = 2, InitWeights = false });
            var weight = layer.BaseWeight().detach().clone();
            var expected = weight + layer.GetDeltaWeight("default");
            layer.Merge();
            Assert.True(TensorAssert.Identical(expected, layer.BaseWeight()));   // summed in float64, not via float32
            layer.Unmerge();
            TensorAssert.Close(layer.BaseWeight(), weight, 1e-14, "unmerged float64 weight");
        }

        [Fact]
        public void SeveralAdaptersAddTheirDeltasAndOnlyActiveOnesTrain()
        {
            using var scope = NewDisposeScope();
            torch.manual_seed(7);
            var layer = new GraloraLinear(nn.Linear(32, 32));
            layer.AddAdapter("a", new GraloraOptions { Rank = 8, K = 2, InitWeights = false });
            layer.AddAdapter("b", new GraloraOptions { Rank = 8, K = 4, HybridRank = 2, InitWeights = false });
            Assert.Equal(new[] { "a" }, layer.ActiveAdapters);
            Assert.All(layer.AdapterParameters("b"), p => Assert.False(p.requires_grad));

            layer.SetActiveAdapters(new[] { "a", "b" });
            var x = randn(3, 32);
            var expected = x.matmul((layer.BaseWeight() + layer.GetDeltaWeight("a") + layer.GetDeltaWeight("b")).t()) + layer.BaseBias!;
            TensorAssert.Close(layer.forward(x), expected, 1e-5, "sum of deltas");

            long before = layer.parameters().Count();
            layer.RemoveAdapter("b");
            Assert.Equal(before - 4, layer.parameters().Count());
            Assert.DoesNotContain(layer.named_parameters(), p => p.name.EndsWith(".b") || p.name.Contains(".b."));
            Assert.Equal(new[] { "a" }, layer.AdapterNames);
            Assert.Equal(new[] { "a" }, layer.ActiveAdapters);
        }

        [Fact]
        public void ParameterNamesFollowPeft()
        {
            using var scope = NewDisposeScope();
            var layer = new GraloraLinear(nn.Linear(8, 8), "default", new GraloraOptions { Rank = 4, K = 2, HybridRank = 2 });
            var names = layer.named_parameters().Select(p => p.name).OrderBy(n => n, StringComparer.Ordinal).ToArray();
            Assert.Equal(new[]
            {
                "base_layer.bias", "base_layer.weight", "gralora_A.default", "gralora_A_general.default.weight",
                "gralora_B.default", "gralora_B_general.default.weight",
            }, names);
            var lora = new LoraLinear(nn.Linear(8, 8), "default", new LoraOptions { Rank = 4 });
            Assert.Equal(new[] { "base_layer.bias", "base_layer.weight", "lora_A.default.weight", "lora_B.default.weight" },
                lora.named_parameters().Select(p => p.name).OrderBy(n => n, StringComparer.Ordinal).ToArray());
        }

        [Fact]
        public void SafeMergeRefusesNonFiniteWeightsAndLeavesTheWeightAlone()
        {
            using var scope = NewDisposeScope();
            var layer = new GraloraLinear(nn.Linear(8, 8), "default", new GraloraOptions { Rank = 4, K = 2, InitWeights = false });
            using (no_grad()) layer.B("default")[0, 0, 0] = float.NaN;
            var weight = layer.BaseWeight().detach().clone();
            var ex = Assert.Throws<GraloraException>(() => layer.Merge(safe: true));
            Assert.Equal("NonFiniteMerge", ex.ErrorId);
            Assert.Contains("'default'", ex.Message);
            Assert.True(TensorAssert.Identical(weight, layer.BaseWeight()));
            Assert.False(layer.Merged);
        }

        [Fact]
        public void DropoutAppliesOnlyInTraining()
        {
            using var scope = NewDisposeScope();
            var layer = new GraloraLinear(nn.Linear(16, 16), "default", new GraloraOptions { Rank = 4, K = 2, Dropout = 0.5, InitWeights = false });
            var x = randn(64, 16);
            layer.eval();
            var evalOut = layer.forward(x);
            TensorAssert.Close(evalOut, Reference(layer, x), 1e-5, "eval");
            layer.train();
            Assert.False(torch.allclose(layer.forward(x), evalOut));
        }

        public static TheoryData<IAdapterOptions, long, long, string, string> InvalidOptions => new()
        {
            { new GraloraOptions { Rank = 0 }, 16, 16, "InvalidRank", "Rank (r) must be a positive whole number" },
            { new GraloraOptions { Rank = 8, K = 0 }, 16, 16, "InvalidK", "but it is 0" },
            { new GraloraOptions { Rank = 8, K = 3 }, 18, 18, "RankNotDivisibleByK", "Rank 8 must be divisible by K 3" },
            { new GraloraOptions { Rank = 8, K = 4 }, 18, 16, "InFeaturesNotDivisibleByK", "in_features 18" },
            { new GraloraOptions { Rank = 8, K = 4 }, 16, 18, "OutFeaturesNotDivisibleByK", "out_features 18" },
            { new GraloraOptions { Rank = 8, K = 2, HybridRank = -1 }, 16, 16, "InvalidHybridRank", "but it is -1" },
            { new GraloraOptions { Rank = 8, K = 2, Dropout = 1 }, 16, 16, "InvalidDropout", "but it is 1" },
            { new GraloraOptions { Rank = 8, K = 2, Dropout = -0.1 }, 16, 16, "InvalidDropout", "but it is -0.1" },
            { new GraloraOptions { Rank = 8, K = 2, Alpha = double.NaN }, 16, 16, "InvalidAlpha", "Alpha must be a finite number" },
            { new LoraOptions { Rank = -2 }, 16, 16, "InvalidRank", "but it is -2" },
            { new MoraOptions { Rank = 8, MoraType = 3 }, 16, 16, "InvalidMoraType", "MoraType (mora_type) 3" },
            { new MoraOptions { Rank = 0 }, 16, 16, "InvalidRank", "but it is 0" },
            { new MoraOptions { Rank = 64, MoraType = 1 }, 16, 64, "MoraRankTooLarge", "more than twice in_features 16" },   // r̂ 80 > 32
            { new RasaOptions { Rank = 8, K = 0 }, 16, 16, "InvalidRasaK", "between 1 and the rank 8" },
            { new RasaOptions { Rank = 8, K = 9 }, 16, 16, "InvalidRasaK", "but it is 9" },
        };

        [Theory, MemberData(nameof(InvalidOptions))]
        public void InvalidSettingsNameTheValue(IAdapterOptions options, long inFeatures, long outFeatures, string errorId, string message)
        {
            var ex = Assert.Throws<GraloraException>(() => options.Validate(inFeatures, outFeatures, "model.layers.0.mlp.down_proj"));
            Assert.Equal(errorId, ex.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidArgument, ex.Kind);
            Assert.Contains(message, ex.Message);
            Assert.Contains("'model.layers.0.mlp.down_proj'", ex.Message);

            // The layer runs the same validation and is left without the adapter.
            using var scope = NewDisposeScope();
            var linear = nn.Linear(inFeatures, outFeatures);
            var layer = options is RasaOptions r
                ? new LayerCase("rasa", AdapterMethod.RaSA, (int)inFeatures, (int)outFeatures, r.Rank, Math.Clamp(r.K, 1, r.Rank), 0, ScalarType.Float32).NewLayer(linear, true, "default")
                : LayerCase.NewLayer(options.Method, linear);
            Assert.Equal(errorId, Assert.Throws<GraloraException>(() => layer.AddAdapter("default", options)).ErrorId);
            Assert.Empty(layer.AdapterNames);
            Assert.Equal(2, layer.parameters().Count());
        }

        [Fact]
        public void AdapterNamesAreChecked()
        {
            using var scope = NewDisposeScope();
            var layer = new GraloraLinear(nn.Linear(8, 8), "default", new GraloraOptions { Rank = 4, K = 2 });
            Assert.Equal("AdapterExists", Assert.Throws<GraloraException>(() => layer.AddAdapter("default", new GraloraOptions { Rank = 4, K = 2 })).ErrorId);
            Assert.Equal("InvalidAdapterName", Assert.Throws<GraloraException>(() => layer.AddAdapter("a.b", new GraloraOptions { Rank = 4, K = 2 })).ErrorId);
            Assert.Equal("AdapterMethodMismatch", Assert.Throws<GraloraException>(() => layer.AddAdapter("lora", new LoraOptions())).ErrorId);
            var missing = Assert.Throws<GraloraException>(() => layer.SetActiveAdapters(new[] { "nope" }));
            Assert.Equal("AdapterNotFound", missing.ErrorId);
            Assert.Contains("it has: default", missing.Message);
        }
    }
}
