using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Training;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>Adapters on BERT/RoBERTa classifiers: PEFT's default targets, the head as a module to save, PEFT's file layout, training.</summary>
    public sealed class EncoderAdapterTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        static string Folder(string name) => Path.Combine(TestEnvironment.Fixtures, "models", name);

        static readonly int[][] Ids = { new[] { 5, 17, 42, 99, 3, 8, 2 }, new[] { 7, 7, 120, 64, 33, 1, 1 } };

        [Theory]
        [InlineData("bert", AdapterMethod.GraLoRA, new[] { "classifier.weight", "classifier.bias" })]
        [InlineData("roberta", AdapterMethod.GraLoRA, new[] { "classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias" })]
        [InlineData("bert", AdapterMethod.LoRA, new[] { "classifier.weight", "classifier.bias" })]
        public void HeadTrainsAsModuleToSaveAndRoundTripsInPeftLayout(string arch, AdapterMethod method, string[] headKeys)
        {
            using var model = BaseModel.Load(Folder(arch + "_seqcls"));
            var targets = model.AddAdapter("default", new AdapterConfig { Method = method, Rank = 8, K = method == AdapterMethod.GraLoRA ? 2 : null });
            // PEFT's default for bert/roberta: query and value of every layer.
            Assert.Equal(new[] { "query", "value" }.SelectMany(t => new[] { 0, 1 }.Select(l => $"{arch}.encoder.layer.{l}.attention.self.{t}")).OrderBy(s => s),
                         targets.OrderBy(s => s));
            var config = model.Adapters.Config("default");
            Assert.Equal(new[] { "classifier" }, config.ModulesToSave);
            Assert.Equal("SEQ_CLS", config.TaskType);
            // Non-zero adapter weights and a changed head, so the round trip proves something.
            manual_seed(3);
            using (no_grad())
                foreach (var (_, t) in model.Adapters.StateDict("default")) t.copy_(randn_like(t) * 0.1);
            var trainable = model.Network.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
            Assert.Contains(trainable, n => n.Contains("classifier", StringComparison.Ordinal) && n.Contains("modules_to_save.default", StringComparison.Ordinal));
            Assert.DoesNotContain(trainable, n => n.Contains("original_module", StringComparison.Ordinal) || n.Contains("base_layer", StringComparison.Ordinal));
            using var before = model.ForwardEncoder(Ids);

            string saved = model.SaveAdapter("default", tmp.File(arch + method));
            var keys = Safetensors.ReadHeader(Path.Combine(saved, PeftAdapterFormat.WeightsFile)).Entries.Keys.ToHashSet();
            foreach (var k in headKeys) Assert.Contains("base_model.model." + k, keys);
            string prefix = method == AdapterMethod.GraLoRA ? "gralora_A" : "lora_A.weight";
            Assert.Contains($"base_model.model.{arch}.encoder.layer.1.attention.self.value.{prefix}", keys);
            Assert.DoesNotContain(keys, k => k.Contains("modules_to_save") || k.Contains(".default."));
            using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(saved, "adapter_config.json"))))
            {
                Assert.Equal(new[] { "query", "value" }, json.RootElement.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()).OrderBy(s => s));
                Assert.Equal("classifier", json.RootElement.GetProperty("modules_to_save")[0].GetString());
                Assert.Equal("SEQ_CLS", json.RootElement.GetProperty("task_type").GetString());
            }

            using var fresh = BaseModel.Load(Folder(arch + "_seqcls"));
            using var untouched = fresh.ForwardEncoder(Ids);
            Assert.True(TensorAssert.RelativeError(untouched.LogitsTensor!, before.LogitsTensor!) > 1e-3, "the adapter changes the logits");
            fresh.LoadAdapter(saved);
            using var after = fresh.ForwardEncoder(Ids);
            TensorAssert.Close(after.LogitsTensor!, before.LogitsTensor!, 1e-6, "logits after reload");

            // Merged export: a plain checkpoint that computes the same logits.
            string exported = fresh.Export(tmp.File(arch + method + "-merged"));
            using var merged = BaseModel.Load(exported);
            using var mergedOut = merged.ForwardEncoder(Ids);
            TensorAssert.Close(mergedOut.LogitsTensor!, before.LogitsTensor!, 1e-4, "merged checkpoint");
        }

        [Fact]
        public void BareEncoderRefusesAClassifierAdapter()
        {
            using var model = BaseModel.Load(Folder("bert_seqcls"));
            model.AddAdapter("default", new AdapterConfig { Rank = 8 });
            string saved = model.SaveAdapter("default", tmp.File("a"));
            using var bare = BaseModel.Load(Folder("bert"));
            Assert.Equal("NoClassificationHead", Assert.Throws<GraloraException>(() => bare.LoadAdapter(saved)).ErrorId);
            bare.AddAdapter("x", new AdapterConfig { Rank = 8 });
            Assert.Equal("FEATURE_EXTRACTION", bare.Adapters.Config("x").TaskType);
            Assert.Equal("NoClassificationHead", Assert.Throws<GraloraException>(() => bare.PrepareClassification("x", 2)).ErrorId);
        }

        static IEnumerable<IReadOnlyDictionary<string, object?>?> PairRecords()
        {
            // The label says whether the second text repeats the first's topic word.
            string[] topics = { "cat", "dog", "car", "sun", "tea", "map" };
            for (int i = 0; i < topics.Length; i++)
            {
                yield return new Dictionary<string, object?> { ["text"] = $"about the {topics[i]}", ["text_pair"] = $"a {topics[i]} again", ["label"] = "same" };
                yield return new Dictionary<string, object?> { ["text"] = $"about the {topics[i]}", ["text_pair"] = $"a {topics[(i + 3) % topics.Length]} instead", ["label"] = "different" };
            }
        }

        [Fact]
        public void TrainsOnTextPairsAndReportsClassificationMetrics()
        {
            string folder = TinyEncoderFactory.Save(tmp.File("tiny"), new TinyEncoderOptions
            {
                Labels = new[] { "different", "same" }, Seed = 1, Words = new[] { "about", "the", "cat", "dog", "car", "sun", "tea", "map", "again", "instead" },
            });
            using var model = BaseModel.Load(folder);
            Assert.True(model.Encoder!.IsSequenceClassification);
            Assert.Equal(new[] { "different", "same" }, model.ClassLabels);
            manual_seed(1);
            model.AddAdapter("default", new AdapterConfig { Rank = 8, K = 2, TargetModules = new[] { AdapterConfig.AllLinear } });
            var data = TrainingData.Prepare(model.Tokenizer!, DatasetSource.FromRecords(PairRecords()));
            Assert.Equal(DatasetFormat.Classification, data.Format);
            Assert.NotNull(data.Train[0].TokenTypeIds);
            Assert.Contains(1, data.Train[0].TokenTypeIds!);
            model.PrepareClassification("default", data.ClassLabels!.Labels);

            var eval = new BatchLoader(data.Train, data.PadTokenId, new BatchOptions { BatchSize = 12, Shuffle = false });
            Assert.NotNull(eval.Epoch(0).First().TokenTypeIds);
            var before = Trainer.Evaluate(model, eval);
            new Trainer(model, "default", new TrainingOptions { LearningRate = 3e-3, MaxSteps = 60, Schedule = LearningRateSchedule.Constant })
                .Train(data.CreateTrainLoader(new BatchOptions { BatchSize = 4, Seed = 2 }));
            var after = Trainer.Evaluate(model, eval);
            Assert.True(after.Loss < before.Loss * 0.5, $"loss {before.Loss:F3} → {after.Loss:F3}");
            var metrics = after.Classification!;
            Assert.Equal(new[] { "different", "same" }, metrics.Labels);
            Assert.Equal(12, metrics.Count);
            Assert.Equal(12, metrics.ConfusionMatrix.Sum(r => r.Sum()));
            Assert.Equal(after.Accuracy, metrics.Accuracy);
            Assert.True(metrics.Accuracy >= 0.9, metrics.ToString());
        }

        [Fact]
        public void RobertaIgnoresPairTokenTypes()
        {
            // RoBERTa has one token type: the pair's type ids (0/1) are not passed, as its tokenizer returns none.
            string folder = TinyEncoderFactory.Save(tmp.File("tiny-roberta"), new TinyEncoderOptions { Architecture = "roberta", Labels = new[] { "different", "same" } });
            using var model = BaseModel.Load(folder);
            model.AddAdapter("default", new AdapterConfig { Rank = 8 });
            var data = TrainingData.Prepare(model.Tokenizer!, DatasetSource.FromRecords(PairRecords()));
            model.PrepareClassification("default", data.ClassLabels!.Labels);
            var result = Trainer.Evaluate(model, new BatchLoader(data.Train, data.PadTokenId, new BatchOptions { BatchSize = 6, Shuffle = false }));
            Assert.Equal(12, result.Classification!.Count);
            Assert.Equal(1, model.Tokenizer!.PadTokenId);
        }
    }
}
