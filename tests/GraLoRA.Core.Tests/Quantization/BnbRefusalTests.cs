using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Quantization;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests.Quantization
{
    /// <summary>A stored quantised checkpoint that bitsandbytes would read differently, or not at all, is refused naming what is wrong.</summary>
    public class BnbRefusalTests
    {
        const string Q = "model.layers.0.self_attn.q_proj.";

        /// <summary>A copy of fixture <paramref name="name"/> with its tensors and config edited.</summary>
        static TempDirectory Edited(string name, Action<Dictionary<string, Tensor>>? tensors = null, Action<JsonObject>? config = null)
        {
            var dir = new TempDirectory();
            string source = BnbCheckpointTests.Folder(name);
            var weights = Safetensors.Read(Path.Combine(source, "model.safetensors"));
            tensors?.Invoke(weights);
            Safetensors.Write(dir.File("model.safetensors"), weights);
            foreach (var t in weights.Values) t.Dispose();
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
            config?.Invoke(json);
            File.WriteAllText(dir.File("config.json"), json.ToJsonString());
            return dir;
        }

        static GraloraException Refusal(TempDirectory dir, BaseModelLoadOptions? options = null) =>
            Assert.Throws<GraloraException>(() => BaseModel.Load(dir.Path, options).Dispose());

        static Tensor Json(string text) => tensor(Encoding.UTF8.GetBytes(text));

        [Fact]
        public void Fp4TensorsAreRefusedByName()
        {
            using var dir = Edited("llama_nf4", t =>
            {
                var state = Encoding.UTF8.GetString(t[Q + "weight.quant_state.bitsandbytes__nf4"].data<byte>().ToArray()).Replace("nf4", "fp4");
                t.Remove(Q + "weight.quant_state.bitsandbytes__nf4");
                t[Q + "weight.quant_state.bitsandbytes__fp4"] = Json(state);
            });
            var ex = Refusal(dir);
            Assert.Equal("UnsupportedQuantization", ex.ErrorId);
            Assert.Contains("fp4", ex.Message);
            Assert.Contains("q_proj", ex.Message);
        }

        [Theory]
        [InlineData(1, "col32")]
        [InlineData(3, "col_ampere")]
        public void Int8WeightFormatsOtherThanRowAreRefusedAsBitsandbytesRefusesThem(int format, string name)
        {
            using var dir = Edited("llama_int8", t => t[Q + "weight_format"] = tensor((byte)format));
            var ex = Refusal(dir);
            Assert.Equal("UnsupportedQuantization", ex.ErrorId);
            Assert.Contains(name, ex.Message);
        }

        public static TheoryData<string, string> BrokenStates() => new()
        {
            { "absmax missing", "weight.absmax" },
            { "unknown quant-state field", "weight.quant_state" },
            { "quant map not NF4", "weight.quant_map" },
            { "shape recorded wrongly", "weight.quant_state" },
            { "packed weight too short", "weight" },
        };

        [Theory, MemberData(nameof(BrokenStates))]
        public void ABrokenQuantStateNamesTheKey(string problem, string key)
        {
            using var dir = Edited("llama_nf4", t =>
            {
                string stateKey = Q + "weight.quant_state.bitsandbytes__nf4";
                string state = Encoding.UTF8.GetString(t[stateKey].data<byte>().ToArray());
                switch (problem)
                {
                    case "absmax missing": t.Remove(Q + "weight.absmax"); break;
                    case "unknown quant-state field": t[stateKey] = Json(state.Replace("{", "{\"compress\": true, ")); break;
                    case "quant map not NF4": t[Q + "weight.quant_map"] = t[Q + "weight.quant_map"].mul(0.5); break;
                    case "shape recorded wrongly": t[stateKey] = Json(state.Replace("[64, 64]", "[32, 128]")); break;
                    case "packed weight too short": t[Q + "weight"] = t[Q + "weight"].narrow(0, 0, 100); break;
                }
            });
            var ex = Refusal(dir);
            Assert.Equal("InvalidQuantState", ex.ErrorId);
            Assert.Contains(Q + key, ex.Message);
        }

        [Fact]
        public void AFullPrecisionWeightWhereTheConfigQuantisesIsRefused()
        {
            var plain = Safetensors.Read(Path.Combine(TestEnvironment.Fixtures, "models", "llama", "model.safetensors"), k => k == Q + "weight");
            using var dir = Edited("llama_nf4", t =>
            {
                foreach (var k in t.Keys.Where(k => k.StartsWith(Q + "weight", StringComparison.Ordinal)).ToList()) t.Remove(k);
                t[Q + "weight"] = plain[Q + "weight"];
            });
            var ex = Refusal(dir);
            Assert.Equal("TensorNotQuantized", ex.ErrorId);
            Assert.Contains("llm_int8_skip_modules", ex.Message);
        }

        [Fact]
        public void SkippedModulesLoadAsPlainLinearLayers()
        {
            var plain = Safetensors.Read(Path.Combine(TestEnvironment.Fixtures, "models", "llama", "model.safetensors"), k => k.EndsWith("self_attn.q_proj.weight"));
            using var dir = Edited("llama_nf4", t =>
            {
                foreach (var k in t.Keys.Where(k => k.Contains("self_attn.q_proj.weight", StringComparison.Ordinal)).ToList()) t.Remove(k);
                foreach (var (k, v) in plain) t[k] = v;
            }, c => c["quantization_config"]!["llm_int8_skip_modules"] = new JsonArray("lm_head", "q_proj"));
            using var model = BaseModel.Load(dir.Path);
            var layer = model.Module.model.layers[0].self_attn;
            Assert.IsType<Linear>(layer.GetSlot("q_proj"));
            Assert.IsType<QuantizedLinear>(layer.GetSlot("k_proj"));
            var expected = Safetensors.Read(Path.Combine(TestEnvironment.Fixtures, "models", "llama", "model.safetensors"), k => k == Q + "weight");   // Edited disposed the copies it wrote
            Assert.True(TensorAssert.Identical(((Linear)layer.GetSlot("q_proj")).weight!, expected[Q + "weight"]));
        }

        [Fact]
        public void QuantisedTensorsWithoutAQuantizationConfigAreRefused()
        {
            using var dir = Edited("llama_nf4", config: c => c.Remove("quantization_config"));
            var ex = Refusal(dir, new BaseModelLoadOptions { Quantize = new QuantizationOptions() });
            Assert.Equal("QuantizedTensorUnexpected", ex.ErrorId);
            Assert.Contains("quantization_config", ex.Message);
        }

        [Theory]
        [InlineData("int8", false)]
        [InlineData("nf4", true)]
        public void AStoredCheckpointRefusesAnotherQuantisation(string scheme, bool doubleQuant)
        {
            using var dir = Edited("llama_nf4");
            var options = new QuantizationOptions { Scheme = QuantizationOptions.ParseScheme(scheme), DoubleQuant = doubleQuant };
            var ex = Refusal(dir, new BaseModelLoadOptions { Quantize = options });
            Assert.Equal("QuantizationMismatch", ex.ErrorId);
            using var same = BaseModel.Load(dir.Path, new BaseModelLoadOptions { Quantize = new QuantizationOptions() });
            Assert.Equal(QuantizationScheme.Nf4, same.Quantization);
        }

        [Fact]
        public void EncodersAreNotQuantised()
        {
            var ex = Assert.Throws<GraloraException>(() => BaseModel.Load(Path.Combine(TestEnvironment.Fixtures, "models", "bert"), new BaseModelLoadOptions { Quantize = new QuantizationOptions() }));
            Assert.Equal("QuantizationUnsupported", ex.ErrorId);
        }
    }
}
