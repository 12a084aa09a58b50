using GraLoRA.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// PEFT's key names come from what the modules register (<see cref="PeftKeys"/>): the expected names are PEFT's, as its
    /// save_pretrained wrote them into the shared fixtures (see their README) and as get_peft_model_state_dict states them.
    /// </summary>
    public sealed class PeftKeysTests
    {
        [Theory]
        [InlineData("gralora_A.default", "default", "gralora_A")]
        [InlineData("gralora_A_general.default.weight", "default", "gralora_A_general.weight")]
        [InlineData("lora_B.default.weight", "default", "lora_B.weight")]
        [InlineData("lora_A.weight.weight", "weight", "lora_A.weight")]                 // an adapter named like a parameter
        [InlineData("lora_magnitude_vector.x.weight", "x", "lora_magnitude_vector.weight")]
        public void ALayerKeyDropsTheAdapterSegment(string path, string adapter, string key) => Assert.Equal(key, PeftKeys.LayerKey(path, adapter));

        [Theory]
        [InlineData("modules_to_save.default.weight", "default", "weight")]
        [InlineData("modules_to_save.cls.bias", "cls", "bias")]
        public void AModuleToSaveKeyIsTheCopysOwnName(string path, string adapter, string key) => Assert.Equal(key, PeftKeys.CopyKey(path, adapter));

        [Fact]
        public void APathOfAnotherAdapterIsRefused()
        {
            Assert.Throws<ArgumentException>(() => PeftKeys.LayerKey("gralora_A.other", "default"));
            Assert.Throws<ArgumentException>(() => PeftKeys.CopyKey("modules_to_save.other.weight", "default"));
        }

        /// <summary>
        /// A LoRA variant with one more per-adapter container, as DoRA adds lora_magnitude_vector: its key, its
        /// trainability and its save/load come from the registration alone (nothing in AdapterHost names it).
        /// </summary>
        sealed class MagnitudeLora : AdapterLayerBase
        {
            readonly ParameterDict _a = new(), _b = new(), _m = new();

            public MagnitudeLora(Linear baseLayer) : base(nameof(MagnitudeLora), baseLayer)
            {
                register_module("lora_A", _a);
                register_module("lora_B", _b);
                register_module("lora_magnitude_vector", _m);
            }

            public override AdapterMethod Method => AdapterMethod.LoRA;

            protected override void CreateAdapterParameters(string name, IAdapterOptions options, ScalarType dtype, Device device)
            {
                _a.Add(name + ".weight", new Parameter(randn(options.Rank, InFeatures, dtype: dtype, device: device)));
                _b.Add(name + ".weight", new Parameter(randn(OutFeatures, options.Rank, dtype: dtype, device: device)));
                _m.Add(name + ".weight", new Parameter(ones(OutFeatures, dtype: dtype, device: device)));
            }

            protected override void RemoveAdapterParameters(string name)
            {
                RemoveParameter(_a, name + ".weight");
                RemoveParameter(_b, name + ".weight");
                RemoveParameter(_m, name + ".weight");
            }

            public override Tensor GetDeltaWeight(string name) =>
                _b[name + ".weight"].matmul(_a[name + ".weight"]).mul(_m[name + ".weight"].unsqueeze(1)).mul(GetOptions(name).Scaling);

            protected override Tensor AdapterForward(string name, Tensor x) =>
                x.mm(_a[name + ".weight"].t()).mm(_b[name + ".weight"].t()).mul(_m[name + ".weight"]);
        }

        [Fact]
        public void ANewContainerGetsItsKeyAndTrainsWithoutBeingNamedAnywhereElse()
        {
            using var layer = new MagnitudeLora(nn.Linear(8, 6));
            layer.AddAdapter("default", new LoraOptions { Rank = 2 });
            layer.AddAdapter("other", new LoraOptions { Rank = 2 });
            Assert.Equal(new[] { "lora_A.weight", "lora_B.weight", "lora_magnitude_vector.weight" }, layer.AdapterStateDict("default").Select(e => e.Key));
            Assert.Equal(3, layer.AdapterParameters("default").Count());
            Assert.Equal(2 * 8 + 6 * 2 + 6, layer.AdapterParameterCount("default"));
            Assert.All(layer.AdapterParameters("default"), p => Assert.True(p.requires_grad));     // the first adapter is active
            Assert.All(layer.AdapterParameters("other"), p => Assert.False(p.requires_grad));
            var ex = Assert.Throws<GraloraException>(() => layer.AdapterStateDict("missing").ToList());
            Assert.Equal("AdapterNotFound", ex.ErrorId);
        }

        [Fact]
        public void LoraFactorKeysForConvertedFactorsAreTheOnesALoraLayerSaves()
        {
            // PEFT's LoRA names (lora_A.weight, lora_B.weight, as in the fixtures' LoRA adapters); ConvertTo-LoRAAdapter
            // writes its factors under LoraLinear.FactorKeys, so they must be what a LoRA layer itself saves.
            using var layer = new LoraLinear(nn.Linear(8, 6), "other", new LoraOptions { Rank = 2 });
            Assert.Equal(new[] { LoraLinear.FactorKeys.A, LoraLinear.FactorKeys.B }, layer.AdapterStateDict("other").Select(e => e.Key));
            Assert.Equal(("lora_A.weight", "lora_B.weight"), LoraLinear.FactorKeys);
        }

        [Fact]
        public void AdapterKeysAreThePathsTheLayersRegisterUnderTheModulePrefix()
        {
            using var model = BaseModel.Load(Path.Combine(TestEnvironment.Fixtures, "models", "llama"));
            model.AddAdapter("g", new AdapterConfig { Rank = 8, K = 2, HybridRank = 4, TargetModules = new[] { "q_proj" }, ModulesToSave = new[] { "lm_head" } });
            var keys = model.Adapters.StateDict("g").Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
            // PEFT's names (fixtures README): gralora_A, gralora_B, gralora_A_general.weight, gralora_B_general.weight; the
            // module to save as the module's own weight.
            var expected = new[] { 0, 1 }.SelectMany(l => new[] { "gralora_A", "gralora_B", "gralora_A_general.weight", "gralora_B_general.weight" }
                    .Select(k => $"base_model.model.model.layers.{l}.self_attn.q_proj.{k}"))
                .Append("base_model.model.lm_head.weight").OrderBy(k => k, StringComparer.Ordinal);
            Assert.Equal(expected, keys);
        }
    }
}
