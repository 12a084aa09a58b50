using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Training;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>Text + label data on a decoder: a "score" head read at the last real token, trained with the adapter.</summary>
    public sealed class ClassificationTrainingTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        static IEnumerable<IReadOnlyDictionary<string, object?>?> Records()
        {
            string[] good = { "great film", "lovely day", "well done", "very nice", "good work", "so happy" };
            string[] bad = { "awful film", "rainy mess", "badly done", "very poor", "weak work", "so sad" };
            foreach (var t in good) yield return new Dictionary<string, object?> { ["text"] = t, ["label"] = "positive" };
            foreach (var t in bad) yield return new Dictionary<string, object?> { ["text"] = t, ["label"] = "negative" };
        }

        [Fact]
        public void LearnsLabelsReportsAccuracyAndSavesTheHeadWithTheAdapter()
        {
            using var model = BaseModel.Load(TinyModelFactory.SaveWithTokenizer(tmp.File("tiny"), new TinyModelOptions { Seed = 4 }));
            manual_seed(1);
            model.AddAdapter("default", new AdapterConfig { Rank = 8, K = 2, TargetModules = new[] { AdapterConfig.AllLinear } });
            var data = TrainingData.Prepare(model.Tokenizer!, DatasetSource.FromRecords(Records()));
            Assert.Equal(DatasetFormat.Classification, data.Format);
            model.PrepareClassification("default", data.ClassLabels!.Count);
            Assert.Equal(2, model.Module.ClassificationLabels);
            Assert.True(((ModulesToSaveLinear)model.Module.GetSlot("score")).Copy("default").weight!.requires_grad);

            var eval = new BatchLoader(data.Train, data.PadTokenId, new BatchOptions { BatchSize = 12, Shuffle = false });
            var before = Trainer.Evaluate(model, eval);
            Assert.Equal(12, before.Tokens);                                           // one prediction per example
            new Trainer(model, "default", new TrainingOptions { LearningRate = 2e-3, MaxSteps = 40, Schedule = LearningRateSchedule.Constant })
                .Train(data.CreateTrainLoader(new BatchOptions { BatchSize = 4, Seed = 2 }));
            var after = Trainer.Evaluate(model, eval);
            Assert.True(after.Loss < before.Loss * 0.5, $"loss {before.Loss:F3} → {after.Loss:F3}");
            Assert.Equal(1.0, after.Accuracy);

            string folder = model.SaveAdapter("default", tmp.File("adapter"));
            Assert.Contains("base_model.model.score.weight", Safetensors.ReadHeader(Path.Combine(folder, PeftAdapterFormat.WeightsFile)).Entries.Keys);
            using var other = BaseModel.Load(tmp.File("tiny"));
            other.LoadAdapter(folder);                                                 // attaches a 2-label head itself
            var again = Trainer.Evaluate(other, eval);
            Assert.Equal(after.Loss, again.Loss, 5);
            Assert.Equal(1.0, again.Accuracy);
        }

        [Fact]
        public void HeadErrorsAreNamed()
        {
            using var model = BaseModel.Load(TinyModelFactory.SaveWithTokenizer(tmp.File("tiny2"), new TinyModelOptions()));
            Assert.Equal("NoClassificationHead", Assert.Throws<GraloraException>(() => model.Module.ClassificationLogits(zeros(1, 3, dtype: ScalarType.Int64))).ErrorId);
            Assert.Equal("InvalidClassificationHead", Assert.Throws<GraloraException>(() => model.Module.AttachClassificationHead(1)).ErrorId);
            model.AddAdapter("default", new AdapterConfig { Rank = 8 });
            model.PrepareClassification("default", 3);
            Assert.Equal("ClassificationHeadMismatch", Assert.Throws<GraloraException>(() => model.PrepareClassification("default", 4)).ErrorId);
        }
    }
}
