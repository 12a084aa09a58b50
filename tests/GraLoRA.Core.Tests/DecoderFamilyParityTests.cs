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
    /// Logits against transformers' eager math for sliding windows, RoPE scaling types and the Gemma 2 / Gemma 3 /
    /// Phi-3 families. The references (Fixtures/decoders/*/reference.safetensors) were computed outside this code, by
    /// a plain-PyTorch transcription of transformers' modeling code (see Fixtures/README.md), itself checked to
    /// reproduce the shared fixtures of transformers 4.47.1 bit for bit.
    /// </summary>
    public class DecoderFamilyParityTests
    {
        internal static string Folder(string name) => Path.Combine(TestEnvironment.LocalFixtures, "decoders", name);

        public static readonly string[] Models =
        {
            "mistral_sw3", "qwen2_swa", "qwen3_layer_types", "llama_rope_linear", "llama_rope_dynamic", "qwen2_rope_yarn",
            "phi3_longrope", "gemma2", "gemma3_text",
        };

        /// <summary>Models whose RoPE does not change with the sequence length, so cached decoding equals one full forward.</summary>
        public static readonly string[] CacheStable = { "mistral_sw3", "qwen2_swa", "qwen3_layer_types", "llama_rope_linear", "qwen2_rope_yarn", "gemma2", "gemma3_text" };

        public static TheoryData<string, string> Cases()
        {
            var data = new TheoryData<string, string>();
            foreach (var model in Models)
                foreach (var c in new[] { "plain", "padded", "padded_posids", "packed", "short" })
                    data.Add(model, c);
            return data;
        }

        /// <summary>Relative max error over the positions where the mask is 1 (others are implementation-defined).</summary>
        internal static void AssertValidClose(Tensor actual, Tensor expected, Tensor? mask, string what)
        {
            var valid = mask is null ? ones(expected.shape[0], expected.shape[1], dtype: ScalarType.Bool) : mask.to(ScalarType.Bool);
            TensorAssert.Close(actual[valid], expected[valid], 1e-4, what);
        }

        [Theory, MemberData(nameof(Cases))]
        public void LogitsMatchTransformers(string modelName, string caseName)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(modelName), "reference.safetensors"));
            using var model = CheckpointLoader.LoadDecoder(Folder(modelName));
            reference.TryGetValue(caseName + ".attention_mask", out var mask);
            reference.TryGetValue(caseName + ".position_ids", out var positions);
            reference.TryGetValue(caseName + ".segment_ids", out var segments);
            var output = model.Forward(reference[caseName + ".input_ids"], mask, positions, hiddenStates: caseName == "plain", segmentIds: segments);
            AssertValidClose(output.Logits, reference[caseName + ".logits"], mask, $"{modelName}/{caseName} logits");
            if (caseName == "plain")
                for (int i = 0; i < output.HiddenStates.Count; i++)
                    AssertValidClose(output.HiddenStates[i], reference[$"plain.hidden_states.{i}"], null, $"{modelName} hidden_states.{i}");
        }

        [Theory]
        [InlineData("mistral_sw3"), InlineData("qwen3_layer_types"), InlineData("gemma2")]
        public void TrainingForwardWithCheckpointingMatchesOnPackedSegments(string modelName)
        {
            // The training path: train mode, activation checkpointing, packed samples with restarting positions.
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(modelName), "reference.safetensors"));
            using var model = CheckpointLoader.LoadDecoder(Folder(modelName));
            model.train();
            model.GradientCheckpointing = true;
            var logits = model.Forward(reference["packed.input_ids"], reference["packed.attention_mask"], reference["packed.position_ids"],
                                       segmentIds: reference["packed.segment_ids"]).Logits;
            AssertValidClose(logits.detach(), reference["packed.logits"], reference["packed.attention_mask"], modelName + " packed, training");
        }

        public static IEnumerable<object[]> CachedCases() =>
            CacheStable.SelectMany(m => new[] { new object[] { m, "plain" }, new object[] { m, "padded_posids" } });

        [Theory, MemberData(nameof(CachedCases))]
        public void CachedDecodingMatchesTheFullForward(string modelName, string caseName)
        {
            // Prefill 5 tokens, then one token a step through the key/value cache (as generation does): every step's
            // logits equal transformers' logits of the whole sequence at that position, windows included.
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(modelName), "reference.safetensors"));
            using var model = CheckpointLoader.LoadDecoder(Folder(modelName));
            var ids = reference[caseName + ".input_ids"];
            reference.TryGetValue(caseName + ".attention_mask", out var mask);
            reference.TryGetValue(caseName + ".position_ids", out var positions);
            long b = ids.shape[0], l = ids.shape[1];
            using var cache = new KeyValueCache(model, b, l);
            var steps = new List<Tensor>();
            for (long start = 0; start < l;)
            {
                long n = start == 0 ? 5 : 1;
                steps.Add(model.Forward(ids.narrow(1, start, n), mask?.narrow(1, 0, start + n), positions?.narrow(1, start, n), cache: cache).Logits);
                start += n;
            }
            AssertValidClose(cat(steps, 1), reference[caseName + ".logits"], mask, $"{modelName}/{caseName} cached");
        }

        [Theory]
        [InlineData("llama_rope_linear"), InlineData("llama_rope_dynamic"), InlineData("qwen2_rope_yarn"), InlineData("phi3_longrope"), InlineData("gemma3_text")]
        public void InverseFrequenciesAndAttentionFactorMatchTransformers(string modelName)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(modelName), "reference.safetensors"));
            var config = DecoderConfig.Load(Path.Combine(Folder(modelName), "config.json"));
            var rope = new RotaryEmbedding(config);
            TensorAssert.Close(rope.InvFreq, reference["rope.inv_freq"], 1e-6, modelName + " inv_freq");
            Assert.Equal(reference["rope.attention_factor"].item<float>(), rope.AttentionScaling, 6);
            if (config.LocalRopeTheta is { } local)
                TensorAssert.Close(new RotaryEmbedding(config, local, null).InvFreq, reference["rope_local.inv_freq"], 1e-6, modelName + " local inv_freq");
        }

        [Fact]
        public void RopeFactorsFollowThePublishedFormulas()
        {
            // By hand from the papers' formulas, as transformers applies them: YaRN's attention factor 0.1·ln(s) + 1;
            // LongRoPE's √(1 + ln(s) / ln(original)) with s = max / original; linear divides every frequency by s.
            using var scope = NewDisposeScope();
            var yarn = DecoderConfig.Load(Path.Combine(Folder("qwen2_rope_yarn"), "config.json"));
            Assert.Equal(0.1 * System.Math.Log(4.0) + 1, new RotaryEmbedding(yarn).AttentionScaling, 12);
            var phi3 = DecoderConfig.Load(Path.Combine(Folder("phi3_longrope"), "config.json"));
            Assert.Equal(System.Math.Sqrt(1 + System.Math.Log(32.0 / 8) / System.Math.Log(8)), new RotaryEmbedding(phi3).AttentionScaling, 12);
            var linear = DecoderConfig.Load(Path.Combine(Folder("llama_rope_linear"), "config.json"));
            var plain = new RotaryEmbedding(linear with { RopeScaling = null });
            TensorAssert.Close(new RotaryEmbedding(linear).InvFreq, plain.InvFreq / 2.5, 1e-7, "linear");
            // Dynamic NTK: past max_position_embeddings (8) the base grows to θ·((s·L/8) − (s − 1))^(d/(d−2)).
            var dynamic = DecoderConfig.Load(Path.Combine(Folder("llama_rope_dynamic"), "config.json"));
            var ntk = new RotaryEmbedding(dynamic);
            ntk.Compute(arange(12L).unsqueeze(0), ScalarType.Float32);
            double grown = 10000 * System.Math.Pow(3.0 * 12 / 8 - 2, 16.0 / 14);
            TensorAssert.Close(ntk.InvFreq, 1.0f / pow(grown, arange(0, 16, 2, dtype: ScalarType.Float32) / 16), 1e-6, "dynamic");
        }

        [Fact]
        public void LayerWindowsFollowEachFamilysRule()
        {
            // transformers' rules: Qwen2 windows layers from max_window_layers on; layer_types overrides; Gemma 2
            // alternates starting with a local layer; Gemma 3 makes every sliding_window_pattern-th layer global.
            int?[] Windows(string name)
            {
                var c = DecoderConfig.Load(Path.Combine(Folder(name), "config.json"));
                return Enumerable.Range(0, c.NumLayers).Select(c.WindowOf).ToArray();
            }
            Assert.Equal(new int?[] { 3, 3 }, Windows("mistral_sw3"));
            Assert.Equal(new int?[] { null, 2, 2 }, Windows("qwen2_swa"));
            Assert.Equal(new int?[] { 4, null, 4 }, Windows("qwen3_layer_types"));
            Assert.Equal(new int?[] { 3, null, 3, null }, Windows("gemma2"));
            Assert.Equal(new int?[] { 3, 3, null, 3 }, Windows("gemma3_text"));
            Assert.Equal(new int?[] { null, null }, Windows("llama_rope_linear"));
        }

        [Fact]
        public void ExplicitMaskIsNeededExactlyWhenPlainCausalAttentionWouldDiffer()
        {
            using var scope = NewDisposeScope();
            var noPadding = ones(2, 6, dtype: ScalarType.Int64);
            var padding = noPadding.clone(); padding[0, 0] = 0;
            Assert.False(AttentionMask.NeedsExplicitMask(0, 6, null, null, null, false));
            Assert.False(AttentionMask.NeedsExplicitMask(0, 6, noPadding, null, null, false));
            Assert.False(AttentionMask.NeedsExplicitMask(0, 6, null, null, 6, false));           // the window covers every earlier token
            Assert.True(AttentionMask.NeedsExplicitMask(0, 6, null, null, 5, false));
            Assert.True(AttentionMask.NeedsExplicitMask(0, 6, padding, null, null, false));
            Assert.True(AttentionMask.NeedsExplicitMask(0, 6, null, ones(2, 6, dtype: ScalarType.Int64), null, false));
            Assert.True(AttentionMask.NeedsExplicitMask(3, 1, null, null, null, false));
            Assert.True(AttentionMask.NeedsExplicitMask(0, 6, null, null, null, true));           // eager (soft-capped) attention applies the mask itself
            // and where no explicit mask is needed, the built one is exactly the causal triangle
            var built = AttentionMask.Build(1, 0, 6, null, null, 6, ScalarType.Float32, CPU);
            Assert.True(built.eq(0).squeeze().eq(ones(6, 6, dtype: ScalarType.Bool).tril()).all().item<bool>());
        }
    }
}
