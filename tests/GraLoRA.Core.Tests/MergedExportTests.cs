using GraLoRA.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>An export folds adapters in by the layers' own merge rule, so it holds exactly what Merge leaves in the weights.</summary>
    public sealed class MergedExportTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        static BaseModel Llama() => BaseModel.Load(Path.Combine(TestEnvironment.Fixtures, "models", "llama"));

        [Theory]
        [InlineData(ScalarType.Float64)]
        [InlineData(ScalarType.Float32)]
        [InlineData(ScalarType.BFloat16)]
        public void AnExportedWeightIsBitForBitWhatMergeLeaves(ScalarType dtype)
        {
            const string key = "model.layers.0.self_attn.q_proj.weight";
            using var model = Llama();
            model.Network.to(dtype);
            manual_seed(3);
            model.AddAdapter("a", new AdapterConfig { Rank = 8, K = 2, InitWeights = false, TargetModules = new[] { "q_proj" } });
            model.AddAdapter("b", new AdapterConfig { Rank = 4, K = 2, InitWeights = false, TargetModules = new[] { "q_proj" } });
            model.Adapters.SetActive(new[] { "a", "b" });
            string folder = model.Export(tmp.File("export-" + dtype));
            using var exported = Safetensors.Read(Path.Combine(folder, "model.safetensors"))[key];

            model.Adapters.Merge();                                                   // a, then b, into the weight itself
            var merged = model.Adapters.Layers().Single(l => l.Name + ".weight" == key).Layer.BaseWeight();
            Assert.Equal(dtype, exported.dtype);
            Assert.True(TensorAssert.Identical(merged, exported), $"{dtype}: the export differs from the merged weight");
        }

        [Fact]
        public void MergedWeightLeavesTheLayerAsItWas()
        {
            using var model = Llama();
            model.AddAdapter("a", new AdapterConfig { Rank = 8, K = 2, InitWeights = false, TargetModules = new[] { "q_proj" } });
            var layer = model.Adapters.Layers().First().Layer;
            using var before = layer.BaseWeight().detach().clone();
            using var merged = layer.MergedWeight(new[] { "a" });
            Assert.True(TensorAssert.Identical(before, layer.BaseWeight()));
            Assert.False(layer.Merged);
            Assert.False(TensorAssert.Identical(before, merged));
            Assert.Equal("AdapterNotFound", Assert.Throws<GraloraException>(() => layer.MergedWeight(new[] { "zz" })).ErrorId);
        }
    }
}
