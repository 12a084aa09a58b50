using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using GraLoRA.Text;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>The written byte-level tokenizer: loads in HfTokenizer and transformers.js alike, and round-trips any text.</summary>
    public class ByteLevelTokenizerFactoryTests
    {
        static readonly string[] Texts =
        {
            "Hello, world!",
            "",
            "Café naïve — déjà vu, Straße",
            "中文测试：你好，世界！日本語、한국어",
            "Emoji 😀👍🏽👨‍👩‍👧‍👦 🇫🇷",
            "עברית: שלום; العربية: مرحبا",
            "def f(x):\n    if x > 0:\n\treturn x ** 2\n",
            "  spaces   and\ttabs\r\n\n",
            "<|im_start|>user\nhi<|im_end|>\n",
            "<|begin_of_text|>text<|end_of_text|>",
            "I'm 42 years, it's 3.14",
            "\u0000\u0001\u007F control \u200B zero width \uFEFF bom",
            "e\u0301 decomposed",
        };

        /// <summary>Random strings over all of Unicode (all planes, no lone surrogates), seeded.</summary>
        static IEnumerable<string> RandomTexts(int count, int seed)
        {
            var random = new Random(seed);
            for (int n = 0; n < count; n++)
            {
                var sb = new StringBuilder();
                int length = random.Next(0, 24);
                for (int i = 0; i < length; i++)
                {
                    int cp = random.Next(4) switch
                    {
                        0 => random.Next(0x20, 0x7F),
                        1 => random.Next(0, 0x800),
                        2 => random.Next(0x800, 0x10000),
                        _ => random.Next(0x10000, 0x110000),
                    };
                    if (cp >= 0xD800 && cp <= 0xDFFF) cp = ' ';
                    sb.Append(char.ConvertFromUtf32(cp));
                }
                yield return sb.ToString();
            }
        }

        [Fact]
        public void LayoutIsBytesThenSpecials()
        {
            using var dir = new TempDirectory();
            ByteLevelTokenizerFactory.Write(dir.Path, new ByteLevelTokenizerOptions());
            using var tokenizer = HfTokenizer.Load(dir.Path);
            Assert.Equal(256 + 5, tokenizer.VocabSize);
            for (int i = 0; i < ByteLevelTokenizerOptions.DefaultSpecialTokens.Count; i++)
            {
                Assert.Equal(256 + i, tokenizer.TokenToId(ByteLevelTokenizerOptions.DefaultSpecialTokens[i]));
                Assert.True(tokenizer.IsSpecial(256 + i));
            }
            Assert.Equal("A", tokenizer.IdToToken(65));
            Assert.Equal("Ġ", tokenizer.IdToToken(32));
            Assert.Equal("Ċ", tokenizer.IdToToken(10));
            Assert.False(tokenizer.IsSpecial(65));
            Assert.Equal(256, tokenizer.BosTokenId);
            Assert.Equal(new[] { 257 }, tokenizer.EosTokenIds);
            Assert.Equal(258, tokenizer.PadTokenId);
            // Every id below 256 is its byte.
            Assert.Equal(Encoding.UTF8.GetBytes("aé😀 \n").Select(b => (int)b), tokenizer.Encode("aé😀 \n", addSpecialTokens: false));
            Assert.Equal(new[] { 256, 104, 105 }, tokenizer.Encode("hi"));
            Assert.Equal(new[] { 259, 104, 260 }, tokenizer.Encode("<|im_start|>h<|im_end|>", addSpecialTokens: false));
        }

        [Theory]
        [InlineData(true, false, new[] { 256, 120 })]
        [InlineData(false, false, new[] { 120 })]
        [InlineData(true, true, new[] { 256, 120, 257 })]
        [InlineData(false, true, new[] { 120, 257 })]
        public void BosAndEosAreAddedWhenConfigured(bool addBos, bool addEos, int[] expected)
        {
            using var dir = new TempDirectory();
            ByteLevelTokenizerFactory.Write(dir.Path, new ByteLevelTokenizerOptions { AddBosToken = addBos, AddEosToken = addEos });
            using var tokenizer = HfTokenizer.Load(dir.Path);
            Assert.Equal(expected, tokenizer.Encode("x"));
            Assert.Equal(new[] { 120 }, tokenizer.Encode("x", addSpecialTokens: false));
            Assert.Equal(addBos, tokenizer.Config.AddBosToken);
            Assert.Equal(addEos, tokenizer.Config.AddEosToken);
        }

        [Fact]
        public void AnyUnicodeRoundTrips()
        {
            using var dir = new TempDirectory();
            ByteLevelTokenizerFactory.Write(dir.Path, new ByteLevelTokenizerOptions { Merges = new[] { ("t", "h"), ("th", "e"), (" ", "the") } });
            using var tokenizer = HfTokenizer.Load(dir.Path);
            var failures = new List<string>();
            foreach (string text in Texts.Concat(RandomTexts(300, seed: 1234)))
            {
                string kept = tokenizer.Decode(tokenizer.Encode(text, addSpecialTokens: false), skipSpecialTokens: false);
                if (kept != text) failures.Add($"{TokenizerReference.Show(text)} came back as {TokenizerReference.Show(kept)}");
                if (!text.Contains("<|"))
                {
                    string skipped = tokenizer.Decode(tokenizer.Encode(text));
                    if (skipped != text) failures.Add($"{TokenizerReference.Show(text)} with BOS came back as {TokenizerReference.Show(skipped)}");
                }
            }
            Assert.True(failures.Count == 0, string.Join("\n", failures));
        }

        [Fact]
        public void MergesBecomeTokensBeforeTheSpecials()
        {
            using var dir = new TempDirectory();
            ByteLevelTokenizerFactory.Write(dir.Path, new ByteLevelTokenizerOptions { Merges = new[] { ("t", "h"), ("th", "e"), (" ", "the") } });
            using var tokenizer = HfTokenizer.Load(dir.Path);
            Assert.Equal(256 + 3 + 5, tokenizer.VocabSize);
            Assert.Equal("th", tokenizer.IdToToken(256));
            Assert.Equal("the", tokenizer.IdToToken(257));
            Assert.Equal("Ġthe", tokenizer.IdToToken(258));
            Assert.Equal(259, tokenizer.BosTokenId);
            Assert.Equal(new[] { 257, 258, 32, 256 }, tokenizer.Encode("the the th", addSpecialTokens: false));
        }

        public static TheoryData<string> OptionSets => new() { "default", "merges", "no-bos", "eos-only", "custom" };

        static ByteLevelTokenizerOptions Options(string name) => name switch
        {
            "merges" => new ByteLevelTokenizerOptions { Merges = new[] { ("t", "h"), ("th", "e"), (" ", "the"), ("e", "r") } },
            "no-bos" => new ByteLevelTokenizerOptions { AddBosToken = false },
            "eos-only" => new ByteLevelTokenizerOptions { AddBosToken = false, AddEosToken = true },
            "custom" => new ByteLevelTokenizerOptions
            {
                SpecialTokens = new[] { "<s>", "</s>", "<pad>", "[SPECIAL WITH SPACE]" },
                BosToken = "<s>", EosToken = "</s>", PadToken = "<pad>", AddEosToken = true,
                ChatTemplate = "{% for m in messages %}{{ m['content'] }}{% endfor %}",
            },
            _ => new ByteLevelTokenizerOptions(),
        };

        [Theory, MemberData(nameof(OptionSets))]
        public void TransformersJsAgrees(string optionSet)
        {
            using var dir = new TempDirectory();
            ByteLevelTokenizerFactory.Write(dir.Path, Options(optionSet));
            using var tokenizer = HfTokenizer.Load(dir.Path);
            var texts = Texts.Concat(new[] { "<s>x</s> [SPECIAL WITH SPACE] there other" }).Concat(RandomTexts(40, seed: 99)).ToArray();
            var decodeInputs = texts.Select(t => tokenizer.Encode(t)).ToArray();
            var reference = TokenizerReference.Compute(dir.File("tokenizer.json"), dir.File("tokenizer_config.json"), texts, decodeInputs);
            var failures = new List<string>();
            for (int i = 0; i < texts.Length; i++)
            {
                int[] with = tokenizer.Encode(texts[i]), without = tokenizer.Encode(texts[i], addSpecialTokens: false);
                if (!with.SequenceEqual(reference.IdsWithSpecials[i]))
                    failures.Add($"{TokenizerReference.Show(texts[i])} with specials: ours {TokenizerReference.Show(with)}, transformers.js {TokenizerReference.Show(reference.IdsWithSpecials[i])}");
                if (!without.SequenceEqual(reference.IdsWithoutSpecials[i]))
                    failures.Add($"{TokenizerReference.Show(texts[i])} without specials: ours {TokenizerReference.Show(without)}, transformers.js {TokenizerReference.Show(reference.IdsWithoutSpecials[i])}");
                string skipping = tokenizer.Decode(decodeInputs[i], skipSpecialTokens: true), keeping = tokenizer.Decode(decodeInputs[i], skipSpecialTokens: false);
                if (skipping != reference.DecodedSkipping[i])
                    failures.Add($"decode skipping {TokenizerReference.Show(decodeInputs[i])}: ours {TokenizerReference.Show(skipping)}, transformers.js {TokenizerReference.Show(reference.DecodedSkipping[i])}");
                if (keeping != reference.DecodedKeeping[i])
                    failures.Add($"decode keeping {TokenizerReference.Show(decodeInputs[i])}: ours {TokenizerReference.Show(keeping)}, transformers.js {TokenizerReference.Show(reference.DecodedKeeping[i])}");
            }
            Assert.True(failures.Count == 0, $"{optionSet}: {failures.Count} differences:\n" + string.Join("\n", failures));
        }

        [Fact]
        public void ConfigCarriesTokensAndTemplate()
        {
            using var dir = new TempDirectory();
            ByteLevelTokenizerFactory.Write(dir.Path, Options("custom"));
            var config = TokenizerConfig.Load(dir.File("tokenizer_config.json"));
            Assert.Equal("<s>", config.BosToken);
            Assert.Equal("</s>", config.EosToken);
            Assert.Equal("<pad>", config.PadToken);
            Assert.Equal("{% for m in messages %}{{ m['content'] }}{% endfor %}", config.ChatTemplate);
            Assert.Equal(2048, config.ModelMaxLength);
            Assert.False(config.CleanUpTokenizationSpaces);
            Assert.Equal("PreTrainedTokenizerFast", config.TokenizerClass);
        }

        [Fact]
        public void RewritingReplacesFilesWithoutLeftovers()
        {
            using var dir = new TempDirectory();
            ByteLevelTokenizerFactory.Write(dir.Path, new ByteLevelTokenizerOptions());
            ByteLevelTokenizerFactory.Write(dir.Path, Options("custom"));
            Assert.Equal(new[] { "tokenizer.json", "tokenizer_config.json" }, System.IO.Directory.GetFiles(dir.Path).Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal).ToArray());
            using var tokenizer = HfTokenizer.Load(dir.Path);
            Assert.Equal(260, tokenizer.VocabSize);
            Assert.Equal("<s>", tokenizer.BosToken);
        }

        [Fact]
        public void FolderIsCreated()
        {
            using var dir = new TempDirectory();
            string nested = System.IO.Path.Combine(dir.Path, "a", "b");
            ByteLevelTokenizerFactory.Write(nested, new ByteLevelTokenizerOptions());
            using var tokenizer = HfTokenizer.Load(nested);
            Assert.Equal(261, tokenizer.VocabSize);
        }

        public static TheoryData<string, string> BadOptions => new()
        {
            { "bos-missing", "BosToken" },
            { "add-bos-null", "AddBosToken" },
            { "add-eos-null", "AddEosToken" },
            { "duplicate", "twice" },
            { "empty", "empty" },
            { "merge-unknown", "neither one byte" },
            { "merge-duplicate", "already a token" },
            { "length", "ModelMaxLength" },
        };

        [Theory, MemberData(nameof(BadOptions))]
        public void ContradictoryOptionsAreRefused(string name, string named)
        {
            var options = name switch
            {
                "bos-missing" => new ByteLevelTokenizerOptions { BosToken = "<bos>" },
                "add-bos-null" => new ByteLevelTokenizerOptions { BosToken = null },
                "add-eos-null" => new ByteLevelTokenizerOptions { EosToken = null, AddEosToken = true },
                "duplicate" => new ByteLevelTokenizerOptions { SpecialTokens = new[] { "<a>", "<a>" }, BosToken = "<a>", EosToken = null, PadToken = null },
                "empty" => new ByteLevelTokenizerOptions { SpecialTokens = new[] { "" }, BosToken = null, EosToken = null, PadToken = null, AddBosToken = false },
                "merge-unknown" => new ByteLevelTokenizerOptions { Merges = new[] { ("th", "e") } },
                "merge-duplicate" => new ByteLevelTokenizerOptions { Merges = new[] { ("a", "b"), ("a", "b") } },
                _ => new ByteLevelTokenizerOptions { ModelMaxLength = 0 },
            };
            using var dir = new TempDirectory();
            var ex = Assert.Throws<GraloraException>(() => ByteLevelTokenizerFactory.Write(dir.Path, options));
            Assert.Equal("InvalidTokenizerOptions", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidArgument, ex.Kind);
            Assert.Contains(named, ex.Message);
            Assert.Empty(System.IO.Directory.GetFiles(dir.Path));
        }

        [Fact]
        public void ByteAlphabetIsGpt2s()
        {
            Assert.Equal('!', ByteLevelTokenizerFactory.ByteToChar((byte)'!'));
            Assert.Equal('Ā', ByteLevelTokenizerFactory.ByteToChar(0));
            Assert.Equal('Ġ', ByteLevelTokenizerFactory.ByteToChar(32));
            Assert.Equal('ÿ', ByteLevelTokenizerFactory.ByteToChar(255));
            Assert.Equal('Ń', ByteLevelTokenizerFactory.ByteToChar(0xAD));
            Assert.Equal(256, Enumerable.Range(0, 256).Select(b => ByteLevelTokenizerFactory.ByteToChar((byte)b)).Distinct().Count());
        }
    }
}
