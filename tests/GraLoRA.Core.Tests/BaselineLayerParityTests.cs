using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA.Adapters;
using GraLoRA.IO;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// The layer math of DoRA, MoRA and RaSA against adapters made by each method's own code (shared/fixtures/baselines:
    /// PEFT's DoRA, the MoRA authors' fork, the RaSA authors' fork): ΔW, merged weights and DoRA's weight norm, layer
    /// by layer, from the base weights of models/llama and the saved adapter tensors. Tolerance 1e-5 (fixtures README).
    /// Further shapes come from Baselines/baseline-layers.safetensors, computed by hand from the published formulas
    /// (see the README there): all seven projections, MoRA types 1 and 6, another rank, biases, rsLoRA.
    /// </summary>
    public sealed class BaselineLayerParityTests
    {
        const string Prefix = "base_model.model.";
        static readonly string[] Modules =
        {
            "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj",
        };

        static string Folder(string name) => Path.Combine(TestEnvironment.Fixtures, "baselines", name);

        static Dictionary<string, Tensor> BaseWeights() =>
            Safetensors.Read(Path.Combine(TestEnvironment.Fixtures, "models", "llama", "model.safetensors"), k => Modules.Any(m => k == m + ".weight"));

        static Linear BaseLinear(Tensor weight)
        {
            var linear = nn.Linear(weight.shape[1], weight.shape[0], hasBias: false);
            using (no_grad()) linear.weight!.copy_(weight);
            return linear;
        }

        static void Copy(Tensor target, Tensor source)
        {
            Assert.Equal(source.shape, target.shape);
            using (no_grad()) target.copy_(source);
        }

        [Fact]
        public void DoraLayersReproducePeftsDeltaNormAndMergedWeight()
        {
            using var scope = NewDisposeScope();
            var adapter = Safetensors.Read(Path.Combine(Folder("dora_llama_r8"), PeftAdapterFormat.WeightsFile));
            var reference = Safetensors.Read(Path.Combine(Folder("dora_llama_r8"), "reference.safetensors"));
            var weights = BaseWeights();
            foreach (var module in Modules)
            {
                var layer = new DoraLinear(BaseLinear(weights[module + ".weight"]), "default", new LoraOptions { Rank = 8, Alpha = 16, UseDora = true });
                Copy(layer.A("default"), adapter[Prefix + module + ".lora_A.weight"]);
                Copy(layer.B("default"), adapter[Prefix + module + ".lora_B.weight"]);
                Copy(layer.Magnitude("default"), adapter[Prefix + module + ".lora_magnitude_vector"]);

                TensorAssert.Close(layer.DirectionUpdate("default"), reference["delta." + module + ".weight"], 1e-5, module + " delta");
                TensorAssert.Close(layer.WeightNorm("default"), reference["weight_norm." + module + ".weight"], 1e-5, module + " weight norm");
                // The forward's ΔW is what merging adds: W' − W.
                TensorAssert.Close(layer.GetDeltaWeight("default"), reference["merged." + module + ".weight"] - weights[module + ".weight"], 1e-5, module + " effective delta");
                layer.Merge();
                TensorAssert.Close(layer.BaseWeight(), reference["merged." + module + ".weight"], 1e-5, module + " merged");
                layer.Unmerge();
                TensorAssert.Close(layer.BaseWeight(), weights[module + ".weight"], 1e-6, module + " unmerged");
            }
        }

        [Fact]
        public void MoraLayersReproduceTheForksDeltaAndMergedWeight()
        {
            using var scope = NewDisposeScope();
            var adapter = Safetensors.Read(Path.Combine(Folder("mora_llama_r8_t6"), PeftAdapterFormat.WeightsFile));
            var reference = Safetensors.Read(Path.Combine(Folder("mora_llama_r8_t6"), "reference.safetensors"));
            var weights = BaseWeights();
            foreach (var module in Modules)
            {
                var layer = new MoraLinear(BaseLinear(weights[module + ".weight"]), "default", new MoraOptions { Rank = 8, MoraType = 6 });
                Assert.Equal(module.EndsWith("q_proj") ? 32 : 28, layer.SquareSize("default"));   // the manifest's r_hat
                var square = adapter[Prefix + module + ".lora_A.weight"];
                Assert.True(TensorAssert.Identical(square, adapter[Prefix + module + ".lora_B.weight"]));
                Copy(layer.Square("default"), square);

                TensorAssert.Close(layer.GetDeltaWeight("default"), reference["delta." + module + ".weight"], 1e-5, module + " delta");
                layer.Merge();
                TensorAssert.Close(layer.BaseWeight(), reference["merged." + module + ".weight"], 1e-5, module + " merged");
            }
        }

        [Fact]
        public void RasaLayersReproduceTheForksDeltaWithOnePoolPerModuleType()
        {
            using var scope = NewDisposeScope();
            var adapter = Safetensors.Read(Path.Combine(Folder("rasa_llama_r16_k2"), PeftAdapterFormat.WeightsFile));
            var reference = Safetensors.Read(Path.Combine(Folder("rasa_llama_r16_k2"), "reference.safetensors"));
            var weights = BaseWeights();
            var pool = new RasaSharedPool();
            var options = new RasaOptions { Rank = 16, K = 2, Alpha = 32, SharedLayers = 2 };
            foreach (var type in new[] { "self_attn__q_proj", "self_attn__v_proj" })
            {
                var w = weights["model.layers.0." + type.Replace("__", ".") + ".weight"];
                pool.Add("default", type, w.shape[1], w.shape[0], options.SharedRank, true, ScalarType.Float32, CPU);
                Copy(pool.A("default", type), adapter["base_model.rasa_shared_A." + type + ".weight"]);
                Copy(pool.B("default", type), adapter["base_model.rasa_shared_B." + type + ".weight"]);
            }
            foreach (var module in Modules)
            {
                string type = RasaSharedPool.ModuleType(module)!;
                var layer = new RasaLinear(BaseLinear(weights[module + ".weight"]), pool, type);
                layer.AddAdapter("default", options);
                // Before the fixture's values go in: the authors' initial mixing, (α/2)/(r − k) then (α/2)/(k·L).
                var mixing = layer.Mixing("default");
                Assert.Equal(18, mixing.shape[0]);
                TensorAssert.Close(mixing[..14], full(14, 16.0 / 14), 1e-7, "private mixing init");
                TensorAssert.Close(mixing[14..], full(4, 4.0), 1e-7, "shared mixing init");
                Copy(layer.A("default"), adapter[Prefix + module + ".rasa_A.weight"]);
                Copy(layer.B("default"), adapter[Prefix + module + ".rasa_B.weight"]);
                Copy(mixing, adapter[Prefix + module + ".rasa_mixing.weight"]);

                TensorAssert.Close(layer.GetDeltaWeight("default"), reference["delta." + module + ".weight"], 1e-5, module + " delta");
            }
            Assert.Equal(new[] { "self_attn__q_proj", "self_attn__v_proj" }, pool.Types("default"));
        }

        static readonly string SelfMade = Path.Combine(TestEnvironment.RepoRoot, "tests", "GraLoRA.Core.Tests", "Baselines", "baseline-layers.safetensors");

        public static TheoryData<string> SelfMadeCases()
        {
            var data = new TheoryData<string>();
            using var cases = JsonDocument.Parse(Safetensors.ReadHeader(SelfMade).Metadata["cases"]);
            foreach (var c in cases.RootElement.EnumerateArray()) data.Add(c.GetProperty("case").GetString()!);
            return data;
        }

        static JsonElement CaseSettings(string name)
        {
            var cases = JsonDocument.Parse(Safetensors.ReadHeader(SelfMade).Metadata["cases"]);
            return cases.RootElement.EnumerateArray().Single(c => c.GetProperty("case").GetString() == name).Clone();
        }

        static Linear BaseLinear(Dictionary<string, Tensor> f, string module, bool bias)
        {
            var w = f["base." + module + ".W"];
            var linear = nn.Linear(w.shape[1], w.shape[0], hasBias: bias);
            using (no_grad())
            {
                linear.weight!.copy_(w);
                if (bias) linear.bias!.copy_(f["base." + module + ".bias"]);
            }
            return linear;
        }

        /// <summary>The case's own value for MoRA, DoRA and RaSA; forward, ΔW and merge all compared.</summary>
        [Theory, MemberData(nameof(SelfMadeCases))]
        public void LayersReproduceHandComputedFormulasForOtherShapes(string name)
        {
            using var scope = NewDisposeScope();
            var f = Safetensors.Read(SelfMade);
            var c = CaseSettings(name);
            string module = name.Split('.')[1];
            bool bias = c.TryGetProperty("bias", out var b) && b.GetBoolean();
            var x = f["base." + module + ".x"];
            int r = c.GetProperty("r").GetInt32();
            switch (c.GetProperty("method").GetString())
            {
                case "MoRA":
                {
                    var layer = new MoraLinear(BaseLinear(f, module, bias), "default", new MoraOptions { Rank = r, MoraType = c.GetProperty("mora_type").GetInt32() });
                    Assert.Equal(c.GetProperty("r_hat").GetInt64(), layer.SquareSize("default"));
                    Copy(layer.Square("default"), f[name + ".mora"]);
                    CheckLayer(layer, x, f[name + ".y"], f[name + ".delta"], name);
                    break;
                }
                case "DoRA":
                {
                    var layer = new DoraLinear(BaseLinear(f, module, bias), "default",
                        new LoraOptions { Rank = r, Alpha = c.GetProperty("lora_alpha").GetDouble(), UseRsLora = c.GetProperty("use_rslora").GetBoolean(), UseDora = true });
                    Copy(layer.A("default"), f[name + ".lora_A"]);
                    Copy(layer.B("default"), f[name + ".lora_B"]);
                    Copy(layer.Magnitude("default"), f[name + ".magnitude"]);
                    TensorAssert.Close(layer.WeightNorm("default"), f[name + ".norm"], 1e-5, name + " norm");
                    CheckLayer(layer, x, f[name + ".y"], f[name + ".merged"] - f["base." + module + ".W"], name);
                    layer.Merge();
                    TensorAssert.Close(layer.BaseWeight(), f[name + ".merged"], 1e-5, name + " merged weight");
                    break;
                }
                default:
                {
                    int k = c.GetProperty("rasa_k").GetInt32(), layers = c.GetProperty("layers").GetInt32();
                    var pool = new RasaSharedPool();
                    var w = f["base." + module + ".W"];
                    pool.Add("default", module, w.shape[1], w.shape[0], k * layers, true, ScalarType.Float32, CPU);
                    Copy(pool.A("default", module), f[name + ".shared_A"]);
                    Copy(pool.B("default", module), f[name + ".shared_B"]);
                    for (int l = 0; l < layers; l++)
                    {
                        var layer = new RasaLinear(BaseLinear(f, module, false), pool, module);
                        layer.AddAdapter("default", new RasaOptions { Rank = r, K = k, SharedLayers = layers });
                        Copy(layer.A("default"), f[$"{name}.layer{l}.rasa_A"]);
                        Copy(layer.B("default"), f[$"{name}.layer{l}.rasa_B"]);
                        Copy(layer.Mixing("default"), f[$"{name}.layer{l}.mixing"]);
                        CheckLayer(layer, x, f[$"{name}.layer{l}.y"], f[$"{name}.layer{l}.delta"], $"{name} layer {l}");
                    }
                    break;
                }
            }
        }

        /// <summary>Two MoRA adapters of different types on one layer, both active: their outputs add (a hybrid of types).</summary>
        [Theory]
        [InlineData("q_proj"), InlineData("down_proj"), InlineData("gate_proj")]
        public void MoraTypesOneAndSixTogetherAddTheirOutputs(string module)
        {
            using var scope = NewDisposeScope();
            var f = Safetensors.Read(SelfMade);
            var layer = new MoraLinear(BaseLinear(f, module, false));
            layer.AddAdapter("one", new MoraOptions { Rank = 8, MoraType = 1 });
            layer.AddAdapter("six", new MoraOptions { Rank = 8, MoraType = 6 });
            Copy(layer.Square("one"), f[$"mora_t1_r8.{module}.mora"]);
            Copy(layer.Square("six"), f[$"mora_t6_r8.{module}.mora"]);
            layer.SetActiveAdapters(new[] { "one", "six" });
            var x = f["base." + module + ".x"];
            var baseOutput = x.to(ScalarType.Float64).matmul(f["base." + module + ".W"].to(ScalarType.Float64).t());
            var expected = f[$"mora_t1_r8.{module}.y"].to(ScalarType.Float64) + f[$"mora_t6_r8.{module}.y"].to(ScalarType.Float64) - baseOutput;
            TensorAssert.Close(layer.forward(x), expected, 1e-5, module + " both types");
            layer.Merge();
            TensorAssert.Close(layer.forward(x), expected, 1e-5, module + " both types merged");
        }

        /// <summary>
        /// DoRA's norm ‖W + sBA‖ is a constant in backward (DoRA paper §4.3, PEFT's detach): the gradients equal those of
        /// (m/n)·x·(W + sBA)ᵀ with n detached, written out here, and differ from those of the undetached formula.
        /// </summary>
        [Fact]
        public void DoraGradientsTreatTheWeightNormAsAConstant()
        {
            using var scope = NewDisposeScope();
            torch.manual_seed(5);
            var layer = new DoraLinear(nn.Linear(12, 10), "default", new LoraOptions { Rank = 3, Alpha = 6, UseDora = true, InitWeights = false });
            using (no_grad()) layer.Magnitude("default").mul_(rand(10) + 0.5);
            var x = randn(4, 12);
            var g = randn(4, 10);
            layer.forward(x).mul(g).sum().backward();

            Tensor[] Reference(bool detach)
            {
                var a = layer.A("default").detach().clone().requires_grad_(true);
                var b = layer.B("default").detach().clone().requires_grad_(true);
                var m = layer.Magnitude("default").detach().clone().requires_grad_(true);
                var w = layer.BaseWeight().detach();
                var combined = w + b.matmul(a) * 2.0;                                       // W + sBA, s = 6/3
                var norm = combined.square().sum(1).sqrt();
                if (detach) norm = norm.detach();
                var y = x.matmul(combined.t()) * (m / norm) + layer.BaseBias!.detach();
                y.mul(g).sum().backward();
                return new[] { a.grad!, b.grad!, m.grad! };
            }
            var detached = Reference(detach: true);
            var grads = new[] { layer.A("default").grad!, layer.B("default").grad!, layer.Magnitude("default").grad! };
            for (int i = 0; i < 3; i++) TensorAssert.Close(grads[i], detached[i], 1e-5, $"gradient {i}");
            var undetached = Reference(detach: false);
            Assert.True(TensorAssert.RelativeError(grads[0], undetached[0]) > 1e-3);         // the detach matters here
        }

        /// <summary>
        /// PEFT's dora_init: the magnitude starts as the row norm ‖W + s·B·A‖ of the weight with the initial update
        /// (B = 0 by default, so ‖W‖; random A and B with init_lora_weights=False), written out here from that formula.
        /// </summary>
        [Theory, InlineData(true), InlineData(false)]
        public void DoraMagnitudeStartsAsTheRowNormOfTheInitialWeight(bool initWeights)
        {
            using var scope = NewDisposeScope();
            torch.manual_seed(9);
            var layer = new DoraLinear(nn.Linear(12, 10), "default", new LoraOptions { Rank = 3, Alpha = 6, UseDora = true, InitWeights = initWeights });
            var w = layer.BaseWeight().detach();
            var combined = w + layer.B("default").detach().matmul(layer.A("default").detach()) * 2.0;   // W + sBA, s = 6/3 [10, 12]
            var expected = combined.square().sum(1).sqrt();                                             // [10]
            if (initWeights) TensorAssert.Close(expected, w.square().sum(1).sqrt(), 1e-7, "B = 0: ‖W‖");
            TensorAssert.Close(layer.Magnitude("default"), expected, 1e-6, "magnitude at init");
        }

        static void CheckLayer(AdapterLayerBase layer, Tensor x, Tensor y, Tensor delta, string what)
        {
            TensorAssert.Close(layer.forward(x), y, 1e-5, what + " forward");
            TensorAssert.Close(layer.GetDeltaWeight("default"), delta, 1e-5, what + " delta");
            layer.Merge();
            TensorAssert.Close(layer.forward(x), y, 1e-5, what + " merged forward");
            layer.Unmerge();
        }
    }
}
