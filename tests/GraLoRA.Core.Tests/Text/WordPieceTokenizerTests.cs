using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA.Text;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>WordPiece tokenizers (BERT and RoBERTa styles) and sentence pairs against transformers.js.</summary>
    public sealed class WordPieceTokenizerTests : System.IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        static readonly string[] Texts = { "Hello, World!", "unbelievable offers", "Free money!!! click now", "ünïcödé text", "" };
        static readonly string[][] Pairs =
        {
            new[] { "Is this spam?", "Win a free prize now" },
            new[] { "the cat sat", "on the mat" },
            new[] { "", "empty first" },
        };

        [Theory]
        [InlineData("bert")]
        [InlineData("roberta")]
        public void SinglesAndPairsMatchTransformersJs(string style)
        {
            string folder = tmp.File(style);
            WordPieceTokenizerFactory.Write(folder, new WordPieceTokenizerOptions { Style = style, Words = new[] { "hello", "free", "money", "the", "cat", "spam", "prize" } });
            using var tokenizer = HfTokenizer.Load(folder);
            string input = JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["tokenizerJson"] = Path.Combine(folder, "tokenizer.json"),
                ["tokenizerConfig"] = Path.Combine(folder, "tokenizer_config.json"),
                ["texts"] = Texts,
                ["addSpecialTokens"] = true,
                ["pairs"] = Pairs,
            });
            using var doc = JsonDocument.Parse(ReferenceTools.RunNode("encode-tokenizer.mjs", input));
            int[][] Read(string name) => doc.RootElement.GetProperty(name).EnumerateArray().Select(a => a.EnumerateArray().Select(i => i.GetInt32()).ToArray()).ToArray();
            var ids = Read("ids");
            for (int i = 0; i < Texts.Length; i++)
                Assert.True(ids[i].SequenceEqual(tokenizer.Encode(Texts[i])), $"{style} '{Texts[i]}': {TokenizerReference.Show(tokenizer.Encode(Texts[i]))} vs {TokenizerReference.Show(ids[i])}");
            var pairIds = Read("pairIds");
            var pairTypes = Read("pairTypeIds");
            for (int i = 0; i < Pairs.Length; i++)
            {
                var (got, types) = tokenizer.EncodePair(Pairs[i][0], Pairs[i][1]);
                Assert.True(pairIds[i].SequenceEqual(got), $"{style} pair {i}: {TokenizerReference.Show(got)} vs {TokenizerReference.Show(pairIds[i])}");
                Assert.True(pairTypes[i].SequenceEqual(types), $"{style} pair {i} types: {TokenizerReference.Show(types)} vs {TokenizerReference.Show(pairTypes[i])}");
            }
        }

        [Fact]
        public void PairLayoutIsBertsByHand()
        {
            string folder = tmp.File("hand");
            WordPieceTokenizerFactory.Write(folder, new WordPieceTokenizerOptions { Words = new[] { "cat", "dog" } });
            using var tokenizer = HfTokenizer.Load(folder);
            var vocab = WordPieceTokenizerFactory.Vocabulary(new WordPieceTokenizerOptions { Words = new[] { "cat", "dog" } }).ToList();
            int Id(string t) => vocab.IndexOf(t);
            var (ids, types) = tokenizer.EncodePair("Cat", "dogs");
            // [CLS] cat [SEP] dog ##s [SEP]: lower-cased, "dogs" split into the word and a continuation.
            Assert.Equal(new[] { Id("[CLS]"), Id("cat"), Id("[SEP]"), Id("dog"), Id("##s"), Id("[SEP]") }, ids);
            Assert.Equal(new[] { 0, 0, 0, 1, 1, 1 }, types);
            Assert.Equal(new[] { Id("[CLS]"), Id("[UNK]"), Id("[SEP]") }, tokenizer.Encode("€"));
            Assert.Equal(0, tokenizer.PadTokenId);
        }
    }
}
