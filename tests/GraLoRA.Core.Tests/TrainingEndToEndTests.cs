using System;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>Files on disk → data pipeline → trainer → evaluation, for every causal-LM data format.</summary>
    public sealed class TrainingEndToEndTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        BaseModel Model()
        {
            var model = BaseModel.Load(TinyModelFactory.SaveWithTokenizer(tmp.File("tiny-" + Guid.NewGuid().ToString("N")), new TinyModelOptions { Seed = 8 }));
            manual_seed(3);
            model.AddAdapter("default", new AdapterConfig { Rank = 16, K = 2, Alpha = 32, TargetModules = new[] { AdapterConfig.AllLinear } });
            return model;
        }

        static string Repo(string relative) => Path.Combine(TestEnvironment.RepoRoot, relative);

        public static TheoryData<string, string> Formats() => new()
        {
            { "text", "{\"text\": \"The sky is blue and the grass is green.\"}\n{\"text\": \"Two plus two is four; three plus three is six.\"}\n" },
            { "prompt-completion", "{\"prompt\": \"Colour of the sky:\", \"completion\": \" blue\"}\n{\"prompt\": \"Colour of grass:\", \"completion\": \" green\"}\n" },
            { "alpaca", "" },
            { "chat", "" },
        };

        [Theory, MemberData(nameof(Formats))]
        public void LossFallsForEveryFormat(string format, string content)
        {
            string file = format switch
            {
                "alpaca" => Repo("examples/data/tiny-alpaca.jsonl"),
                "chat" => Repo("examples/data/tiny-chat.jsonl"),
                _ => tmp.File(format + ".jsonl"),
            };
            if (content.Length > 0) File.WriteAllText(file, content);
            using var model = Model();
            // Byte-level tokens: the alpaca preamble alone is ~190 tokens.
            var data = TrainingData.Prepare(model.Tokenizer!, DatasetSource.FromFile(file), options: new DataOptions { MaxLength = format == "alpaca" ? 320 : 96 });
            var loader = data.CreateTrainLoader(new BatchOptions { BatchSize = 4, Seed = 1 });
            var eval = new BatchLoader(data.Train, data.PadTokenId, new BatchOptions { BatchSize = 8, Shuffle = false });
            double before = Trainer.Evaluate(model, eval).Loss;
            new Trainer(model, "default", new TrainingOptions { LearningRate = 5e-3, MaxSteps = 30, WarmupSteps = 3 }).Train(loader);
            double after = Trainer.Evaluate(model, eval).Loss;
            Assert.True(after < before * 0.8, $"{format}: loss {before:F3} → {after:F3}");
        }

        [Fact]
        public void ExactMatchCountsAnswersTheModelHasLearned()
        {
            string file = tmp.File("qa.jsonl");
            File.WriteAllText(file, "{\"prompt\": \"Q: sky?\\nA:\", \"completion\": \" blue\"}\n{\"prompt\": \"Q: grass?\\nA:\", \"completion\": \" green\"}\n");
            using var model = Model();
            var before = ExactMatch.Evaluate(model, DatasetSource.FromFile(file));
            Assert.Equal(2, before.Total);
            Assert.Equal(0, before.Correct);                                           // a random model does not know
            var data = TrainingData.Prepare(model.Tokenizer!, DatasetSource.FromFile(file), options: new DataOptions { MaxLength = 32 });
            new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 80, Schedule = LearningRateSchedule.Constant })
                .Train(data.CreateTrainLoader(new BatchOptions { BatchSize = 2 }));
            var after = ExactMatch.Evaluate(model, DatasetSource.FromFile(file));
            Assert.True(after.Correct == 2, string.Join(" | ", after.Samples.Select(s => $"{s.Expected} → {s.Generated}")));
            Assert.Equal(1.0, after.Accuracy);
            Assert.Equal("ExactMatchNotSupported", Assert.Throws<GraloraException>(() =>
                ExactMatch.Evaluate(model, DatasetSource.FromRecords(new[] { new System.Collections.Generic.Dictionary<string, object?> { ["text"] = "x" } }))).ErrorId);
        }

        [Fact]
        public void PackedSequencesTrainWithoutCrossingSampleBoundaries()
        {
            using var model = Model();
            var data = TrainingData.Prepare(model.Tokenizer!, DatasetSource.FromFile(Repo("examples/data/tiny-chat.jsonl")),
                options: new DataOptions { MaxLength = 256, Packing = true });
            var loader = data.CreateTrainLoader(new BatchOptions { BatchSize = 2, Seed = 1 });
            var first = loader.Epoch(0).First();
            Assert.NotNull(first.SegmentIds);
            Assert.Contains(first.SegmentIds!, s => s > 1);                          // really packed

            // A packed row computes, for each sample, what the sample computes alone.
            using (no_grad())
            {
                var row = Enumerable.Range(0, first.SequenceLength).ToArray();
                long Seg(int t) => first.SegmentIds![t];
                int second = row.First(t => Seg(t) == 2), end = row.Last(t => Seg(t) == 2) + 1;
                var ids = tensor(first.InputIds.Take(first.SequenceLength).ToArray(), new long[] { 1, first.SequenceLength });
                var packed = model.Module.Forward(ids, tensor(first.AttentionMask.Take(first.SequenceLength).ToArray(), new long[] { 1, first.SequenceLength }),
                    tensor(first.PositionIds.Take(first.SequenceLength).ToArray(), new long[] { 1, first.SequenceLength }),
                    segmentIds: tensor(first.SegmentIds!.Take(first.SequenceLength).ToArray(), new long[] { 1, first.SequenceLength })).Logits;
                var alone = model.Module.Forward(ids.narrow(1, second, end - second)).Logits;
                TensorAssert.Close(packed.narrow(1, second, end - second), alone, 1e-4, "second packed sample");
            }
            double before = Trainer.Evaluate(model, loader).Loss;
            new Trainer(model, "default", new TrainingOptions { LearningRate = 5e-3, MaxSteps = 20 }).Train(loader);
            Assert.True(Trainer.Evaluate(model, loader).Loss < before);
        }
    }
}
