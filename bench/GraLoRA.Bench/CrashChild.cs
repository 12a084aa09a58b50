using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;
using static TorchSharp.torch;

namespace GraLoRA.Bench
{
    /// <summary>
    /// A training run that saves a checkpoint after every step, for the crash-safety test to SIGKILL at random moments:
    /// <c>GraLoRA.Bench crash-child --model FOLDER --output DIR [--steps 100000]</c>. It resumes from DIR's latest
    /// checkpoint when there is one, and prints "resumed N" or "fresh", then "saved N" after each checkpoint.
    /// </summary>
    static class CrashChild
    {
        sealed class Counting : IBatchSource
        {
            readonly List<DataBatch> _batches = Enumerable.Range(0, 8).Select(i =>
            {
                var ids = Enumerable.Range(0, 32).Select(j => (long)(100 + (i + j) % 16)).ToArray();
                return new DataBatch(2, 16, ids, ids.ToArray(), Enumerable.Repeat(1L, 32).ToArray(),
                    Enumerable.Range(0, 32).Select(j => (long)(j % 16)).ToArray(), null, null, new[] { 2 * i, 2 * i + 1 });
            }).ToList();
            public int BatchesPerEpoch => _batches.Count;
            public IEnumerable<DataBatch> Epoch(int epoch) => _batches;
        }

        sealed class Saved : IProgress<TrainingProgress>
        {
            public void Report(TrainingProgress value) => Console.WriteLine($"step {value.Step}");
        }

        public static int Run(string[] args)
        {
            TorchRuntime.EnsureInitialized();
            string model = BenchSupport.Arg(args, "--model", "");
            string output = BenchSupport.Arg(args, "--output", "");
            int steps = BenchSupport.Arg(args, "--steps", 100000);
            using var m = BaseModel.Load(model);
            manual_seed(1);
            m.AddAdapter("default", new AdapterConfig { Rank = 8, K = 2, Alpha = 16, TargetModules = new[] { AdapterConfig.AllLinear } });
            var latest = Trainer.Checkpoints(output).LastOrDefault();
            Console.WriteLine(latest.Path is null ? "fresh" : $"resumed {latest.Step}");
            Console.Out.Flush();
            var trainer = new Trainer(m, "default", new TrainingOptions
            {
                LearningRate = 1e-3, MaxSteps = steps, SaveSteps = 1, SaveTotalLimit = 2, LoggingSteps = 1, OutputDirectory = output,
                OverwriteOutputDirectory = latest.Path is null,   // killed before its first checkpoint: start that run again
            });
            var result = trainer.Train(new Counting(), progress: new Saved(), resumeFrom: latest.Path is null ? null : output);
            Console.WriteLine($"done {result.Steps}");
            return 0;
        }
    }
}
