using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Diagnostics;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// DoRA, MoRA, RaSA and Full through the whole lifecycle on a tiny Llama (all seven projections adapted): add, train,
    /// save in the method's own format, import, merge, export and re-import, the listing and the ΔW spectrum; RaSA's
    /// shared pool counted, trained and saved once; Full saved as a checkpoint and resumed exactly; the comparison.
    /// </summary>
    public sealed class BaselineLifecycleTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        static readonly string[] Seven = { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" };
        const int Layers = 2;

        string? _folder;
        BaseModel Tiny() => BaseModel.Load(_folder ??= TinyModelFactory.Save(tmp.File("tiny"), new TinyModelOptions { Seed = 3, HiddenSize = 32, IntermediateSize = 64, Layers = Layers }));

        public static TheoryData<string> Methods() => new() { "DoRA", "MoRA1", "MoRA6", "RaSA", "Full" };

        static AdapterConfig ConfigFor(string method) => method switch
        {
            "DoRA" => new AdapterConfig { Method = AdapterMethod.DoRA, Rank = 4, Alpha = 8, TargetModules = Seven },
            "MoRA1" => new AdapterConfig { Method = AdapterMethod.MoRA, Rank = 4, MoraType = 1, TargetModules = Seven },
            "MoRA6" => new AdapterConfig { Method = AdapterMethod.MoRA, Rank = 4, MoraType = 6, TargetModules = Seven },
            "RaSA" => new AdapterConfig { Method = AdapterMethod.RaSA, Rank = 4, RasaK = 1, Alpha = 8, TargetModules = Seven },
            _ => new AdapterConfig { Method = AdapterMethod.Full, TargetModules = new[] { "q_proj", "down_proj" } },
        };

        /// <summary>Trainable parameters by each method's formula, from the layer shapes (hidden 32, intermediate 64, 2 KV heads of 8).</summary>
        static long Formula(string method)
        {
            var shapes = new (long In, long Out)[] { (32, 32), (32, 16), (32, 16), (32, 32), (32, 64), (32, 64), (64, 32) };
            static long MoraSize(long i, long o, int r, int type) { long s = (long)(Math.Sqrt((i + o) * r) + 0.5); return type == 6 ? s / 2 * 2 : s; }
            return method switch
            {
                "DoRA" => Layers * shapes.Sum(s => 4 * (s.In + s.Out) + s.Out),
                "MoRA1" => Layers * shapes.Sum(s => MoraSize(s.In, s.Out, 4, 1) * MoraSize(s.In, s.Out, 4, 1)),
                "MoRA6" => Layers * shapes.Sum(s => MoraSize(s.In, s.Out, 4, 6) * MoraSize(s.In, s.Out, 4, 6)),
                // per layer: (r − k)(in + out) private + mixing of r − k + k·L; per type once: k·L·(in + out)
                "RaSA" => shapes.Sum(s => Layers * (3 * (s.In + s.Out) + 3 + 1 * Layers) + 1 * Layers * (s.In + s.Out)),
                _ => Layers * (32 * 32 + 32 * 64),
            };
        }

        static IBatchSource Batches(int count, int offset = 0) => TestBatches.Tokens(count, 2, 8, (t, i) => 20 + (t * 5 + (i + offset) * 3) % 80);

        static Tensor Logits(BaseModel model)
        {
            using var _ = no_grad();
            var ids = tensor(new long[] { 21, 40, 33, 57, 80, 22, 64 }).unsqueeze(0);
            return model.Module.Forward(ids).Logits;
        }

        static TrainingOptions Quick(int steps = 3) => new() { MaxSteps = steps, LearningRate = 5e-3, Seed = 11 };

        [Theory, MemberData(nameof(Methods))]
        public void EveryMethodGoesThroughTheWholeLifecycle(string method)
        {
            using var scope = NewDisposeScope();
            var config = ConfigFor(method);
            using var model = Tiny();
            var before = Logits(model);
            model.AddAdapter("m", config);
            var info = model.Adapters.List().Single();
            Assert.Equal(config.Method, info.Method);
            Assert.Equal(Formula(method), info.Parameters);
            Assert.Equal(Formula(method), model.Adapters.ParameterCounts().Trainable);
            TensorAssert.Close(Logits(model), before, 1e-6, "a fresh adapter leaves the model as it was");

            var result = new Trainer(model, "m", Quick()).Train(Batches(2));
            Assert.Equal(3, result.Steps);
            Assert.Equal(3, result.StepSeconds!.Count);
            var trained = Logits(model);
            Assert.True(TensorAssert.RelativeError(trained, before) > 1e-4, "training changed the output");

            // ΔW spectrum on every adapted layer, within the method's structural bound.
            var spectra = RankAnalysis.Adapter(model.Adapters, "m");
            Assert.Equal(model.Adapters.Targets("m").Count, spectra.Count);
            Assert.All(spectra, s => { Assert.Equal(config.Method, s.Method); Assert.InRange(s.NumericalRank, 1, s.MaxRank); });

            // Save in the method's own format and import into a fresh copy: the same logits.
            string saved = model.SaveAdapter("m", tmp.File("saved-" + method));
            if (config.Method == AdapterMethod.Full)
            {
                Assert.True(File.Exists(Path.Combine(saved, "config.json")));
                Assert.False(File.Exists(Path.Combine(saved, PeftAdapterFormat.ConfigFile)));
                using var checkpoint = BaseModel.Load(saved);                      // a whole model
                TensorAssert.Close(Logits(checkpoint), trained, 1e-5, "full checkpoint");
                using var plain = Tiny();
                Assert.Equal("NotAnAdapter", Assert.Throws<GraloraException>(() => plain.LoadAdapter(saved)).ErrorId);
            }
            else
            {
                using var fresh = Tiny();
                var loaded = fresh.LoadAdapter(saved, "m");
                Assert.Equal(config.Method, loaded.Method);
                TensorAssert.Close(Logits(fresh), trained, 1e-5, "imported");
            }

            // Rewritten as plain LoRA for serving (DoRA's and Full's full-rank ΔW only truncated: here every direction kept).
            bool fullRank = config.Method is AdapterMethod.DoRA or AdapterMethod.Full;
            if (fullRank) Assert.Equal("FullRankDelta", Assert.Throws<GraloraException>(() => model.ConvertToLora("m")).ErrorId);
            var asLora = model.ConvertToLora("m", tmp.File("lora-" + method), fullRank ? new LoraConversionOptions { Energy = 1 } : null);
            Assert.All(asLora.Layers, l => Assert.True(l.RelativeError < 1e-5, $"{l.Module}: {l.RelativeError:E2}"));
            using (var viaLora = Tiny())
            {
                Assert.Equal(AdapterMethod.LoRA, viaLora.LoadAdapter(asLora.Path, "m").Method);
                TensorAssert.Close(Logits(viaLora), trained, 1e-4, "as LoRA");
            }

            // Merge, unmerge, export and re-import.
            model.Adapters.Merge();
            TensorAssert.Close(Logits(model), trained, 1e-4, "merged");
            model.Adapters.Unmerge();
            TensorAssert.Close(Logits(model), trained, 1e-5, "unmerged");
            string exported = model.Export(tmp.File("export-" + method));
            var keys = CheckpointLoader.WeightFiles(exported).SelectMany(f => Safetensors.ReadHeader(f).Entries.Keys).ToList();
            Assert.DoesNotContain(keys, k => k.Contains("lora_") || k.Contains("rasa_") || k.Contains("base_layer") || k.Contains(".full."));
            using var reimported = BaseModel.Load(exported);
            TensorAssert.Close(Logits(reimported), trained, 1e-4, "exported");

            model.Adapters.Remove("m");
            TensorAssert.Close(Logits(model), before, 1e-6, "removed");
            Assert.DoesNotContain(model.Module.named_parameters(), p => p.name.Contains("rasa_") || p.name.Contains("lora_"));
        }

        [Fact]
        public void RasaSharesOnePoolPerModuleTypeCountedTrainedAndSavedOnce()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            model.AddAdapter("r", ConfigFor("RaSA"));
            // Registered once, on the model, under PEFT's attribute names; the layers hold no copy.
            var shared = model.Module.named_parameters().Where(p => p.name.StartsWith("rasa_shared_", StringComparison.Ordinal)).ToList();
            Assert.Equal(2 * Seven.Length, shared.Count);
            Assert.Contains(shared, p => p.name == "rasa_shared_A.r.self_attn__q_proj.weight");
            Assert.All(shared, p => Assert.True(p.parameter.requires_grad));
            var all = model.Module.named_parameters().Select(p => p.parameter.Handle).ToList();
            Assert.Equal(all.Count, all.Distinct().Count());                 // no parameter reachable twice

            // Both layers' gradients reach the one pool.
            var pool = shared.Single(p => p.name == "rasa_shared_B.r.mlp__down_proj.weight").parameter;
            var before = pool.detach().clone();
            new Trainer(model, "r", Quick(1)).Train(Batches(1));
            Assert.False(TensorAssert.Identical(before, pool), "the shared B trained");

            var saved = model.SaveAdapter("r", tmp.File("rasa"));
            var entries = Safetensors.ReadHeader(Path.Combine(saved, PeftAdapterFormat.WeightsFile)).Entries;
            Assert.Equal(2 * Seven.Length, entries.Keys.Count(k => k.StartsWith("base_model.rasa_shared_", StringComparison.Ordinal)));
            Assert.Equal(new long[] { 1 * Layers, 32 }, entries["base_model.rasa_shared_A.self_attn__q_proj.weight"].Shape);
            Assert.Equal(new long[] { 16, 1 * Layers }, entries["base_model.rasa_shared_B.self_attn__k_proj.weight"].Shape);
            Assert.Equal(new long[] { 3 + 1 * Layers }, entries["base_model.model.model.layers.1.mlp.up_proj.rasa_mixing.weight"].Shape);
            Assert.DoesNotContain(entries.Keys, k => k.Contains("layers.") && k.Contains("shared"));
        }

        [Fact]
        public void RasaRefusesTargetsOutsideALayerListAndLeavesTheModelAlone()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var ex = Assert.Throws<GraloraException>(() => model.AddAdapter("r", new AdapterConfig { Method = AdapterMethod.RaSA, Rank = 4, RasaK = 1, TargetModulesRegex = ".*(q_proj|lm_head)" }));
            Assert.Equal("RasaNeedsLayers", ex.ErrorId);
            Assert.Contains("lm_head", ex.Message);
            Assert.Empty(model.Adapters.Names);
            Assert.DoesNotContain(model.Module.named_parameters(), p => p.name.Contains("rasa_"));
        }

        [Fact]
        public void MoraFileWithDifferentAAndBIsRefused()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            model.AddAdapter("m", ConfigFor("MoRA6") with { InitWeights = false });
            string saved = model.SaveAdapter("m", tmp.File("mora"));
            var tensors = Safetensors.Read(Path.Combine(saved, PeftAdapterFormat.WeightsFile));
            string key = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
            tensors[key] = tensors[key] + 1;
            Safetensors.Write(Path.Combine(saved, PeftAdapterFormat.WeightsFile), tensors);
            using var fresh = Tiny();
            var ex = Assert.Throws<GraloraException>(() => fresh.LoadAdapter(saved));
            Assert.Equal("AliasedTensorsDiffer", ex.ErrorId);
            Assert.Empty(fresh.Adapters.Names);
        }

        [Fact]
        public void FullFineTuningResumesExactlyFromItsCheckpoint()
        {
            using var scope = NewDisposeScope();
            var options = Quick(4) with { OutputDirectory = tmp.File("full-run"), SaveSteps = 2 };
            Tensor straight, resumed;
            using (var model = Tiny())
            {
                model.AddAdapter("f", ConfigFor("Full"));
                new Trainer(model, "f", options).Train(Batches(2));
                straight = Logits(model);
            }
            string checkpoint = Path.Combine(tmp.File("full-run"), "checkpoint-2");
            Assert.True(File.Exists(Path.Combine(checkpoint, "config.json")), "trainer checkpoints of full fine-tuning are whole checkpoints");
            using (var model = Tiny())
            {
                model.AddAdapter("f", ConfigFor("Full"));
                new Trainer(model, "f", options with { OutputDirectory = tmp.File("full-run-2") }).Train(Batches(2), resumeFrom: checkpoint);
                resumed = Logits(model);
            }
            Assert.True(TensorAssert.Identical(straight, resumed));
        }

        [Theory]
        [InlineData(AdapterMethod.MoRA, "Alpha", "NotForMoRA")]
        [InlineData(AdapterMethod.LoRA, "MoraType", "NotForLoRA")]
        [InlineData(AdapterMethod.GraLoRA, "RasaK", "NotForGraLoRA")]
        [InlineData(AdapterMethod.Full, "Rank", "NotForFull")]
        [InlineData(AdapterMethod.RaSA, "UseRsLora", "NotForRaSA")]
        [InlineData(AdapterMethod.MoRA, "AlphaPattern", "NotForMoRA")]
        [InlineData(AdapterMethod.RaSA, "AlphaPattern", "NotForRaSA")]
        [InlineData(AdapterMethod.Full, "AlphaPattern", "NotForFull")]
        public void SettingsOfAnotherMethodAreRefusedNotIgnored(AdapterMethod method, string setting, string errorId)
        {
            var config = new AdapterConfig { Method = method };
            config = setting switch
            {
                "Alpha" => config with { Alpha = 16 },
                "MoraType" => config with { MoraType = 6 },
                "RasaK" => config with { RasaK = 2 },
                "Rank" => config with { Rank = 8 },
                "AlphaPattern" => config with { AlphaPattern = new Dictionary<string, double> { ["q_proj"] = 4 } },
                _ => config with { UseRsLora = true },
            };
            var ex = Assert.Throws<GraloraException>(config.Validate);
            Assert.Equal(errorId, ex.ErrorId);
        }

        [Theory]
        [InlineData("{\"peft_type\":\"LORA\",\"r\":4,\"use_dora\":true}", "DoRA", null)]
        [InlineData("{\"peft_type\":\"LORA\",\"r\":4,\"use_mora\":true,\"mora_type\":6,\"lora_alpha\":16}", "MoRA", null)]
        [InlineData("{\"peft_type\":\"RASA\",\"r\":16,\"rasa_k\":2,\"rasa_alpha\":32}", "RaSA", null)]
        [InlineData("{\"peft_type\":\"LORA\",\"use_dora\":true,\"use_mora\":true}", null, "InvalidAdapterConfig")]
        [InlineData("{\"peft_type\":\"LORA\",\"use_mora\":\"yes\"}", null, "InvalidAdapterConfig")]
        [InlineData("{\"peft_type\":\"LORA\",\"r\":8,\"lora_alpha\":16,\"use_dora\":true,\"alpha_pattern\":{\"v_proj\":4}}", "DoRA", null)]
        [InlineData("{\"peft_type\":\"LORA\",\"use_mora\":true,\"alpha_pattern\":{\"v_proj\":4}}", null, "InvalidAdapterConfig")]
        [InlineData("{\"peft_type\":\"RASA\",\"alpha_pattern\":{\"v_proj\":4}}", null, "InvalidAdapterConfig")]
        public void AdapterConfigFilesNameTheirMethod(string json, string? method, string? errorId)
        {
            Directory.CreateDirectory(tmp.File("cfg"));
            File.WriteAllText(tmp.File("cfg/adapter_config.json"), json);
            if (errorId is not null)
            {
                Assert.Equal(errorId, Assert.Throws<GraloraException>(() => PeftAdapterFormat.ReadConfig(tmp.File("cfg"))).ErrorId);
                return;
            }
            var config = PeftAdapterFormat.ReadConfig(tmp.File("cfg"));
            Assert.Equal(method, config.Method.ToString());
            config.Validate();
            if (config.Method == AdapterMethod.MoRA) { Assert.Equal(6, config.EffectiveMoraType); Assert.Null(config.Alpha); }   // the fork ignores lora_alpha
            if (config.Method == AdapterMethod.RaSA) { Assert.Equal(2, config.EffectiveRasaK); Assert.Equal(32, config.EffectiveAlpha); }
            if (config.AlphaPattern is not null)                 // PEFT's alpha_pattern holds for DoRA as for LoRA: scaling α/r per module
            {
                Assert.Equal(4.0 / 8, ((LoraOptions)config.OptionsFor("model.layers.0.self_attn.v_proj")).Scaling);
                Assert.Equal(16.0 / 8, ((LoraOptions)config.OptionsFor("model.layers.0.self_attn.q_proj")).Scaling);
            }
        }

        [Fact]
        public void ComparisonTrainsEveryMethodAtEqualParametersAndLeavesTheModelAlone()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var before = Logits(model);
            var seen = new List<MethodComparisonRow>();
            string chart = tmp.File("compare/loss.png");
            var result = MethodComparison.Run(model, Batches(2), Batches(1, offset: 5), new MethodComparisonOptions
            {
                Methods = new[] { AdapterMethod.GraLoRA, AdapterMethod.MoRA, AdapterMethod.RaSA, AdapterMethod.DoRA },
                Rank = 8,
                Training = Quick(2) with { EvalSteps = 1 },
            }, chart, new SyncProgress<MethodComparisonRow>(seen.Add));

            Assert.Equal(new[] { AdapterMethod.LoRA, AdapterMethod.GraLoRA, AdapterMethod.MoRA, AdapterMethod.RaSA, AdapterMethod.DoRA }, result.Rows.Select(r => r.Method));
            Assert.Equal(new[] { "LoRA r 8", "GraLoRA r 8 k 1", "MoRA r 8 type 6", "RaSA r 8 k 1", "DoRA r 8" }, result.Rows.Select(r => r.Settings));
            Assert.Equal(1.0, result.Rows[0].TimeVersusLoRA);
            Assert.All(result.Rows, r => Assert.True(r.StepSeconds > 0 && r.FinalValidationLoss is not null && r.Steps == 2 && r.History.Count == 2));
            // Equal parameters: LoRA = GraLoRA = RaSA (per type: L(r−k)(in+out) + k·L(in+out) = L·r(in+out), plus the mixing vectors); MoRA within rounding of r̂; DoRA + out per layer.
            long lora = result.Rows[0].TrainableParameters;
            Assert.Equal(lora, result.Rows[1].TrainableParameters);
            Assert.Equal(lora + Layers * 7 * (8 - 1 + 1 * Layers), result.Rows[3].TrainableParameters);
            Assert.InRange(result.Rows[2].TrainableParameters, lora * 0.9, lora * 1.1);
            Assert.Equal(lora + Layers * (32 + 16 + 16 + 32 + 64 + 64 + 32), result.Rows[4].TrainableParameters);
            Assert.Equal(result.Chart, Path.GetFullPath(chart));
            Assert.True(new FileInfo(chart).Length > 1000);
            Assert.Equal(5, seen.Count);
            Assert.Empty(model.Adapters.Names);
            TensorAssert.Close(Logits(model), before, 1e-7, "the model is left as it was");
            Assert.Equal("ComparisonTrainsBiases", Assert.Throws<GraloraException>(() =>
                MethodComparison.Run(model, Batches(1), null, new MethodComparisonOptions { Adapter = new AdapterConfig { Bias = "all" } })).ErrorId);
        }

        /// <summary>Trials write nothing and keep no adapter: a training job's output, checkpoint, resume or adapter setting is refused, not ignored.</summary>
        [Theory]
        [InlineData("OutputPath"), InlineData("SaveSteps"), InlineData("Resume"), InlineData("ResumeFrom"), InlineData("Adapter")]
        public void TrialsRefuseATrainingJobsSettings(string setting)
        {
            using var model = Tiny();
            var settings = setting switch
            {
                "OutputPath" => new TrainingSettings { OutputPath = tmp.File("out") },
                "SaveSteps" => new TrainingSettings { SaveSteps = 1 },
                "Resume" => new TrainingSettings { Resume = true },
                "ResumeFrom" => new TrainingSettings { ResumeFrom = tmp.File("out") },
                _ => new TrainingSettings { Adapter = "mine" },
            };
            var ex = Assert.Throws<GraloraException>(() => AdapterTrials.PrepareData(model, DatasetSource.FromFile(tmp.File("none.jsonl")), settings, "A test"));
            Assert.Equal("NotForTrials", ex.ErrorId);
            Assert.Contains(setting, ex.Message);

            if (setting is not ("OutputPath" or "SaveSteps")) return;
            var training = setting == "SaveSteps" ? Quick() with { SaveSteps = 1, OutputDirectory = tmp.File("out") } : Quick() with { OutputDirectory = tmp.File("out") };
            Assert.Equal("NotForTrials", Assert.Throws<GraloraException>(() =>
                MethodComparison.Run(model, Batches(1), Batches(1), new MethodComparisonOptions { Training = training })).ErrorId);
            Assert.False(Directory.Exists(tmp.File("out")));
            Assert.Empty(model.Adapters.Names);
        }

    }
}
