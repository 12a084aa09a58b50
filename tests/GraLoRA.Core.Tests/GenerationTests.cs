using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Generation;
using GraLoRA.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>Key/value cache and generation on tiny random decoders of every architecture.</summary>
    public class GenerationTests
    {
        public static TheoryData<string> Architectures() => new() { "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3" };

        static DecoderForCausalLM Tiny(string architecture, long seed = 1) =>
            TinyModelFactory.Create(new TinyModelOptions { Architecture = architecture, Seed = seed });

        static readonly int[][] Prompts = { new[] { 5, 17, 99, 3, 42, 7 }, new[] { 200, 11, 64 } };

        [Theory, MemberData(nameof(Architectures))]
        public void CachedStepsGiveTheLogitsOfAFullPass(string architecture)
        {
            using var scope = NewDisposeScope();
            using var model = Tiny(architecture);
            // Two sequences of 10, the second left-padded by 3; prefill 6 positions, then 4 single steps.
            var ids = randint(0, 256, new long[] { 2, 10 });
            var mask = ones(2, 10, dtype: ScalarType.Int64);
            mask[1, TensorIndex.Slice(0, 3)] = tensor(0L);
            var positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1);
            using var _ = no_grad();
            var full = model.Forward(ids, mask, positions).Logits;

            using var cache = new KeyValueCache(model, 2, 10);
            var pieces = new List<Tensor> { model.Forward(ids.narrow(1, 0, 6), mask.narrow(1, 0, 6), positions.narrow(1, 0, 6), cache: cache).Logits };
            for (int t = 6; t < 10; t++)
                pieces.Add(model.Forward(ids.narrow(1, t, 1), mask.narrow(1, 0, t + 1), positions.narrow(1, t, 1), cache: cache).Logits);
            Assert.Equal(10, cache.Length);
            var cached = cat(pieces.ToArray(), 1);
            var valid = mask.to(ScalarType.Bool);
            TensorAssert.Close(cached[valid], full[valid], 1e-5, architecture + " cached logits");
        }

        [Fact]
        public void CacheRefusesToOverflow()
        {
            using var model = Tiny("llama");
            using var cache = new KeyValueCache(model, 1, 4);
            using var _ = no_grad();
            var ex = Assert.Throws<GraloraException>(() => model.Forward(zeros(1, 5, dtype: ScalarType.Int64), cache: cache));
            Assert.Equal("KeyValueCacheTooSmall", ex.ErrorId);
        }

        /// <summary>The reference: re-run the whole sequence and take the argmax, token by token.</summary>
        static int[] ArgmaxStepByStep(DecoderForCausalLM model, int[] prompt, int steps)
        {
            var tokens = prompt.ToList();
            using var _ = no_grad();
            for (int i = 0; i < steps; i++)
            {
                using var scope = NewDisposeScope();
                var logits = model.Forward(tensor(tokens.Select(t => (long)t).ToArray(), new long[] { 1, tokens.Count })).Logits;
                tokens.Add((int)logits[0, -1].argmax().item<long>());
            }
            return tokens.Skip(prompt.Length).ToArray();
        }

        [Theory, MemberData(nameof(Architectures))]
        public void GreedyWithAndWithoutCacheEqualsStepwiseArgmax(string architecture)
        {
            using var model = Tiny(architecture);
            var expected = ArgmaxStepByStep(model, Prompts[0], 12);
            var cached = TextGenerator.Generate(model, new[] { Prompts[0] }, new GenerationOptions { MaxNewTokens = 12 });
            var uncached = TextGenerator.Generate(model, new[] { Prompts[0] }, new GenerationOptions { MaxNewTokens = 12, UseCache = false });
            Assert.Equal(expected, cached[0].Tokens);
            Assert.Equal(expected, uncached[0].Tokens);
            Assert.Equal(FinishReason.Length, cached[0].FinishReason);
        }

        [Theory, MemberData(nameof(Architectures))]
        public void LeftPaddedBatchMatchesEachPromptAlone(string architecture)
        {
            using var model = Tiny(architecture);
            var batch = TextGenerator.Generate(model, Prompts, new GenerationOptions { MaxNewTokens = 8 });
            for (int i = 0; i < Prompts.Length; i++)
                Assert.Equal(ArgmaxStepByStep(model, Prompts[i], 8), batch[i].Tokens);
        }

        [Fact]
        public void EosStopsOneSequenceAndPadsIt()
        {
            using var model = Tiny("llama");
            var free = TextGenerator.Generate(model, Prompts, new GenerationOptions { MaxNewTokens = 6 });
            int eos = free[0].Tokens[2];   // the first prompt's third token becomes EOS
            var stopped = TextGenerator.Generate(model, Prompts, new GenerationOptions { MaxNewTokens = 6, EosTokenIds = new[] { eos } });
            Assert.Equal(free[0].Tokens.Take(Array.IndexOf(free[0].Tokens, eos) + 1), stopped[0].Tokens);
            Assert.Equal(FinishReason.EndOfSequence, stopped[0].FinishReason);
            int cut = Array.IndexOf(free[1].Tokens, eos);
            Assert.Equal(cut < 0 ? free[1].Tokens : free[1].Tokens.Take(cut + 1), stopped[1].Tokens);
        }

        [Fact]
        public void StopStringEndsTheSequenceAndStreamingSeesEveryToken()
        {
            using var model = Tiny("qwen2");
            static string Decode(IReadOnlyList<int> ids) => string.Concat(ids.Select(i => $"<{i}>"));
            var free = TextGenerator.Generate(model, new[] { Prompts[0] }, new GenerationOptions { MaxNewTokens = 8 });
            string stop = $"<{free[0].Tokens[3]}>";
            var streamed = new List<(int, int)>();
            var stopped = TextGenerator.Generate(model, new[] { Prompts[0] }, new GenerationOptions { MaxNewTokens = 8, StopStrings = new[] { stop } },
                Decode, (i, t) => streamed.Add((i, t)));
            int first = Array.FindIndex(free[0].Tokens, t => $"<{t}>" == stop);
            Assert.Equal(free[0].Tokens.Take(first + 1), stopped[0].Tokens);
            Assert.Equal(FinishReason.StopString, stopped[0].FinishReason);
            Assert.Equal(stopped[0].Tokens.Select(t => (0, t)), streamed);
        }

        [Fact]
        public void SamplingIsReproducibleWithASeedAndVariesWithout()
        {
            using var model = Tiny("llama");
            var options = new GenerationOptions { MaxNewTokens = 24, DoSample = true, Temperature = 1.5, Seed = 7 };
            var a = TextGenerator.Generate(model, Prompts, options);
            var b = TextGenerator.Generate(model, Prompts, options);
            var c = TextGenerator.Generate(model, Prompts, options with { Seed = 8 });
            Assert.Equal(a[0].Tokens, b[0].Tokens);
            Assert.Equal(a[1].Tokens, b[1].Tokens);
            Assert.NotEqual(a[0].Tokens, c[0].Tokens);
        }

        [Fact]
        public void TopKOfOneAndTinyTopPAreGreedy()
        {
            using var model = Tiny("mistral");
            var greedy = TextGenerator.Generate(model, Prompts, new GenerationOptions { MaxNewTokens = 10 });
            var topK = TextGenerator.Generate(model, Prompts, new GenerationOptions { MaxNewTokens = 10, DoSample = true, TopK = 1, Seed = 3 });
            var topP = TextGenerator.Generate(model, Prompts, new GenerationOptions { MaxNewTokens = 10, DoSample = true, TopP = 1e-6, Seed = 3 });
            for (int i = 0; i < Prompts.Length; i++)
            {
                Assert.Equal(greedy[i].Tokens, topK[i].Tokens);
                Assert.Equal(greedy[i].Tokens, topP[i].Tokens);
            }
        }

        [Fact]
        public void RepetitionPenaltyFollowsCtrl()
        {
            using var scope = NewDisposeScope();
            var scores = tensor(new float[] { 2f, -1f, 0.5f, -3f, 4f }).unsqueeze(0);
            var previous = tensor(new long[] { 0, 1, 1 }).unsqueeze(0);
            var penalised = LogitsProcessing.RepetitionPenalty(scores, previous, 2.0);
            var expected = scores.clone();
            expected[0, 0] = tensor(2f / 2);     // positive: divided
            expected[0, 1] = tensor(-1f * 2);    // negative: multiplied (once, even though seen twice)
            Assert.True(TensorAssert.Identical(penalised, expected));
        }

        [Fact]
        public void TopPKeepsTheSmallestNucleus()
        {
            using var scope = NewDisposeScope();
            var probs = tensor(new float[] { 0.5f, 0.3f, 0.15f, 0.05f }).unsqueeze(0);
            var filtered = LogitsProcessing.TopP(probs.log(), 0.75);
            var kept = filtered.isfinite()[0].data<bool>().ToArray();
            Assert.Equal(new[] { true, true, false, false }, kept);       // 0.5 + 0.3 reaches 0.75
            var topK = LogitsProcessing.TopK(probs.log(), 3).isfinite()[0].data<bool>().ToArray();
            Assert.Equal(new[] { true, true, true, false }, topK);
        }

        [Fact]
        public void RepetitionPenaltyChangesGreedyOutputTowardsNewTokens()
        {
            using var model = Tiny("llama");
            var plain = TextGenerator.Generate(model, new[] { Prompts[0] }, new GenerationOptions { MaxNewTokens = 30 });
            var penalised = TextGenerator.Generate(model, new[] { Prompts[0] }, new GenerationOptions { MaxNewTokens = 30, RepetitionPenalty = 5.0 });
            int Repeats(int[] tokens) => tokens.Length - tokens.Distinct().Count();
            Assert.True(Repeats(plain[0].Tokens) > 0, "precondition: greedy decoding of a random model repeats itself");
            Assert.True(Repeats(penalised[0].Tokens) < Repeats(plain[0].Tokens),
                $"penalty should reduce repeats: {Repeats(plain[0].Tokens)} → {Repeats(penalised[0].Tokens)}");
        }

        public static TheoryData<GenerationOptions, string> BadOptions() => new()
        {
            { new GenerationOptions { MaxNewTokens = 0 }, "MaxNewTokens" },
            { new GenerationOptions { Temperature = 0 }, "Temperature" },
            { new GenerationOptions { TopP = 0 }, "TopP" },
            { new GenerationOptions { TopP = 1.5 }, "TopP" },
            { new GenerationOptions { TopK = -1 }, "TopK" },
            { new GenerationOptions { RepetitionPenalty = 0 }, "RepetitionPenalty" },
            { new GenerationOptions { EosTokenIds = new[] { 9999 } }, "9999" },
            { new GenerationOptions { StopStrings = new[] { "" } }, "StopStrings" },
        };

        [Theory, MemberData(nameof(BadOptions))]
        public void BadOptionsAreNamed(GenerationOptions options, string named)
        {
            using var model = Tiny("llama");
            var ex = Assert.Throws<GraloraException>(() => TextGenerator.Generate(model, Prompts, options));
            Assert.Equal("InvalidGenerationOption", ex.ErrorId);
            Assert.Contains(named, ex.Message);
        }

        [Fact]
        public void BadPromptsAreNamed()
        {
            using var model = Tiny("llama");
            Assert.Equal("EmptyPrompt", Assert.Throws<GraloraException>(() => TextGenerator.Generate(model, new[] { Array.Empty<int>() }, new GenerationOptions())).ErrorId);
            var range = Assert.Throws<GraloraException>(() => TextGenerator.Generate(model, new[] { new[] { 1, 300 } }, new GenerationOptions()));
            Assert.Contains("300", range.Message);
            Assert.Equal("StopStringsNeedTokenizer", Assert.Throws<GraloraException>(() =>
                TextGenerator.Generate(model, Prompts, new GenerationOptions { StopStrings = new[] { "x" } })).ErrorId);
        }

        [Fact]
        public void GenerationRestoresTrainingMode()
        {
            using var model = Tiny("llama");
            model.train();
            TextGenerator.Generate(model, Prompts, new GenerationOptions { MaxNewTokens = 2 });
            Assert.True(model.training);
        }
    }
}
