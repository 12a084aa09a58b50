using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>The training loop on tiny decoders with synthetic, learnable data.</summary>
    public sealed class TrainerTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        string? _folder;
        string Folder(string dtype = "float32") => _folder ??= TinyModelFactory.Save(tmp.File("tiny-" + dtype), new TinyModelOptions { Seed = 5, DType = dtype });

        BaseModel Model(double dropout = 0, string dtype = "float32", long adapterSeed = 1)
        {
            var model = BaseModel.Load(Folder(dtype));
            manual_seed(adapterSeed);
            model.AddAdapter("default", new AdapterConfig { Rank = 8, K = 2, Alpha = 16, Dropout = dropout, TargetModules = new[] { AdapterConfig.AllLinear } });
            return model;
        }

        /// <summary>Rows counting round a cycle of 16 tokens (ids 100..115) from different starts: the next token is the previous plus <paramref name="step"/>.</summary>
        static DataBatch Counting(int rows, int columns, int offset, int step = 1)
        {
            var ids = new long[rows * columns];
            var labels = new long[rows * columns];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < columns; c++)
                {
                    long start = offset * 5 + r * 3;
                    ids[r * columns + c] = 100 + (start + c) % 16;
                    labels[r * columns + c] = 100 + (c == 0 ? start : start + c - 1 + step) % 16;   // column 0 is never predicted
                }
            return Batch(rows, columns, ids, labels);
        }

        static DataBatch Batch(int rows, int columns, long[] ids, long[] labels) =>
            new(rows, columns, ids, labels, Enumerable.Repeat(1L, rows * columns).ToArray(),
                Enumerable.Range(0, rows).SelectMany(_ => Enumerable.Range(0, columns).Select(c => (long)c)).ToArray(), null, null, Enumerable.Range(0, rows).ToArray());

        static BatchList Data(int batches, int rows = 4, int columns = 12, long? seed = 3) =>
            new(Enumerable.Range(0, batches).Select(i => Counting(rows, columns, i)).ToList(), seed);

        static Dictionary<string, Tensor> AdapterWeights(BaseModel model) =>
            model.Adapters.StateDict("default").ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

        [Fact]
        public void LossFallsOnALearnablePattern()
        {
            using var model = Model();
            var trainer = new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 60, LoggingSteps = 5, WarmupSteps = 5 });
            var data = Data(8);
            double before = Trainer.Evaluate(model, data).Loss;
            var result = trainer.Train(data);
            double after = Trainer.Evaluate(model, data).Loss;
            Assert.Equal(60, result.Steps);
            Assert.True(after < before * 0.5, $"loss {before:F3} → {after:F3}");
            Assert.Equal(12, result.History.Count);
            Assert.All(model.Module.named_parameters().Where(p => !p.name.Contains("gralora_")), p => Assert.False(p.parameter.requires_grad));
        }

        [Fact]
        public void AccumulatingFourBatchesOfTwoEqualsOneBatchOfEight()
        {
            var micro = Enumerable.Range(0, 4).Select(i => Counting(2, 12, i)).ToList();
            // Labels masked unevenly, so per-micro-batch means would differ from the global mean.
            micro[1].Labels[5] = TrainingExample.IgnoreIndex;
            micro[2].Labels[3] = micro[2].Labels[4] = micro[2].Labels[15] = TrainingExample.IgnoreIndex;
            var whole = Batch(8, 12, micro.SelectMany(b => b.InputIds).ToArray(), micro.SelectMany(b => b.Labels).ToArray());

            using var a = Model();
            using var b = Model();
            new Trainer(a, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 1, GradientAccumulationSteps = 4, Schedule = LearningRateSchedule.Constant })
                .Train(new BatchList(micro));
            new Trainer(b, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 1, Schedule = LearningRateSchedule.Constant })
                .Train(new BatchList(new[] { whole }));
            var wa = AdapterWeights(a);
            var wb = AdapterWeights(b);
            string bKey = wa.Keys.First(k => k.EndsWith("gralora_B"));                       // B starts at zero; one step moves it
            using (var fresh = Model()) Assert.False(TensorAssert.Identical(wa[bKey], AdapterWeights(fresh)[bKey]), "a step must change the adapter");
            foreach (var key in wa.Keys) TensorAssert.Close(wa[key], wb[key], 1e-5, key);
        }

        [Theory]
        [InlineData(LearningRateSchedule.Linear, 0, 0.0)]
        [InlineData(LearningRateSchedule.Linear, 5, 0.5)]
        [InlineData(LearningRateSchedule.Linear, 10, 1.0)]
        [InlineData(LearningRateSchedule.Linear, 55, 0.5)]
        [InlineData(LearningRateSchedule.Linear, 100, 0.0)]
        [InlineData(LearningRateSchedule.Cosine, 55, 0.5)]
        [InlineData(LearningRateSchedule.Cosine, 10, 1.0)]
        [InlineData(LearningRateSchedule.Cosine, 100, 0.0)]
        [InlineData(LearningRateSchedule.Constant, 70, 1.0)]
        public void SchedulesFollowTransformersCurves(LearningRateSchedule schedule, int step, double factor)
        {
            var options = new TrainingOptions { Schedule = schedule, WarmupSteps = 10 };
            Assert.Equal(factor, options.LearningRateFactor(step, 100), 10);
            Assert.Equal(options.LearningRateFactor(step, 100), (options with { WarmupSteps = 0, WarmupRatio = 0.1 }).LearningRateFactor(step, 100), 10);
        }

        [Fact]
        public void ResumingGivesBitForBitTheWeightsOfAnUninterruptedRun()
        {
            var data = Data(6);
            TrainingOptions Options(string dir) => new() { LearningRate = 3e-3, MaxSteps = 20, GradientAccumulationSteps = 2, WarmupSteps = 3, Schedule = LearningRateSchedule.Cosine,
                                                           WeightDecay = 0.01, OutputDirectory = tmp.File(dir), SaveSteps = 5 };
            using var straight = Model(dropout: 0.1);
            new Trainer(straight, "default", Options("straight")).Train(data);

            using var first = Model(dropout: 0.1);
            var cancel = new CancellationTokenSource();
            var stopped = new Trainer(first, "default", Options("resumed") with { LoggingSteps = 1 })
                .Train(data, progress: new SyncProgress(p => { if (p.Step == 10) cancel.Cancel(); }), cancellation: cancel.Token);
            Assert.True(stopped.Cancelled);
            Assert.Equal(10, stopped.Steps);
            Assert.Equal(Path.Combine(tmp.File("resumed"), "checkpoint-10"), stopped.LastCheckpoint);

            using var second = Model(dropout: 0.1, adapterSeed: 99);                   // different init: everything must come from the checkpoint
            var resumed = new Trainer(second, "default", Options("resumed")).Train(data, resumeFrom: tmp.File("resumed"));
            Assert.Equal(20, resumed.Steps);
            var expected = AdapterWeights(straight);
            var actual = AdapterWeights(second);
            foreach (var key in expected.Keys) Assert.True(TensorAssert.Identical(expected[key], actual[key]), key);
        }

        [Fact]
        public void AResumedRunLogsEachStepOnceInOrder()
        {
            TrainingOptions Options(string dir) => new() { LearningRate = 3e-3, MaxSteps = 6, LoggingSteps = 1, SaveSteps = 3, SaveTotalLimit = 5, OutputDirectory = tmp.File(dir) };
            using (var model = Model()) new Trainer(model, "default", Options("log")).Train(Data(4));
            string metrics = Path.Combine(tmp.File("log"), "metrics.jsonl");
            var first = File.ReadAllLines(metrics);
            using (var model = Model())
                new Trainer(model, "default", Options("log")).Train(Data(4), resumeFrom: Path.Combine(tmp.File("log"), "checkpoint-3"));
            var lines = File.ReadAllLines(metrics);
            Assert.Equal(Enumerable.Range(1, 6), lines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32()));
            Assert.Equal(first.Take(3), lines.Take(3));                               // steps before the checkpoint untouched
            static double Loss(string line) => System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("loss").GetDouble();
            Assert.Equal(first.Skip(3).Select(Loss), lines.Skip(3).Select(Loss));   // and the steps after it logged again, as before
        }

        [Fact]
        public void EarlyStoppingKeepsTheBestCheckpoint()
        {
            // Validation asks for "+2" where training teaches "+1": it gets worse as training succeeds.
            var validation = new BatchList(Enumerable.Range(0, 2).Select(i => Counting(4, 12, 50 + i, step: 7)).ToList());
            using var model = Model();
            var result = new Trainer(model, "default", new TrainingOptions
            {
                LearningRate = 1e-2, MaxSteps = 50, EvalSteps = 2, EarlyStoppingPatience = 2, OutputDirectory = tmp.File("early"), SaveSteps = 2, SaveTotalLimit = 1,
            }).Train(Data(8), validation);
            Assert.True(result.StoppedEarly);
            Assert.True(result.Steps < 50);
            Assert.Equal(result.BestStep + 4, result.Steps);                         // two evaluations without improvement
            Assert.Equal(Path.Combine(tmp.File("early"), $"checkpoint-{result.BestStep}"), result.BestCheckpoint);
            Assert.True(Directory.Exists(result.BestCheckpoint));
            var kept = Trainer.Checkpoints(tmp.File("early")).Select(c => c.Step).ToList();
            Assert.Equal(new[] { result.BestStep!.Value, result.Steps }.Distinct().OrderBy(s => s), kept);   // limit 1 plus the best
        }

        [Fact]
        public void AFreshRunRefusesAFolderWithAnEarlierRunUnlessToldToReplaceIt()
        {
            using var model = Model();
            string output = tmp.File("earlier");
            Directory.CreateDirectory(Path.Combine(output, "checkpoint-9"));
            File.WriteAllText(Path.Combine(output, "metrics.jsonl"), "{\"step\": 9}\n");

            var ex = Assert.Throws<GraloraException>(() =>
                new Trainer(model, "default", new TrainingOptions { MaxSteps = 1, OutputDirectory = output }).Train(Data(1)));
            Assert.Equal("OutputExists", ex.ErrorId);
            Assert.True(Directory.Exists(Path.Combine(output, "checkpoint-9")));

            var result = new Trainer(model, "default", new TrainingOptions { MaxSteps = 1, OutputDirectory = output, OverwriteOutputDirectory = true }).Train(Data(1));
            Assert.Equal(new[] { 1 }, Trainer.Checkpoints(output).Select(c => c.Step));
            Assert.False(Directory.Exists(Path.Combine(output, "checkpoint-9")));
            Assert.Single(File.ReadAllLines(Path.Combine(output, "metrics.jsonl")));
            Assert.Equal(1, result.Steps);

            var both = Assert.Throws<GraloraException>(() =>
                new Trainer(model, "default", new TrainingOptions { MaxSteps = 2, OutputDirectory = output, OverwriteOutputDirectory = true }).Train(Data(1), resumeFrom: output));
            Assert.Equal("InvalidTrainingOption", both.ErrorId);
            Assert.Equal(new[] { 1 }, Trainer.Checkpoints(output).Select(c => c.Step));
        }

        [Fact]
        public void WritesMetricsTensorBoardAndPeftCheckpoints()
        {
            using var model = Model();
            var result = new Trainer(model, "default", new TrainingOptions { MaxSteps = 6, LoggingSteps = 2, OutputDirectory = tmp.File("out"), SaveSteps = 3 })
                .Train(Data(4), Data(2, seed: null));
            var lines = File.ReadAllLines(Path.Combine(tmp.File("out"), "metrics.jsonl"));
            Assert.Equal(3, lines.Length);
            Assert.Contains("\"eval_loss\":", lines[^1]);
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(tmp.File("out"), "runs"), "events.out.tfevents.*", SearchOption.AllDirectories));
            Assert.Equal(new[] { 3, 6 }, Trainer.Checkpoints(tmp.File("out")).Select(c => c.Step));
            var png = File.ReadAllBytes(result.Chart!);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png.Take(4));
            Assert.True(png.Length > 5000, "a chart with axes and three series is more than a blank image");
            using var other = BaseModel.Load(Folder());
            other.LoadAdapter(result.LastCheckpoint!);
            Assert.True(TensorAssert.Identical(AdapterWeights(model).Values.First(), other.Adapters.StateDict("default").Values.First()));
        }

        [Fact]
        public void NoTensorsLeakAcrossSteps()
        {
            using var model = Model(dropout: 0.1);
            var counts = new List<long>();
            var resident = new List<long>();
            new Trainer(model, "default", new TrainingOptions { MaxSteps = 200, LoggingSteps = 10, GradientAccumulationSteps = 2, MaxGradNorm = 0 })
                .Train(Data(4, rows: 2, columns: 8), progress: new SyncProgress(p => { counts.Add(Tensor.TotalCount); resident.Add(p.MemoryBytes); }));
            Assert.Equal(20, counts.Count);
            Assert.True(counts[^1] <= counts[1], $"live tensors grew from {counts[1]} to {counts[^1]}");
            // Resident memory settles after the first steps (allocator caches); 180 more steps must not keep adding to it.
            Assert.True(resident[^1] - resident[1] < 32L << 20, $"resident memory grew by {(resident[^1] - resident[1]) >> 20} MB over 180 steps");
        }

        [Fact]
        public void HalfPrecisionBaseTrainsFloat32AdapterAndLeavesTheBaseAlone()
        {
            _folder = null;
            using var model = Model(dtype: "bfloat16");
            var baseWeight = model.Module.named_parameters().First(p => p.name.EndsWith("q_proj.base_layer.weight")).parameter.detach().clone();
            Assert.All(model.Adapters.StateDict("default").Values, t => Assert.Equal(ScalarType.Float32, t.dtype));
            var data = Data(6);
            double before = Trainer.Evaluate(model, data).Loss;
            new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 40 }).Train(data);
            double after = Trainer.Evaluate(model, data).Loss;
            Assert.True(after < before * 0.5, $"loss {before:F3} → {after:F3}");
            Assert.True(TensorAssert.Identical(baseWeight, model.Module.named_parameters().First(p => p.name.EndsWith("q_proj.base_layer.weight")).parameter));
        }

        [Fact]
        public void BadOptionsAreNamed()
        {
            using var model = Model();
            foreach (var (options, name) in new[]
            {
                (new TrainingOptions { LearningRate = 0 }, "LearningRate"), (new TrainingOptions { GradientAccumulationSteps = 0 }, "GradientAccumulationSteps"),
                (new TrainingOptions { WarmupRatio = 1.5 }, "WarmupRatio"), (new TrainingOptions { SaveSteps = 5 }, "SaveSteps"),
            })
            {
                var ex = Assert.Throws<GraloraException>(() => new Trainer(model, "default", options));
                Assert.Equal("InvalidTrainingOption", ex.ErrorId);
                Assert.Contains(name, ex.Message);
            }
            Assert.Equal("AdapterNotFound", Assert.Throws<GraloraException>(() => new Trainer(model, "nope", new TrainingOptions())).ErrorId);

            // Nothing to predict (e.g. classification examples, all labels -100) is an error, not a silent loss of 0.
            var unlabeled = Counting(2, 12, 0);
            Array.Fill(unlabeled.Labels, (long)TrainingExample.IgnoreIndex);
            Assert.Equal("NoTargetTokens", Assert.Throws<GraloraException>(() => new Trainer(model, "default", new TrainingOptions { MaxSteps = 1 }).Train(new BatchList(new[] { unlabeled }))).ErrorId);
            Assert.Equal("NoTargetTokens", Assert.Throws<GraloraException>(() => Trainer.Evaluate(model, new BatchList(new[] { unlabeled }))).ErrorId);
        }

        /// <summary>Fixed batches, reshuffled per epoch from a seed (or kept in order).</summary>
        sealed class BatchList : IBatchSource
        {
            readonly IReadOnlyList<DataBatch> _batches;
            readonly long? _seed;
            public BatchList(IReadOnlyList<DataBatch> batches, long? seed = null) => (_batches, _seed) = (batches, seed);
            public int BatchesPerEpoch => _batches.Count;
            public IEnumerable<DataBatch> Epoch(int epoch) =>
                _seed is null ? _batches : DataShuffle.Permutation(_batches.Count, DataShuffle.EpochSeed((int)_seed.Value, epoch)).Select(i => _batches[i]);
        }

        sealed class SyncProgress : IProgress<TrainingProgress>
        {
            readonly Action<TrainingProgress> _report;
            public SyncProgress(Action<TrainingProgress> report) => _report = report;
            public void Report(TrainingProgress value) => _report(value);
        }

        [Fact]
        public void GradientCheckpointingGivesTheSameGradients()
        {
            using var scope = NewDisposeScope();
            using var model = Model(dropout: 0.2);
            var batch = Counting(2, 12, 0);
            Dictionary<string, Tensor> Gradients(bool checkpoint)
            {
                model.Module.GradientCheckpointing = checkpoint;
                model.Module.train();
                manual_seed(77);                                                   // same dropout masks both times
                foreach (var p in model.Module.parameters()) p.grad = null;
                Trainer.LossSum(model.Module, batch, CPU).backward();
                return model.Module.named_parameters().Where(p => p.parameter.requires_grad)
                    .ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
            }
            var plain = Gradients(false);
            int replays = LayerCheckpoint.Replays;
            var checkpointed = Gradients(true);
            Assert.Equal(model.Config.NumLayers, LayerCheckpoint.Replays - replays);      // every layer was recomputed in backward
            Assert.Equal(plain.Keys.OrderBy(k => k), checkpointed.Keys.OrderBy(k => k));
            Assert.Contains(plain.Values, g => g.abs().max().item<float>() > 0);
            foreach (var key in plain.Keys) TensorAssert.Close(checkpointed[key], plain[key], 1e-5, key);
            model.Module.GradientCheckpointing = false;

            // Through the trainer: the option switches it on for the run only.
            replays = LayerCheckpoint.Replays;
            new Trainer(model, "default", new TrainingOptions { MaxSteps = 2, GradientCheckpointing = true }).Train(Data(2));
            Assert.Equal(2 * model.Config.NumLayers, LayerCheckpoint.Replays - replays);
            Assert.False(model.Module.GradientCheckpointing);
        }
    }
}
