using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Text;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>TokenStreamDecoder on the byte-level tokenizer, where every non-ASCII character spans several tokens.</summary>
    public sealed class TokenizerStreamDecoderTests : IDisposable
    {
        readonly TempDirectory _dir = new();
        readonly HfTokenizer _tokenizer;

        public TokenizerStreamDecoderTests()
        {
            ByteLevelTokenizerFactory.Write(_dir.Path, new ByteLevelTokenizerOptions());
            _tokenizer = HfTokenizer.Load(_dir.Path);
        }

        public void Dispose()
        {
            _tokenizer.Dispose();
            _dir.Dispose();
        }

        [Theory]
        [InlineData("plain ascii text")]
        [InlineData("Café naïve déjà vu")]
        [InlineData("中文测试：你好，世界！")]
        [InlineData("Emoji 😀👍🏽👨‍👩‍👧‍👦 🇫🇷 end")]
        [InlineData("עברית ومرحبا")]
        [InlineData("<|im_start|>user\n😀<|im_end|>")]
        public void OneIdAtATimeReproducesTheFullDecode(string text)
        {
            foreach (bool skip in new[] { true, false })
            {
                int[] ids = _tokenizer.Encode(text);
                var stream = _tokenizer.CreateStreamDecoder(skip);
                var pieces = ids.Select(stream.Push).ToList();
                string last = stream.Flush();
                Assert.Equal("", last);
                Assert.Equal(_tokenizer.Decode(ids, skip), string.Concat(pieces));
                Assert.Equal(string.Concat(pieces), stream.Text);
                Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
                Assert.Equal(ids.Length, stream.Count);
            }
        }

        [Fact]
        public void MultiByteCharacterWaitsForItsLastByte()
        {
            var stream = new TokenStreamDecoder(_tokenizer);
            int[] ids = _tokenizer.Encode("a😀b", addSpecialTokens: false);
            Assert.Equal(6, ids.Length);
            var pieces = ids.Select(stream.Push).ToArray();
            Assert.Equal(new[] { "a", "", "", "", "😀", "b" }, pieces);
        }

        [Fact]
        public void UpdateTakesTheGrowingSequence()
        {
            int[] ids = _tokenizer.Encode("héllo 世界 🎉!");
            var stream = _tokenizer.CreateStreamDecoder();
            var seen = new List<int>();
            var pieces = new List<string>();
            foreach (int id in ids)
            {
                seen.Add(id);
                pieces.Add(stream.Update(seen));
            }
            Assert.Equal("", stream.Update(seen));
            Assert.Equal("héllo 世界 🎉!", string.Concat(pieces));
            var ex = Assert.Throws<GraloraException>(() => stream.Update(seen.Take(2).ToList()));
            Assert.Equal("InvalidTokenId", ex.ErrorId);
        }

        [Fact]
        public void SpecialTokensAreSkippedOrKept()
        {
            int[] ids = _tokenizer.Encode("<|im_start|>hi<|im_end|>");
            var skipping = _tokenizer.CreateStreamDecoder(skipSpecialTokens: true);
            Assert.Equal("hi", string.Concat(ids.Select(skipping.Push)));
            var keeping = _tokenizer.CreateStreamDecoder(skipSpecialTokens: false);
            Assert.Equal(new[] { "<|begin_of_text|>", "<|im_start|>", "h", "i", "<|im_end|>" }, ids.Select(keeping.Push).ToArray());
        }

        [Fact]
        public void FlushReleasesAnIncompleteCharacter()
        {
            int[] ids = _tokenizer.Encode("ok😀", addSpecialTokens: false);
            var stream = _tokenizer.CreateStreamDecoder();
            string pushed = string.Concat(ids.Take(ids.Length - 1).Select(stream.Push));
            Assert.Equal("ok", pushed);
            string rest = stream.Flush();
            Assert.Equal(_tokenizer.Decode(ids.Take(ids.Length - 1)), pushed + rest);
            Assert.Contains('\uFFFD', rest);
        }

        [Fact]
        public void ResetStartsOver()
        {
            var stream = _tokenizer.CreateStreamDecoder();
            foreach (int id in _tokenizer.Encode("first")) stream.Push(id);
            stream.Reset();
            Assert.Equal(0, stream.Count);
            Assert.Equal("", stream.Text);
            Assert.Equal("second", string.Concat(_tokenizer.Encode("second").Select(stream.Push)));
        }
    }
}
