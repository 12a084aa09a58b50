using System.Collections.Generic;
using GraLoRA.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// The decoder's two attention paths: plain causal attention (SDPA with is_causal, no mask) where
    /// AttentionMask.NeedsExplicitMask allows it, and the explicit additive mask otherwise. Both must compute the same
    /// function; transformers' own logits (DecoderParityTests "plain", DecoderFamilyParityTests) now go through the
    /// fast one wherever it applies.
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

        /// <summary>Layers that take the fast path for <paramref name="length"/> unpadded, unpacked, uncached tokens.</summary>
        static int FastLayers(DecoderConfig c, long length) =>
            Enumerable.Range(0, c.NumLayers).Count(i => !AttentionMask.NeedsExplicitMask(0, length, null, null, c.WindowOf(i), c.EagerAttention));

        /// <summary>The default path against the masked one (one segment over every token forces the mask: exactly causal), logits and every gradient.</summary>
        static void AssertPathsAgree(DecoderForCausalLM model, Tensor ids, string what)
        {
            foreach (var p in model.parameters()) p.requires_grad = true;
            manual_seed(3);
            var weights = randn(ids.shape[0], ids.shape[1], model.Config.VocabSize);
            var fast = Run(model, ids, weights, null);
            var masked = Run(model, ids, weights, ones_like(ids));
            TensorAssert.Close(fast.Logits, masked.Logits, 1e-5, what + " logits");
            Assert.Equal(masked.Gradients.Keys.OrderBy(k => k), fast.Gradients.Keys.OrderBy(k => k));
            Assert.Contains(masked.Gradients.Values, g => g.abs().max().item<float>() > 0);
            foreach (var (name, gradient) in masked.Gradients)
                TensorAssert.Close(fast.Gradients[name], gradient, 1e-5, $"{what} grad {name}");
        }

        public static TheoryData<string, string> SharedCases() => DecoderParityTests.Cases();

        /// <summary>The shared transformers fixtures (llama, mistral, qwen2): every layer takes the fast path; their masks left out (both paths see every token).</summary>
        [Theory, MemberData(nameof(SharedCases))]
        public void FastAndMaskedPathsAgreeOnTheSharedFixtures(string modelName, string caseName)
        {
            using var scope = NewDisposeScope();
            string folder = Path.Combine(TestEnvironment.Fixtures, "models", modelName);
            var ids = Safetensors.Read(Path.Combine(folder, "reference.safetensors"))[caseName + ".input_ids"];   // [2, 7], float32 model
            using var model = CheckpointLoader.LoadDecoder(folder);
            Assert.Equal(model.Config.NumLayers, FastLayers(model.Config, ids.shape[1]));
            AssertPathsAgree(model, ids, $"{modelName}/{caseName}");
        }

        /// <summary>
        /// The decoder-family fixtures: full-attention layers take the fast path, windowed layers shorter than the
        /// sequence keep their window mask, Gemma's eager (soft-capped / rescaled) attention keeps the mask everywhere.
        /// </summary>
        [Theory, MemberData(nameof(DecoderFamilyParityTests.Cases), MemberType = typeof(DecoderFamilyParityTests))]
        public void FastAndMaskedPathsAgreeOnTheDecoderFamilyFixtures(string modelName, string caseName)
        {
            using var scope = NewDisposeScope();
            var ids = Safetensors.Read(Path.Combine(DecoderFamilyParityTests.Folder(modelName), "reference.safetensors"))[caseName + ".input_ids"];
            using var model = CheckpointLoader.LoadDecoder(DecoderFamilyParityTests.Folder(modelName));
            var c = model.Config;
            int fullLayers = Enumerable.Range(0, c.NumLayers).Count(i => c.WindowOf(i) is null || c.WindowOf(i) >= ids.shape[1]);
            Assert.Equal(c.EagerAttention ? 0 : fullLayers, FastLayers(c, ids.shape[1]));
            AssertPathsAgree(model, ids, $"{modelName}/{caseName}");
        }

        [Fact]
        public void ASlidingWindowThatCoversTheSequenceTakesTheFastPath()
        {
            // mistral_sw3: every layer has a window of 3 tokens; 3 tokens fit it, so plain causal attention is exact.
            using var scope = NewDisposeScope();
            var ids = Safetensors.Read(Path.Combine(DecoderFamilyParityTests.Folder("mistral_sw3"), "reference.safetensors"))["plain.input_ids"].narrow(1, 0, 3);
            using var model = CheckpointLoader.LoadDecoder(DecoderFamilyParityTests.Folder("mistral_sw3"));
            Assert.All(Enumerable.Range(0, model.Config.NumLayers), i => Assert.Equal(3, model.Config.WindowOf(i)));
            Assert.Equal(model.Config.NumLayers, FastLayers(model.Config, 3));
            Assert.Equal(0, FastLayers(model.Config, 4));
            AssertPathsAgree(model, ids, "mistral_sw3, 3 tokens");
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
