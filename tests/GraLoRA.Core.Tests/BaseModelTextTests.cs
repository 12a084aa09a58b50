using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Generation;
using GraLoRA.Models;
using GraLoRA.Text;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>Text in, text out: the tiny factory model with its byte-level tokenizer and chat template.</summary>
    public sealed class BaseModelTextTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        readonly BaseModel model;

        public BaseModelTextTests()
        {
            model = BaseModel.Load(TinyModelFactory.SaveWithTokenizer(tmp.File("tiny"), new TinyModelOptions { Architecture = "llama", Seed = 21 }));
        }

        public void Dispose()
        {
            model.Dispose();
            tmp.Dispose();
        }

        [Fact]
        public void FactoryFolderCarriesTokenizerSpecialIdsAndDefaults()
        {
            var tokenizer = model.Tokenizer!;
            Assert.Equal(261, model.Config.VocabSize);
            Assert.Equal(256, tokenizer.BosTokenId);
            Assert.Equal(new[] { 257, 260 }, model.GenerationDefaults.EosTokenIds);
            var effective = model.EffectiveGenerationOptions();
            Assert.Equal(tokenizer.TokenToId("<|pad|>"), effective.PadTokenId);
            Assert.Equal(new[] { 256 }.Concat(System.Text.Encoding.UTF8.GetBytes("héllo").Select(b => (int)b)), tokenizer.Encode("héllo"));   // BOS, then one id per byte
        }

        [Fact]
        public void GenerateEqualsTokenLevelGenerationOnTheEncodedPrompt()
        {
            var options = new GenerationOptions { MaxNewTokens = 10 };
            var result = model.Generate(new[] { "Hello, world" }, options)[0];
            var ids = model.Tokenizer!.Encode("Hello, world");
            Assert.Equal(ids, result.PromptTokens);
            var expected = TextGenerator.Generate(model.Module, new[] { ids }, model.EffectiveGenerationOptions(options))[0];
            Assert.Equal(expected.Tokens, result.Tokens);
            Assert.Equal(model.Tokenizer.Decode(expected.Tokens), result.Text);
        }

        [Fact]
        public void StreamedPiecesJoinToTheDecodedText()
        {
            var pieces = new List<(int, string)>();
            var results = model.Generate(new[] { "abc", "a longer prompt" }, new GenerationOptions { MaxNewTokens = 24, DoSample = true, Seed = 3 },
                (i, text) => pieces.Add((i, text)));
            for (int i = 0; i < 2; i++)
            {
                string streamed = string.Concat(pieces.Where(p => p.Item1 == i).Select(p => p.Item2));
                Assert.Equal(model.Tokenizer!.Decode(results[i].Tokens, skipSpecialTokens: true, cleanUpTokenizationSpaces: false), streamed);
            }
            Assert.DoesNotContain(pieces, p => p.Item2.Length == 0);
        }

        [Fact]
        public void ChatRendersTheTemplateAndEncodesWithoutASecondBos()
        {
            var messages = new[] { new ChatMessage("system", "Be brief."), new ChatMessage("user", "Hi ☃") };
            string prompt = model.ApplyChatTemplate(messages);
            Assert.Equal("<|begin_of_text|><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi ☃<|im_end|>\n<|im_start|>assistant\n", prompt);
            var result = model.Chat(messages, new GenerationOptions { MaxNewTokens = 4 });
            Assert.Equal(prompt, result.Prompt);
            Assert.Equal(256, result.PromptTokens[0]);
            Assert.Equal(1, result.PromptTokens.Count(t => t == 256));
            Assert.Equal(model.Tokenizer!.Encode(prompt, addSpecialTokens: false), result.PromptTokens);
        }

        [Fact]
        public void ChatPassesItsCancellationToTheTemplate()
        {
            // Cancelled before it starts: the template never renders, so nothing is generated (with the token ignored,
            // rendering would succeed and generation would return a Cancelled result instead of throwing).
            using var cancel = new System.Threading.CancellationTokenSource();
            cancel.Cancel();
            var messages = new[] { new ChatMessage("user", "Hi") };
            Assert.Throws<OperationCanceledException>(() => model.Chat(messages, new GenerationOptions { MaxNewTokens = 4 }, cancellation: cancel.Token));
            Assert.Throws<OperationCanceledException>(() => model.ApplyChatTemplate(messages, cancellation: cancel.Token));
        }

        [Fact]
        public void StopStringsSeeTheGeneratedText()
        {
            var free = model.Generate(new[] { "xyz" }, new GenerationOptions { MaxNewTokens = 16 })[0];
            string text = model.Tokenizer!.Decode(free.Tokens, skipSpecialTokens: false);
            string stop = text.Substring(Math.Min(3, text.Length - 1), 1);
            var stopped = model.Generate(new[] { "xyz" }, new GenerationOptions { MaxNewTokens = 16, StopStrings = new[] { stop } })[0];
            Assert.Equal(FinishReason.StopString, stopped.FinishReason);
            Assert.Contains(stop, model.Tokenizer.Decode(stopped.Tokens, skipSpecialTokens: false));
            Assert.True(stopped.Tokens.Length <= free.Tokens.Length);
        }

        [Fact]
        public void MissingTokenizerAndMismatchedTokenizerAreNamed()
        {
            using var bare = BaseModel.Load(TinyModelFactory.Save(tmp.File("bare"), new TinyModelOptions()));
            Assert.Null(bare.Tokenizer);
            Assert.Equal("TokenizerNotFound", Assert.Throws<GraloraException>(() => bare.Generate(new[] { "x" })).ErrorId);

            // A 261-token tokenizer beside a 256-row embedding cannot belong to it.
            string folder = TinyModelFactory.Save(tmp.File("mismatch"), new TinyModelOptions(), staging => ByteLevelTokenizerFactory.Write(staging, new ByteLevelTokenizerOptions()));
            var ex = Assert.Throws<GraloraException>(() => BaseModel.Load(folder));
            Assert.Equal("TokenizerVocabularyMismatch", ex.ErrorId);
            Assert.Contains("260", ex.Message);
        }

        [Fact]
        public void ChatWithoutATemplateIsNamed()
        {
            string folder = TinyModelFactory.Save(tmp.File("notemplate"), new TinyModelOptions { VocabSize = 261 },
                staging => ByteLevelTokenizerFactory.Write(staging, new ByteLevelTokenizerOptions()));
            using var plain = BaseModel.Load(folder);
            var ex = Assert.Throws<GraloraException>(() => plain.Chat(new[] { new ChatMessage("user", "Hi") }));
            Assert.Equal("ChatTemplateNotFound", ex.ErrorId);
        }
    }
}
