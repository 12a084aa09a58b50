using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>The paper's and PEFT's promises, checked on the layer.</summary>
    public class GraloraMethodTests
    {
        // ---- Parity with PEFT's own outputs (../shared/fixtures/layer) ----

        public static TheoryData<string> LayerFixtures() => new() { "linear48x32_r8_k2", "linear48x32_r8_k4_h4" };

        static GraloraLinear FromFixture(string name, Dictionary<string, Tensor> reference)
        {
            string dir = Path.Combine(TestEnvironment.Fixtures, "layer", name);
            using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")));
            var root = config.RootElement;
            var options = new GraloraOptions
            {
                Rank = root.GetProperty("r").GetInt32(),
                K = root.GetProperty("gralora_k").GetInt32(),
                HybridRank = root.GetProperty("hybrid_r").GetInt32(),
                Alpha = root.GetProperty("alpha").GetDouble(),
            };
            var linear = nn.Linear(48, 32);
            var layer = new GraloraLinear(linear, "default", options);
            var saved = Safetensors.Read(Path.Combine(dir, "adapter_model.safetensors"));
            using (no_grad())
            {
                linear.weight!.copy_(reference["base.weight"]);
                linear.bias!.copy_(reference["base.bias"]);
                layer.A("default").copy_(saved["base_model.model.lin.gralora_A"]);
                layer.B("default").copy_(saved["base_model.model.lin.gralora_B"]);
                if (options.HybridRank > 0)
                {
                    layer.AGeneral("default")!.copy_(saved["base_model.model.lin.gralora_A_general.weight"]);
                    layer.BGeneral("default")!.copy_(saved["base_model.model.lin.gralora_B_general.weight"]);
                }
            }
            return layer;
        }

        [Theory, MemberData(nameof(LayerFixtures))]
        public void MatchesPeftOnItsOwnFixture(string name)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(TestEnvironment.Fixtures, "layer", name, "reference.safetensors"));
            var layer = FromFixture(name, reference);
            // The adapter file and the reference agree on the weights, so the load is what PEFT used.
            TensorAssert.Close(layer.A("default"), reference["gralora_A"], 0, "gralora_A");
            Assert.Equal(reference["scaling"].item<float>(), (float)layer.Options("default").Scaling, 6);

            TensorAssert.Close(layer.GetDeltaWeight("default"), reference["delta_weight"], 1e-5, "delta_weight");
            TensorAssert.Close(layer.forward(reference["x"]), reference["y"], 1e-5, "y (3-D input)");
            TensorAssert.Close(layer.forward(reference["x2d"]), reference["y2d"], 1e-5, "y2d (2-D input)");

            layer.Merge(safe: true);
            TensorAssert.Close(layer.forward(reference["x"]), reference["y_merged_weight"], 1e-5, "merged");
            layer.DisableAdapters();
            TensorAssert.Close(layer.forward(reference["x"]), reference["y_base_only"], 1e-5, "base only");
        }

        // ---- Gradient localisation (the paper's core claim) ----

        /// <summary>Gradients of (A, B) for loss = Σ y ⊙ g at input x.</summary>
        static (Tensor A, Tensor B) Gradients(AdapterLayerBase layer, Tensor x, Tensor g)
        {
            foreach (var p in layer.AdapterParameters("default")) p.grad = null;
            var loss = (layer.forward(x) * g).sum();
            loss.backward();
            var ps = layer.AdapterParameters("default").ToArray();
            return (ps[0].grad!.clone(), ps[1].grad!.clone());
        }

        [Theory]
        [InlineData(2, 0)]
        [InlineData(2, 1)]
        [InlineData(4, 2)]
        [InlineData(4, 3)]
        public void AnOutlierChannelOnlyMovesTheBlocksThatSeeIt(int k, int outlierBlock)
        {
            using var scope = NewDisposeScope();
            const int inFeatures = 32, outFeatures = 24, rank = 8, tokens = 16;
            int s = rank / k, inBlock = inFeatures / k;
            int channel = outlierBlock * inBlock + 1;
            torch.manual_seed(11);
            var gralora = new GraloraLinear(nn.Linear(inFeatures, outFeatures), "default", new GraloraOptions { Rank = rank, K = k, InitWeights = false });
            var lora = new LoraLinear(gralora.BaseLayer, "default", new LoraOptions { Rank = rank, InitWeights = false });
            var x = randn(tokens, inFeatures);
            var g = randn(tokens, outFeatures);                          // fixed upstream gradient
            var outlier = x.clone();
            using (no_grad()) outlier[TensorIndex.Colon, channel] *= 100;

            var (gA0, gB0) = Gradients(gralora, x, g);
            var (gA1, gB1) = Gradients(gralora, outlier, g);
            // gralora_B [k(j), r = (n, s), out/k]: sub-block (j, n) is rows n·s..(n+1)·s of B[j].
            for (int j = 0; j < k; j++)
                for (int n = 0; n < k; n++)
                {
                    var before = gB0[j, TensorIndex.Slice(n * s, (n + 1) * s)];
                    var after = gB1[j, TensorIndex.Slice(n * s, (n + 1) * s)];
                    if (n == outlierBlock) Assert.False(TensorAssert.Identical(before, after), $"block ({j},{n}) should see the outlier");
                    else Assert.True(TensorAssert.Identical(before, after), $"block ({j},{n}) must not change");
                }
            // gralora_A [k(n), in/k, r]: only the outlier channel's row changes.
            var changedA = (gA0 != gA1).any(dim: 2).nonzero();
            Assert.Equal(new long[] { outlierBlock, 1 }, changedA.flatten().data<long>().ToArray());

            var (lA0, lB0) = Gradients(lora, x, g);
            var (lA1, lB1) = Gradients(lora, outlier, g);
            Assert.True((lB0 != lB1).all().item<bool>(), "LoRA: every entry of ∂L/∂B moves");
            var changedLoraColumns = (lA0 != lA1).any(dim: 0).nonzero().flatten().data<long>().ToArray();
            Assert.Equal(new long[] { channel }, changedLoraColumns);   // LoRA's A [r, in]: only the outlier column
        }
    }
}
