using System.IO;
using GraLoRA.IO;
using GraLoRA.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>Logits and hidden states against transformers' own (shared/fixtures/models).</summary>
    public class DecoderParityTests
    {
        public static TheoryData<string, string> Cases()
        {
            var data = new TheoryData<string, string>();
            foreach (var model in new[] { "llama", "mistral", "qwen2" })
                foreach (var c in new[] { "plain", "padded", "padded_posids" })
                    data.Add(model, c);
            return data;
        }

        [Theory, MemberData(nameof(Cases))]
        public void MatchesTransformers(string modelName, string caseName)
        {
            using var scope = NewDisposeScope();
            string folder = Path.Combine(TestEnvironment.Fixtures, "models", modelName);
            var reference = Safetensors.Read(Path.Combine(folder, "reference.safetensors"));
            using var model = CheckpointLoader.LoadDecoder(folder);
            reference.TryGetValue(caseName + ".attention_mask", out var mask);
            reference.TryGetValue(caseName + ".position_ids", out var positions);
            var output = model.Forward(reference[caseName + ".input_ids"], mask, positions, hiddenStates: true);

            // Positions where attention_mask == 0 are implementation-defined: compare valid ones only.
            var valid = mask is null ? ones(2, 7, dtype: ScalarType.Bool) : mask.to(ScalarType.Bool);
            Tensor Valid(Tensor t) => t[valid];
            TensorAssert.Close(Valid(output.Logits), Valid(reference[caseName + ".logits"]), 1e-4, $"{modelName}/{caseName} logits");
            for (int i = 0; i < output.HiddenStates.Count; i++)
                TensorAssert.Close(Valid(output.HiddenStates[i]), Valid(reference[$"{caseName}.hidden_states.{i}"]), 1e-4, $"hidden_states.{i}");
            Assert.Equal(model.Config.NumLayers + 1, output.HiddenStates.Count);
        }

        [Fact]
        public void RotaryFrequenciesMatch()
        {
            using var scope = NewDisposeScope();
            foreach (var name in new[] { "llama", "qwen2" })
            {
                string folder = Path.Combine(TestEnvironment.Fixtures, "models", name);
                var reference = Safetensors.Read(Path.Combine(folder, "reference.safetensors"));
                var rope = new RotaryEmbedding(DecoderConfig.Load(Path.Combine(folder, "config.json")));
                TensorAssert.Close(rope.InvFreq, reference["rope.inv_freq"], 1e-6, name);
            }
        }
    }
}

namespace GraLoRA.Tests
{
    public class CheckpointLoaderErrorTests
    {
        static string CopyLlama(TempDirectory dir)
        {
            string source = Path.Combine(TestEnvironment.Fixtures, "models", "llama");
            foreach (var f in new[] { "config.json", "model.safetensors" })
                File.Copy(Path.Combine(source, f), dir.File(f));
            return dir.Path;
        }

        [Fact]
        public void MissingFolderIsNamed()
        {
            var ex = Assert.Throws<GraloraException>(() => CheckpointLoader.LoadDecoder("/nonexistent/model"));
            Assert.Equal("ModelFolderNotFound", ex.ErrorId);
            Assert.Contains("/nonexistent/model", ex.Message);
        }

        [Fact]
        public void UnknownArchitectureIsNamed()
        {
            using var dir = new TempDirectory();
            CopyLlama(dir);
            File.WriteAllText(dir.File("config.json"), File.ReadAllText(dir.File("config.json")).Replace("\"llama\"", "\"gpt_neox\""));
            var ex = Assert.Throws<GraloraException>(() => CheckpointLoader.LoadDecoder(dir.Path));
            Assert.Equal("UnsupportedArchitecture", ex.ErrorId);
            Assert.Contains("'gpt_neox'", ex.Message);
        }

        [Fact]
        public void MissingAndMisShapedTensorsAreNamed()
        {
            using var scope = NewDisposeScope();
            using var dir = new TempDirectory();
            CopyLlama(dir);
            var tensors = Safetensors.Read(dir.File("model.safetensors"));
            tensors.Remove("model.layers.1.mlp.up_proj.weight");
            Safetensors.Write(dir.File("model.safetensors"), tensors);
            var missing = Assert.Throws<GraloraException>(() => CheckpointLoader.LoadDecoder(dir.Path));
            Assert.Equal("TensorMissing", missing.ErrorId);
            Assert.Contains("model.layers.1.mlp.up_proj.weight", missing.Message);

            tensors["model.layers.1.mlp.up_proj.weight"] = zeros(64, 128);
            Safetensors.Write(dir.File("model.safetensors"), tensors);
            var shape = Assert.Throws<GraloraException>(() => CheckpointLoader.LoadDecoder(dir.Path));
            Assert.Equal("TensorShapeMismatch", shape.ErrorId);
            Assert.Contains("model.layers.1.mlp.up_proj.weight", shape.Message);
            Assert.Contains("[128, 64]", shape.Message);
        }

        [Fact]
        public void CorruptSafetensorsHeaderIsRefused()
        {
            using var dir = new TempDirectory();
            CopyLlama(dir);
            var bytes = File.ReadAllBytes(dir.File("model.safetensors"));
            bytes[0] = 0xFF; bytes[7] = 0x7F;                       // absurd header length
            File.WriteAllBytes(dir.File("model.safetensors"), bytes);
            var ex = Assert.Throws<GraloraException>(() => CheckpointLoader.LoadDecoder(dir.Path));
            Assert.Equal("InvalidSafetensors", ex.ErrorId);
            Assert.Contains("header length", ex.Message);
        }

        [Fact]
        public void Llama3RopeScalingKeepsHighFrequenciesAndDividesLowOnes()
        {
            using var scope = NewDisposeScope();
            var plain = new DecoderConfig { HeadDim = 128, RopeTheta = 500000 };
            var scaled = plain with { RopeScaling = new RopeScaling { Type = "llama3", Factor = 8.0, LowFreqFactor = 1.0, HighFreqFactor = 4.0, OriginalMaxPositions = 8192 } };
            var basic = new RotaryEmbedding(plain).InvFreq;
            var inv = new RotaryEmbedding(scaled).InvFreq;
            var wavelen = 2 * System.Math.PI / basic;
            var high = wavelen < 8192 / 4.0;                 // short wavelengths: unchanged
            var low = wavelen > 8192 / 1.0;                  // long wavelengths: divided by the factor
            Assert.True(high.any().item<bool>() && low.any().item<bool>());
            TensorAssert.Close(inv[high], basic[high], 1e-7, "high frequencies");
            TensorAssert.Close(inv[low], basic[low] / 8, 1e-7, "low frequencies");
            var medium = high.logical_or(low).logical_not();   // in between: a smooth blend, between the two
            Assert.True(((inv[medium] <= basic[medium]).logical_and(inv[medium] >= basic[medium] / 8)).all().item<bool>());
        }

        [Fact]
        public void IncompleteRopeScalingNamesTheField()
        {
            using var dir = new TempDirectory();
            CopyLlama(dir);
            File.WriteAllText(dir.File("config.json"), File.ReadAllText(dir.File("config.json"))
                .Replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}"));
            var ex = Assert.Throws<GraloraException>(() => CheckpointLoader.LoadDecoder(dir.Path));
            Assert.Equal("InvalidModelConfig", ex.ErrorId);
            Assert.Contains("rope_scaling.low_freq_factor", ex.Message);
        }

        [Fact]
        public void UnsupportedDTypesAreRefusedBeforeWriting()
        {
            using var scope = NewDisposeScope();
            using var dir = new TempDirectory();
            var tensors = new System.Collections.Generic.Dictionary<string, Tensor> { ["z"] = zeros(2, dtype: ScalarType.ComplexFloat32) };
            var ex = Assert.Throws<GraloraException>(() => Safetensors.Write(dir.File("z.safetensors"), tensors));
            Assert.Equal("UnsupportedDType", ex.ErrorId);
            Assert.Contains("'z'", ex.Message);
            Assert.Empty(Directory.GetFiles(dir.Path));
        }

        [Fact]
        public void WrittenSafetensorsReadBackIdentically()
        {
            using var scope = NewDisposeScope();
            using var dir = new TempDirectory();
            var tensors = new System.Collections.Generic.Dictionary<string, Tensor>
            {
                ["a"] = randn(3, 4), ["b"] = arange(5, dtype: ScalarType.Int64), ["c"] = randn(2, 2).to(ScalarType.BFloat16),
            };
            Safetensors.Write(dir.File("x.safetensors"), tensors);
            var back = Safetensors.Read(dir.File("x.safetensors"));
            foreach (var (k, v) in tensors) Assert.True(TensorAssert.Identical(v, back[k]), k);
            Assert.Single(Directory.GetFiles(dir.Path));            // no temp file left
        }
    }
}
