using System;
using System.IO;
using System.Linq;
using GraLoRA.Models;
using Xunit;
using Xunit.Abstractions;

namespace GraLoRA.Tests
{
    public sealed class GgufModelTests
    {
        readonly ITestOutputHelper _out;
        public GgufModelTests(ITestOutputHelper output) => _out = output;

        [Theory]
        [InlineData("llama", "float32")]
        [InlineData("qwen2", "float32")]
        [InlineData("qwen3", "float32")]
        [InlineData("mistral", "float32")]
        public void Probe(string arch, string dtype)
        {
            using var dir = new TempDirectory();
            string folder = TinyModelFactory.SaveWithTokenizer(dir.File("m"), new TinyModelOptions { Architecture = arch, Seed = 3 });
            using var model = BaseModel.Load(folder);
            string gguf = model.ExportGguf(dir.File("m.gguf"), dtype);
            var ids = model.Tokenizer!.Encode("Hello world, how are you?");
            var ours = model.Forward(new[] { ids }).Logits;
            using var cpp = LlamaCpp.Load(gguf);
            var theirs = cpp.Logits(ids);
            double maxDiff = 0, maxRef = 0;
            for (int p = 0; p < ids.Length; p++)
                for (int v = 0; v < theirs[p].Length; v++)
                {
                    maxDiff = Math.Max(maxDiff, Math.Abs(theirs[p][v] - ours[0][p][v]));
                    maxRef = Math.Max(maxRef, Math.Abs(ours[0][p][v]));
                }
            _out.WriteLine($"{arch} {dtype}: {maxDiff / maxRef:E3} tokens ours {string.Join(",", ids)} cpp {string.Join(",", cpp.Tokenize("Hello world, how are you?", true))}");
            Assert.True(maxDiff / maxRef < 1e-4, $"{maxDiff / maxRef}");
        }
    }
}
