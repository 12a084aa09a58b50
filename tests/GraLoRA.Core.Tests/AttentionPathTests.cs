using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.IO;
using GraLoRA.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// The decoder's two attention paths: plain causal attention (SDPA with is_causal, no mask) when nothing is padded,
    /// packed or cached, and the explicit additive mask otherwise. Both must compute the same function; the fast one is
    /// what transformers' own logits (DecoderParityTests, "plain") are now compared with.
    /// </summary>
    public class AttentionPathTests
    {
        /// <summary>Logits and the gradients of every parameter for Σ logits · weights.</summary>
        static (Tensor Logits, Dictionary<string, Tensor> Gradients) Run(DecoderForCausalLM model, Tensor ids, Tensor weights, Tensor? segmentIds)
        {
            foreach (var p in model.parameters()) p.grad = null;
            var logits = model.Forward(ids, segmentIds: segmentIds).Logits;
            (logits * weights).sum().backward();
            return (logits.detach().clone(), model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone()));
        }

        /// <summary>Every decoder fixture and the token ids of each of its cases (their masks left out: both paths see every token).</summary>
        [Theory, MemberData(nameof(DecoderParityTests.Cases), MemberType = typeof(DecoderParityTests))]
        public void FastAndMaskedPathsGiveTheSameLogitsAndGradients(string modelName, string caseName)
        {
            using var scope = NewDisposeScope();
            string folder = Path.Combine(TestEnvironment.Fixtures, "models", modelName);
            var ids = Safetensors.Read(Path.Combine(folder, "reference.safetensors"))[caseName + ".input_ids"];   // [2, 7], float32 model
            using var model = CheckpointLoader.LoadDecoder(folder);
            foreach (var p in model.parameters()) p.requires_grad = true;
            manual_seed(3);
            var weights = randn(ids.shape[0], ids.shape[1], model.Config.VocabSize);

            Assert.False(model.NeedsExplicitMask(null, null, null));
            var fast = Run(model, ids, weights, null);
            // One segment covering every token: the masked path with exactly the causal mask.
            var segments = ones_like(ids);
            Assert.True(model.NeedsExplicitMask(null, segments, null));
            var masked = Run(model, ids, weights, segments);

            TensorAssert.Close(fast.Logits, masked.Logits, 1e-5, $"{modelName}/{caseName} logits");
            Assert.Equal(masked.Gradients.Keys.OrderBy(k => k), fast.Gradients.Keys.OrderBy(k => k));
            Assert.Contains(masked.Gradients.Values, g => g.abs().max().item<float>() > 0);
            foreach (var (name, gradient) in masked.Gradients)
                TensorAssert.Close(fast.Gradients[name], gradient, 1e-5, $"{modelName}/{caseName} grad {name}");
        }

        [Fact]
        public void OnlyPaddingSegmentsAndCachesNeedTheMask()
        {
            using var scope = NewDisposeScope();
            using var model = TinyModelFactory.Create(new TinyModelOptions { Seed = 1 });
            var allOnes = ones(2, 5, dtype: ScalarType.Int64);
            var padded = allOnes.clone();
            padded[1, 0] = tensor(0L);
            using var cache = new KeyValueCache(model, 2, 8);
            Assert.False(model.NeedsExplicitMask(null, null, null));
            Assert.False(model.NeedsExplicitMask(allOnes, null, null));            // a mask with nothing masked
            Assert.True(model.NeedsExplicitMask(padded, null, null));
            Assert.True(model.NeedsExplicitMask(null, allOnes, null));             // packed sequences
            Assert.True(model.NeedsExplicitMask(null, null, cache));
        }

        [Fact]
        public void CachedStepsWithGroupedQueryHeadsMatchTheCausalPass()
        {
            // llama's fixture has 4 query heads over 2 key/value heads: single cached steps take the grouped-query fold
            // (query heads as rows against their shared cache), the full pass the repeated keys/values of the fast path.
            using var scope = NewDisposeScope();
            string folder = Path.Combine(TestEnvironment.Fixtures, "models", "llama");
            var ids = Safetensors.Read(Path.Combine(folder, "reference.safetensors"))["plain.input_ids"];      // [2, 7]
            using var model = CheckpointLoader.LoadDecoder(folder);
            Assert.True(model.Config.NumHeads > model.Config.NumKeyValueHeads);
            using var _ = no_grad();
            var full = model.Forward(ids).Logits;
            using var cache = new KeyValueCache(model, 2, 7);
            var pieces = new List<Tensor> { model.Forward(ids.narrow(1, 0, 3), cache: cache).Logits };
            for (int t = 3; t < 7; t++) pieces.Add(model.Forward(ids.narrow(1, t, 1), cache: cache).Logits);
            TensorAssert.Close(cat(pieces.ToArray(), 1), full, 1e-5, "cached logits");
        }
    }
}
