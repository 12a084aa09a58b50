using System;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.IO;
using GraLoRA.Models;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// GraLoRA adapters PEFT saved (shared/fixtures/gralora) deployed to llama.cpp: merged into a GGUF model, and as a
    /// GGUF LoRA adapter on the base model's GGUF; both must give PEFT's logits with the adapter active.
    /// </summary>
    public sealed class GgufAdapterTests : IDisposable
    {
        readonly ITestOutputHelper _out;
        readonly TempDirectory tmp = new();
        public GgufAdapterTests(ITestOutputHelper output) => _out = output;
        public void Dispose() => tmp.Dispose();

        [Theory]
        [InlineData("gralora/llama_r8_k2", "llama")]
        [InlineData("gralora/qwen2_r8_k2_h4", "qwen2")]
        public void MergedModelAndGgufLoraGivePeftLogits(string adapter, string arch)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(GgufFixtures.Folder(adapter), "reference.safetensors"));
            var baseReference = Safetensors.Read(Path.Combine(GgufFixtures.Folder("models/" + arch), "reference.safetensors"));
            string folder = GgufFixtures.ReferenceModelWithTokenizer(tmp, arch);
            using var model = BaseModel.Load(folder);
            string baseGguf = model.ExportGguf(tmp.File("base.gguf"));
            model.LoadAdapter(GgufFixtures.Folder(adapter));
            string merged = model.ExportGguf(tmp.File("merged.gguf"));
            using var conversion = model.ConvertToLora(AdapterConfig.DefaultName);
            string lora = model.SaveLora(conversion, tmp.File("adapter.gguf"), gguf: true);

            var ids = reference["plain.input_ids"];
            using (var cpp = LlamaCpp.Load(merged))
                for (int row = 0; row < ids.shape[0]; row++)
                    AssertClose(cpp.Logits(GgufFixtures.Row(ids, row)), reference["plain.logits"][row], $"merged row {row}");
            using (var cpp = LlamaCpp.Load(baseGguf))
            {
                var adapterFile = cpp.LoadLora(lora);
                for (int row = 0; row < ids.shape[0]; row++)
                {
                    AssertClose(cpp.Logits(GgufFixtures.Row(ids, row), adapterFile), reference["plain.logits"][row], $"--lora row {row}");
                    AssertClose(cpp.Logits(GgufFixtures.Row(ids, row)), baseReference["plain.logits"][row], $"base row {row}");
                }
            }
        }

        /// <summary>
        /// A truncated conversion has different ranks per layer; llama.cpp scales each by one alpha over that layer's rank,
        /// so the file folds the difference into B. llama.cpp with it must compute what the PEFT-format twin computes here.
        /// </summary>
        [Fact]
        public void TruncatedGgufLoraMatchesThePeftLora()
        {
            using var scope = NewDisposeScope();
            string folder = GgufFixtures.ReferenceModelWithTokenizer(tmp, "llama");
            using var model = BaseModel.Load(folder);
            string baseGguf = model.ExportGguf(tmp.File("base.gguf"));
            model.LoadAdapter(GgufFixtures.Folder("gralora/llama_r8_k2"));
            using var conversion = model.ConvertToLora(AdapterConfig.DefaultName, new LoraConversionOptions { Energy = 0.9 });
            Assert.True(conversion.Layers.Select(l => l.Rank).Distinct().Count() > 1);
            string lora = model.SaveLora(conversion, tmp.File("adapter.gguf"), gguf: true);
            string peft = model.SaveLora(conversion, tmp.File("peft"));

            using var loraModel = BaseModel.Load(folder);
            loraModel.LoadAdapter(peft);
            var ids = loraModel.Tokenizer!.Encode("GraLoRA on llama.cpp");
            var expected = loraModel.Forward(new[] { ids }).LogitsTensor[0];
            using var cpp = LlamaCpp.Load(baseGguf);
            AssertClose(cpp.Logits(ids, cpp.LoadLora(lora)), expected, "truncated --lora");
        }

        void AssertClose(float[][] got, Tensor want, string what)
        {
            double error = GgufFixtures.RelativeError(got, want);
            _out.WriteLine($"{what}: relative error {error:E2}");
            Assert.True(error <= 1e-4, $"{what}: relative error {error:E3}");
        }
    }
}
