using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.IO;
using GraLoRA.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>Injecting, switching, saving, merging and removing adapters on tiny decoders.</summary>
    public sealed class AdapterLifecycleTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        static readonly long[] Ids = { 1, 2, 3, 200, 17, 99, 0, 4, 42, 7 };

        BaseModel Tiny(string architecture = "llama", string name = "m") =>
            BaseModel.Load(TinyModelFactory.Save(tmp.File(name + "-" + Guid.NewGuid().ToString("N")), new TinyModelOptions { Architecture = architecture, Seed = 13 }));

        static Tensor Logits(BaseModel model)
        {
            using var _ = no_grad();
            return model.Module.Forward(tensor(Ids, new long[] { 1, Ids.Length })).Logits;
        }

        static List<string> ParameterNames(BaseModel model) => model.Module.named_parameters().Select(p => p.name).OrderBy(n => n, StringComparer.Ordinal).ToList();

        public static TheoryData<string, AdapterConfig> Methods() => new()
        {
            { "gralora", new AdapterConfig { Rank = 8, K = 2, Alpha = 16, InitWeights = false, TargetModules = new[] { "q_proj", "v_proj", "down_proj" } } },
            { "hybrid", new AdapterConfig { Rank = 8, K = 2, HybridRank = 4, Alpha = 16, InitWeights = false, TargetModules = new[] { "q_proj", "o_proj" } } },
            { "lora", new AdapterConfig { Method = AdapterMethod.LoRA, Rank = 8, Alpha = 16, InitWeights = false, TargetModules = new[] { "q_proj", "v_proj" } } },
        };

        [Theory, MemberData(nameof(Methods))]
        public void SaveThenLoadGivesTheSameLogits(string what, AdapterConfig config)
        {
            using var scope = NewDisposeScope();
            using var a = Tiny();
            var baseLogits = Logits(a);
            a.AddAdapter("x", config);
            var adapted = Logits(a);
            Assert.False(TensorAssert.Identical(baseLogits, adapted), what + ": a random adapter must change the logits");
            string folder = a.SaveAdapter("x", tmp.File("adapter-" + what));

            using var b = Tiny();
            b.LoadAdapter(folder, "y");
            Assert.True(TensorAssert.Identical(adapted, Logits(b)), what);
            Assert.Equal(new[] { "y" }, b.Adapters.Active);
            Assert.Equal(config.Method, b.Adapters.Config("y").Method);
        }

        [Fact]
        public void NewAdapterStartsAsANoOpAndOnlyItTrains()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var baseLogits = Logits(model);
            long baseCount = model.ParameterCount;
            var modules = model.AddAdapter("default", new AdapterConfig { Rank = 16, K = 2, TargetModules = new[] { "q_proj", "v_proj" } });
            Assert.Equal(4, modules.Count);
            Assert.True(TensorAssert.Identical(baseLogits, Logits(model)));     // B starts at zero
            var (trainable, total) = model.Adapters.ParameterCounts();
            // GraLoRA has r·(in + out) parameters per module, as LoRA: q_proj 64→64, v_proj 64→32 (2 KV heads × 16).
            Assert.Equal(2 * (16 * (64 + 64) + 16 * (64 + 32)), trainable);
            Assert.Equal(baseCount + trainable, total);
            Assert.Equal(total, model.ParameterCount);
            Assert.All(model.Module.named_parameters(), p => Assert.Equal(p.name.Contains("gralora_"), p.parameter.requires_grad));
            var info = Assert.Single(model.Adapters.List());
            Assert.Equal(("default", 16, (int?)2, trainable, true, false), (info.Name, info.Rank, info.K, info.Parameters, info.Active, info.Merged));
        }

        [Fact]
        public void TwoActiveAdaptersAddTheirDeltasAndMergeToTheSameModel()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            model.AddAdapter("a", new AdapterConfig { Rank = 8, InitWeights = false, TargetModules = new[] { "q_proj", "v_proj" } });
            var onlyA = Logits(model);
            model.AddAdapter("b", new AdapterConfig { Rank = 8, InitWeights = false, TargetModules = new[] { "q_proj", "down_proj" } });
            Assert.Equal(new[] { "b" }, model.Adapters.Active);
            model.Adapters.SetActive(new[] { "a", "b" });
            var both = Logits(model);
            Assert.False(TensorAssert.Identical(onlyA, both));

            // q_proj holds both: its output is base + Δa·x + Δb·x.
            var q = (AdapterLayerBase)model.Adapters.Layers().Single(l => l.Name == "model.layers.0.self_attn.q_proj").Layer;
            var x = randn(3, 64);
            using (no_grad())
            {
                var expected = x.matmul((q.BaseWeight() + q.GetDeltaWeight("a") + q.GetDeltaWeight("b")).t());
                TensorAssert.Close(q.forward(x), expected, 1e-5, "q_proj with a and b");
            }
            model.Adapters.Merge();
            TensorAssert.Close(Logits(model), both, 1e-5, "merged a+b");
            Assert.All(model.Adapters.List(), i => Assert.True(i.Merged));
            model.Adapters.Unmerge();
            TensorAssert.Close(Logits(model), both, 1e-5, "unmerged a+b");
        }

        [Fact]
        public void DisableGivesTheBaseExactlyAndEnableRestores()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var baseLogits = Logits(model);
            model.AddAdapter("default", new AdapterConfig { Rank = 8, InitWeights = false, TargetModules = new[] { AdapterConfig.AllLinear } });
            var adapted = Logits(model);
            model.Adapters.Disable();
            Assert.True(TensorAssert.Identical(baseLogits, Logits(model)));
            model.Adapters.Enable();
            Assert.True(TensorAssert.Identical(adapted, Logits(model)));
        }

        [Fact]
        public void RemoveLeavesNoParametersBehind()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var names = ParameterNames(model);
            var baseLogits = Logits(model);
            model.AddAdapter("a", new AdapterConfig { Rank = 8, InitWeights = false, TargetModules = new[] { AdapterConfig.AllLinear }, ExcludeModules = new[] { "up_proj" }, ModulesToSave = new[] { "lm_head" } });
            model.AddAdapter("b", new AdapterConfig { Method = AdapterMethod.LoRA, InitWeights = false, TargetModules = new[] { "up_proj" } });
            Assert.NotEqual(names, ParameterNames(model));
            Assert.Equal("AdapterMethodMismatch", Assert.Throws<GraloraException>(() =>
                model.AddAdapter("c", new AdapterConfig { Method = AdapterMethod.LoRA, TargetModules = new[] { "q_proj" } })).ErrorId);
            model.Adapters.Remove("a");
            model.Adapters.Remove("b");
            Assert.Equal(names, ParameterNames(model));
            Assert.Empty(model.Adapters.Names);
            Assert.True(TensorAssert.Identical(baseLogits, Logits(model)));
            Assert.Equal("AdapterNotFound", Assert.Throws<GraloraException>(() => model.Adapters.Remove("a")).ErrorId);
        }

        public static TheoryData<string, AdapterConfig, int> Targeting() => new()
        {
            { "suffix list", new AdapterConfig { TargetModules = new[] { "q_proj", "v_proj" } }, 4 },
            { "full name", new AdapterConfig { TargetModules = new[] { "model.layers.1.mlp.up_proj" } }, 1 },
            { "regex", new AdapterConfig { TargetModulesRegex = @".*layers\.1\.mlp\..*" }, 3 },
            { "all-linear", new AdapterConfig { TargetModules = new[] { AdapterConfig.AllLinear } }, 14 },
            { "all-linear minus down_proj", new AdapterConfig { TargetModules = new[] { AdapterConfig.AllLinear }, ExcludeModules = new[] { "down_proj" } }, 12 },
            { "layers_to_transform", new AdapterConfig { TargetModules = new[] { "q_proj", "v_proj" }, LayersToTransform = new[] { 1 } }, 2 },
            { "layers_pattern", new AdapterConfig { TargetModules = new[] { "o_proj" }, LayersToTransform = new[] { 0 }, LayersPattern = new[] { "layers" } }, 1 },
            { "default targets", new AdapterConfig(), 4 },
        };

        [Theory, MemberData(nameof(Targeting))]
        public void TargetsAreMatchedAsPeftMatchesThem(string what, AdapterConfig config, int expected)
        {
            using var model = Tiny();
            var modules = model.AddAdapter("t", config with { Rank = 8 });
            Assert.True(expected == modules.Count, $"{what}: {string.Join(", ", modules)}");
            Assert.DoesNotContain("lm_head", modules);
            if (config.LayersToTransform is { } layers) Assert.All(modules, m => Assert.Contains($".layers.{layers[0]}.", m));
            Assert.Equal(modules.Count, model.Adapters.Layers().Count());
        }

        [Fact]
        public void NoMatchAndBadShapesFailWithoutChangingTheModel()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var names = ParameterNames(model);
            var noMatch = Assert.Throws<GraloraException>(() => model.AddAdapter("x", new AdapterConfig { TargetModules = new[] { "query" } }));
            Assert.Equal("NoTargetModules", noMatch.ErrorId);
            Assert.Contains("q_proj", noMatch.Message);                     // lists what exists

            // k = 3 divides r = 9 but not hidden 64: the first offending module and its numbers are named.
            var shape = Assert.Throws<GraloraException>(() => model.AddAdapter("x", new AdapterConfig { Rank = 9, K = 3, TargetModules = new[] { AdapterConfig.AllLinear } }));
            Assert.Equal("InFeaturesNotDivisibleByK", shape.ErrorId);
            Assert.Contains("model.layers.0.self_attn.q_proj", shape.Message);
            Assert.Contains("64", shape.Message);
            Assert.Equal(names, ParameterNames(model));
            Assert.Empty(model.Adapters.Names);
            Assert.All(model.Module.parameters(), p => Assert.True(p.requires_grad));   // a loaded model is untouched until an adapter is added
            Assert.Equal("InvalidBias", Assert.Throws<GraloraException>(() => model.AddAdapter("x", new AdapterConfig { Bias = "lora_only" })).ErrorId);
            Assert.Equal("InvalidAdapterName", Assert.Throws<GraloraException>(() => model.AddAdapter("a.b", new AdapterConfig())).ErrorId);
        }

        [Theory]
        [InlineData(8, 1)]
        [InlineData(16, 2)]
        [InlineData(32, 2)]
        [InlineData(64, 4)]
        [InlineData(128, 4)]
        public void AutoKFollowsTheRuleOfThumb(int rank, int k) => Assert.Equal(k, AdapterConfig.AutoK(rank));

        [Fact]
        public void RankAndKPatternsOverridePerModule()
        {
            using var model = Tiny();
            model.AddAdapter("p", new AdapterConfig
            {
                Rank = 8, K = 2, TargetModules = new[] { "q_proj", "down_proj" },
                RankPattern = new Dictionary<string, int> { ["down_proj"] = 16 },
                KPattern = new Dictionary<string, int> { [@"layers\.1\.self_attn\.q_proj"] = 4 },
            });
            var layers = model.Adapters.Layers().ToDictionary(l => l.Name, l => (GraloraLinear)l.Layer);
            Assert.Equal(new long[] { 2, 32, 8 }, layers["model.layers.0.self_attn.q_proj"].A("p").shape);   // [k, in/k, r]
            Assert.Equal(new long[] { 4, 16, 8 }, layers["model.layers.1.self_attn.q_proj"].A("p").shape);
            Assert.Equal(new long[] { 2, 64, 16 }, layers["model.layers.0.mlp.down_proj"].A("p").shape);
            string folder = model.SaveAdapter("p", tmp.File("patterns"));
            using var other = Tiny();
            other.LoadAdapter(folder);
            Assert.Equal(new long[] { 4, 16, 8 }, ((GraloraLinear)other.Adapters.Layers().Single(l => l.Name == "model.layers.1.self_attn.q_proj").Layer).A("default").shape);
        }

        [Fact]
        public void ModulesToSaveTrainACopyThatIsSavedAndRestored()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var baseLogits = Logits(model);
            model.AddAdapter("s", new AdapterConfig { Rank = 8, TargetModules = new[] { "q_proj" }, ModulesToSave = new[] { "lm_head" } });
            var head = (ModulesToSaveLinear)model.Module.GetSlot("lm_head");
            Assert.True(head.Copy("s").weight!.requires_grad);
            Assert.False(head.Original.weight!.requires_grad);
            using (no_grad()) head.Copy("s").weight!.add_(0.5);             // "training"
            var trained = Logits(model);
            Assert.False(TensorAssert.Identical(baseLogits, trained));
            model.Adapters.Disable();
            Assert.True(TensorAssert.Identical(baseLogits, Logits(model)));
            model.Adapters.Enable();

            string folder = model.SaveAdapter("s", tmp.File("mts"));
            Assert.Contains("base_model.model.lm_head.weight", Safetensors.ReadHeader(Path.Combine(folder, PeftAdapterFormat.WeightsFile)).Entries.Keys);
            using var other = Tiny();
            other.LoadAdapter(folder, "s");
            Assert.True(TensorAssert.Identical(trained, Logits(other)));
        }

        [Fact]
        public void BiasAllTrainsAndSavesEveryBias()
        {
            using var model = Tiny("qwen2");
            model.AddAdapter("b", new AdapterConfig { Rank = 8, TargetModules = new[] { "q_proj" }, Bias = "all" });
            var biases = model.Module.named_parameters().Where(p => p.name.EndsWith(".bias")).ToList();
            Assert.Equal(6, biases.Count);                                    // q/k/v bias × 2 layers
            Assert.All(biases, b => Assert.True(b.parameter.requires_grad));
            var keys = model.Adapters.StateDict("b").Keys;
            Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias", keys);
            Assert.Contains("base_model.model.model.layers.0.self_attn.k_proj.bias", keys);
        }

        [Fact]
        public void SaveIsAtomicAndRefusesToOverwriteUnlessAsked()
        {
            using var model = Tiny();
            model.AddAdapter("a", new AdapterConfig { Rank = 8, InitWeights = false });
            string folder = model.SaveAdapter("a", tmp.File("adapter"));
            var original = File.ReadAllBytes(Path.Combine(folder, PeftAdapterFormat.WeightsFile));

            Assert.Equal("OutputExists", Assert.Throws<GraloraException>(() => model.SaveAdapter("a", folder)).ErrorId);
            Assert.Equal(original, File.ReadAllBytes(Path.Combine(folder, PeftAdapterFormat.WeightsFile)));

            using (no_grad()) foreach (var p in model.Module.parameters().Where(p => p.requires_grad)) p.add_(1);
            // A failure after the new files are staged (disk full, killed process): the old adapter stays as it was.
            var failed = Assert.Throws<GraloraException>(() => PeftAdapterFormat.Save(model.Adapters, "a", folder, overwrite: true, afterStaging: _ => throw new IOException("disk full")));
            Assert.Equal("WriteFailed", failed.ErrorId);
            Assert.Contains("disk full", failed.Message);
            Assert.Equal(original, File.ReadAllBytes(Path.Combine(folder, PeftAdapterFormat.WeightsFile)));
            Assert.Equal(new[] { "adapter" }, Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName).Where(n => n!.Contains("adapter")));

            model.SaveAdapter("a", folder, overwrite: true);
            Assert.NotEqual(original, File.ReadAllBytes(Path.Combine(folder, PeftAdapterFormat.WeightsFile)));
        }

        [Fact]
        public void UnloadMergesAndGivesThePlainModelBack()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var names = ParameterNames(model);
            model.AddAdapter("a", new AdapterConfig { Rank = 8, InitWeights = false, TargetModules = new[] { AdapterConfig.AllLinear } });
            var adapted = Logits(model);
            model.Adapters.Unload();
            Assert.Empty(model.Adapters.Names);
            Assert.Equal(names, ParameterNames(model));
            TensorAssert.Close(Logits(model), adapted, 1e-5, "after merge_and_unload");
        }
            [Fact]
        public void AnAdapterAddedWhileDisabledStaysOff()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var baseLogits = Logits(model);
            model.AddAdapter("a", new AdapterConfig { Rank = 8, InitWeights = false, TargetModules = new[] { "q_proj" } });
            model.Adapters.Disable();
            model.AddAdapter("b", new AdapterConfig { Rank = 8, InitWeights = false, TargetModules = new[] { "down_proj" } });
            Assert.True(TensorAssert.Identical(baseLogits, Logits(model)));
            model.Adapters.Enable();
            Assert.False(TensorAssert.Identical(baseLogits, Logits(model)));
        }

        [Fact]
        public void ExportMatchesTheForwardWhenOneAdapterIsMergedAndAnotherActive()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            model.AddAdapter("a", new AdapterConfig { Rank = 8, InitWeights = false, TargetModules = new[] { "q_proj" } });
            model.AddAdapter("b", new AdapterConfig { Rank = 8, InitWeights = false, TargetModules = new[] { "q_proj", "v_proj" } });
            model.Adapters.SetActive(new[] { "a", "b" });
            model.Adapters.Merge(new[] { "a" });
            var forward = Logits(model);
            using var exported = BaseModel.Load(model.Export(tmp.File("partly-merged")));
            TensorAssert.Close(Logits(exported), forward, 1e-5, "export of a partly merged model");
        }

        [Fact]
        public void RsLoraIsRefusedForGraLoRA()
        {
            using var model = Tiny();
            Assert.Equal("NotForGraLoRA", Assert.Throws<GraloraException>(() => model.AddAdapter("x", new AdapterConfig { UseRsLora = true })).ErrorId);
        }
    }
}
