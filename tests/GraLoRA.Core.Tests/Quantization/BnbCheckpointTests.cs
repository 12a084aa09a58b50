using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Quantization;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace GraLoRA.Tests.Quantization
{
    /// <summary>
    /// Checkpoints in bitsandbytes' serialisation, made outside this code by bitsandbytes' reference kernels
    /// (tools/reference/bnb on torch 1.13; Fixtures/README.md): the stored tensors dequantise to exactly what
    /// bitsandbytes' dequantize_4bit / int8_vectorwise_dequant give, our quantiser writes the same bytes, and quantised
    /// models compute the logits transformers computes over the dequantised weights.
    /// </summary>
    public class BnbCheckpointTests
    {
        readonly ITestOutputHelper _output;
        public BnbCheckpointTests(ITestOutputHelper output) => _output = output;

        internal static string Folder(string name) => Path.Combine(TestEnvironment.LocalFixtures, "bnb", name);
        static string LayersFile => Folder("layers.safetensors");
        static string SharedLlama => Path.Combine(TestEnvironment.Fixtures, "models", "llama");

        /// <summary>Reads case <paramref name="name"/> of layers.safetensors through the checkpoint reader.</summary>
        static QuantizedWeight ReadLayer(string name, QuantizationScheme scheme, long outFeatures, long inFeatures)
        {
            var (entries, _, dataStart) = Safetensors.ReadHeader(LayersFile);
            var keys = entries.Values.Where(e => e.Name.StartsWith(name + ".", StringComparison.Ordinal) && !e.Name.EndsWith(".source") && !e.Name.EndsWith(".dequant"))
                .ToDictionary(e => e.Name[(name.Length + 1)..], e => e);
            using var stream = File.OpenRead(LayersFile);
            return BnbTensors.Read(name, keys, e => Safetensors.ReadTensor(stream, dataStart, e), scheme, outFeatures, inFeatures, CPU);
        }

        public static TheoryData<string, int, int, int, bool> Nf4Layers() => new()
        {
            { "nf4", 97, 201, 64, false },          // 19497 values: a short last block and an odd count
            { "nf4_dq", 97, 201, 64, true },        // 305 blocks: two nested blocks of 256
            { "nf4_b128", 31, 45, 128, false },
        };

        [Theory, MemberData(nameof(Nf4Layers))]
        public void StoredNf4DequantisesAsBitsandbytesAndOurQuantiserWritesTheSameBytes(string name, int outF, int inF, int blockSize, bool nested)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(LayersFile, k => k.StartsWith(name + ".", StringComparison.Ordinal));
            using var stored = (Nf4Weight)ReadLayer(name, QuantizationScheme.Nf4, outF, inF);
            Assert.Equal((blockSize, nested), (stored.BlockSize, stored.Nested is not null));
            Assert.True(TensorAssert.Identical(stored.Dequantize(ScalarType.Float32), reference[name + ".dequant"]), "dequantisation differs from bitsandbytes'");
            using var ours = Nf4Weight.Quantize(reference[name + ".source"], blockSize, nested);
            Assert.True(TensorAssert.Identical(ours.Packed, reference[name + ".weight"]), "packed bytes differ");
            Assert.True(TensorAssert.Identical(ours.Absmax, reference[name + ".weight.absmax"]), "absmax differs");
            if (nested)
            {
                Assert.True(TensorAssert.Identical(ours.Nested!.Absmax, reference[name + ".weight.nested_absmax"]), "nested absmax differs");
                // The 8-bit dynamic code comes from torch.linspace: the generator's torch 1.13 and libtorch 2.10 differ in the
                // last bit of 42 of its 256 values. Both bitsandbytes and this reader use the code stored with each weight.
                TensorAssert.Close(ours.Nested.Code, reference[name + ".weight.nested_quant_map"], 1.2e-7, "nested code");
                Assert.Equal(stored.Nested!.Offset, ours.Nested.Offset);
            }
            // What we write reads back to the same weight.
            var options = new QuantizationOptions { BlockSize = blockSize, DoubleQuant = nested };
            var written = BnbTensors.Layout(name, new long[] { outF, inF }, options).ToDictionary(p => p.Key, p => p.Pick(ours));
            Assert.Equal(written.Keys.Order(), reference.Keys.Where(k => k.StartsWith(name + ".weight", StringComparison.Ordinal)).Order());
            // The quant state says what bitsandbytes' QuantState.as_dict wrote (the offset as the same float32).
            string stateKey = name + ".weight.quant_state.bitsandbytes__nf4";
            var ourState = System.Text.Json.JsonDocument.Parse(written[stateKey].data<byte>().ToArray()).RootElement;
            var bnbState = System.Text.Json.JsonDocument.Parse(reference[stateKey].data<byte>().ToArray()).RootElement;
            Assert.Equal(bnbState.EnumerateObject().Select(p => p.Name).Order(), ourState.EnumerateObject().Select(p => p.Name).Order());
            foreach (var field in bnbState.EnumerateObject())
                if (field.Name == "nested_offset") Assert.Equal((float)field.Value.GetDouble(), (float)ourState.GetProperty(field.Name).GetDouble());
                else Assert.Equal(field.Value.GetRawText().Replace(" ", ""), ourState.GetProperty(field.Name).GetRawText().Replace(" ", ""));
            foreach (var (key, t) in written.Where(kv => kv.Key != name + ".weight.quant_state.bitsandbytes__nf4" && kv.Key != name + ".weight.nested_quant_map"))
                Assert.True(TensorAssert.Identical(t.reshape(reference[key].shape).to(reference[key].dtype), reference[key]), key);
        }

        [Fact]
        public void StoredInt8DequantisesAsBitsandbytesAndOurQuantiserWritesTheSameCodes()
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(LayersFile, k => k.StartsWith("int8.", StringComparison.Ordinal));
            using var stored = ReadLayer("int8", QuantizationScheme.Int8, 33, 70);
            Assert.True(TensorAssert.Identical(stored.Dequantize(ScalarType.Float32), reference["int8.dequant"]));
            using var ours = Int8Weight.Quantize(reference["int8.source"]);
            Assert.True(TensorAssert.Identical(ours.Codes, reference["int8.weight"]));
            Assert.True(TensorAssert.Identical(ours.RowAbsmax, reference["int8.SCB"]));
        }

        public static TheoryData<string> Stored() => new() { "llama_nf4", "llama_nf4_dq", "llama_int8" };

        /// <summary>Every quantised layer of <paramref name="model"/> dequantised, by checkpoint key.</summary>
        static Dictionary<string, Tensor> Dequantised(BaseModel model) =>
            QuantizedLoading.Layers(model.Network).ToDictionary(l => l.Name + ".weight", l => l.Layer.DequantizedWeight(ScalarType.Float32));

        static double LogitsError(BaseModel model, Dictionary<string, Tensor> reference, string case_)
        {
            using var scope = NewDisposeScope();
            var ids = reference[case_ + ".input_ids"];
            var mask = reference.GetValueOrDefault(case_ + ".attention_mask");
            var positions = reference.GetValueOrDefault(case_ + ".position_ids");
            using var _ = no_grad();
            var logits = model.Module.Forward(ids, mask, positions).Logits;
            var valid = (mask is null ? ones(ids.shape, dtype: ScalarType.Bool) : mask.to(ScalarType.Bool)).unsqueeze(-1).expand_as(logits);
            return TensorAssert.RelativeError(logits.masked_select(valid), reference[case_ + ".logits"].masked_select(valid));
        }

        [Theory, MemberData(nameof(Stored))]
        public void AStoredQuantisedCheckpointLoadsAsStoredAndComputesTransformersLogits(string name)
        {
            using var scope = NewDisposeScope();
            var reference = Safetensors.Read(Path.Combine(Folder(name), "reference.safetensors"));
            using var model = BaseModel.Load(Folder(name));
            Assert.Equal(name == "llama_int8" ? QuantizationScheme.Int8 : QuantizationScheme.Nf4, model.Quantization);
            var weights = Dequantised(model);
            Assert.Equal(14, weights.Count);                                                 // 7 projections × 2 layers; lm_head stays plain
            foreach (var (key, w) in weights)
                Assert.True(TensorAssert.Identical(w, reference["dequant." + key]), key);
            foreach (var c in new[] { "plain", "padded_posids" })
            {
                double err = LogitsError(model, reference, c);
                _output.WriteLine($"{name}/{c}: logits vs transformers over the dequantised weights, relative error {err:E2}");
                Assert.True(err < 2e-5, $"{c}: {err}");
            }
        }

        [Theory]
        [InlineData("nf4", "llama_nf4")]
        [InlineData("nf4-dq", "llama_nf4_dq")]
        [InlineData("int8", "llama_int8")]
        public void QuantisingWhileLoadingGivesBitsandbytesWeightsAndReportsTheErrorAgainstFloat32(string scheme, string fixture)
        {
            using var scope = NewDisposeScope();
            var options = scheme == "int8" ? new QuantizationOptions { Scheme = QuantizationScheme.Int8 } : new QuantizationOptions { DoubleQuant = scheme == "nf4-dq" };
            using var model = BaseModel.Load(SharedLlama, new BaseModelLoadOptions { Quantize = options });
            Assert.DoesNotContain(model.Network.named_parameters(), p => p.name.Contains(".layers.") && p.name.EndsWith("proj.weight"));
            var reference = Safetensors.Read(Path.Combine(Folder(fixture), "reference.safetensors"));
            foreach (var (key, w) in Dequantised(model))
                if (scheme == "nf4-dq") TensorAssert.Close(w, reference["dequant." + key], 1e-6, key);   // the dynamic code's last bits (above)
                else Assert.True(TensorAssert.Identical(w, reference["dequant." + key]), key);
            double err = LogitsError(model, reference, "plain");
            Assert.True(err < 2e-5, $"{err}");
            // The cost of quantising, against the float32 model's logits (transformers' own, from the shared fixture).
            var full = Safetensors.Read(Path.Combine(SharedLlama, "reference.safetensors"));
            double quantisationError = LogitsError(model, full, "plain");
            _output.WriteLine($"{scheme}: logits vs the float32 model, relative error {quantisationError:F4}");
            Assert.InRange(quantisationError, 1e-4, scheme == "int8" ? 0.05 : 0.4);         // measured: nf4 0.29, int8 0.02 (tools/reference/bnb)
            long fullBytes = model.ParameterCount * 4;
            Assert.True(model.QuantizedBytes < fullBytes / 3, "the quantised weights are a fraction of the float32 size");
        }
    }
}
