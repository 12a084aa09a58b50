using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Distributed;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Training;
using static TorchSharp.torch;

namespace GraLoRA.Bench
{
    /// <summary>
    /// One rank of a data-parallel run, as the distributed tests and the `dist` bench start it — alone, or as every
    /// rank of <c>mpirun -np N</c>:
    /// <c>GraLoRA.Bench dist-child --model FOLDER --out DIR [--steps 5] [--batch 4] [--examples 40] [--accum 1] [--lr 1e-2]
    /// [--threads N] [--validation] [--save-steps N] [--stop-at N] [--resume] [--kill-at N|--hang-at N|--nan-at N --fault-rank R] [--nan-loss-at N --nan-loss-rank R]
    /// [--seq 0] [--rank 8] [--dropout 0] [--time] [--model-rank-1 FOLDER]</c>.
    /// The data: --examples counting sequences of lengths 6–17 (a third of each is prompt, label −100), batched by a
    /// BatchLoader of global batches (--batch per rank × ranks). Every rank writes its adapter weights to
    /// DIR/rank-R.safetensors and its warnings to DIR/rank-R.warnings; rank 0 prints "step N loss L" per step.
    /// </summary>
    static class DistChild
    {
        public static int Run(string[] args)
        {
            try
            {
                return Train(args);
            }
            catch (GraloraException ex)
            {
                // Printed before exiting: MPI's exit handler then aborts the job, and mpirun stops the other ranks.
                Console.Error.WriteLine($"error {ex.ErrorId}: {ex.Message}");
                return 1;
            }
        }

        static int Train(string[] args)
        {
            string model = BenchSupport.Arg(args, "--model", ""), output = Path.GetFullPath(BenchSupport.Arg(args, "--out", "dist-out"));
            int steps = BenchSupport.Arg(args, "--steps", 5), batch = BenchSupport.Arg(args, "--batch", 4), count = BenchSupport.Arg(args, "--examples", 40);
            int threads = BenchSupport.Arg(args, "--threads", 0), faultRank = BenchSupport.Arg(args, "--fault-rank", 1);
            int killAt = BenchSupport.Arg(args, "--kill-at", 0), hangAt = BenchSupport.Arg(args, "--hang-at", 0), nanAt = BenchSupport.Arg(args, "--nan-at", 0);
            int nanLossAt = BenchSupport.Arg(args, "--nan-loss-at", 0), nanLossRank = BenchSupport.Arg(args, "--nan-loss-rank", 0);
            int stopAt = BenchSupport.Arg(args, "--stop-at", 0), saveSteps = BenchSupport.Arg(args, "--save-steps", 0), seq = BenchSupport.Arg(args, "--seq", 0);
            bool resume = args.Contains("--resume"), validate = args.Contains("--validation"), time = args.Contains("--time");

            TorchRuntime.EnsureInitialized();
            if (threads > 0) set_num_threads(threads);
            var launch = LaunchEnvironment.Current;
            ICommunicator? communicator = launch.IsDistributed ? MpiCommunicator.World() : null;
            var timed = communicator is null ? null : new TimedCommunicator(communicator);
            using var world = timed is null ? null : new DataParallel(timed);
            int rank = world?.Rank ?? 0, size = world?.WorldSize ?? 1;
            Directory.CreateDirectory(output);

            if (rank == 1 && BenchSupport.Arg(args, "--model-rank-1", "") is { Length: > 0 } other) model = other;   // a mismatch, on purpose
            using var network = BaseModel.Load(model);
            manual_seed(11);                                    // rank 0's adapter init is broadcast; the others' is overwritten
            network.AddAdapter("default", new AdapterConfig { Rank = BenchSupport.Arg(args, "--rank", 8), K = 2, Alpha = 16, Dropout = double.Parse(BenchSupport.Arg(args, "--dropout", "0"), System.Globalization.CultureInfo.InvariantCulture), TargetModules = new[] { AdapterConfig.AllLinear } });
            var examples = Examples(count, seq);
            var loader = new BatchLoader(examples, 0, new BatchOptions { BatchSize = batch * size, Seed = 7 });
            var validation = validate ? new BatchLoader(Examples(13, seq, offset: 1000), 0, new BatchOptions { BatchSize = 4 * size, Shuffle = false }) : null;

            var options = new TrainingOptions
            {
                LearningRate = double.Parse(BenchSupport.Arg(args, "--lr", "1e-2"), System.Globalization.CultureInfo.InvariantCulture), MaxSteps = steps,
                GradientAccumulationSteps = BenchSupport.Arg(args, "--accum", 1), WarmupSteps = 1, LoggingSteps = 1, MaxGradNorm = 1.0, WeightDecay = 0.01,
                EvalSteps = validate ? 2 : null, OutputDirectory = saveSteps > 0 || resume || stopAt > 0 ? Path.Combine(output, "run") : null,
                SaveSteps = saveSteps > 0 ? saveSteps : null, Distributed = world,
            };
            var trainer = new Trainer(network, "default", options);
            var warnings = new List<string>();
            trainer.Warning = warnings.Add;
            var embedding = network.Network.named_parameters().First(p => p.name.EndsWith("embed_tokens.weight", StringComparison.Ordinal)).parameter;
            float? saved = null;
            trainer.FaultInjection = (step, phase, parameters) =>
            {
                if (phase == "forward" && rank == nanLossRank)
                {
                    // A poisoned (frozen) embedding row makes this rank's loss NaN at --nan-loss-at; restored afterwards.
                    using var _ = no_grad();
                    if (step == nanLossAt && saved is null) { saved = embedding[100, 0].item<float>(); embedding[100, 0] = float.NaN; }
                    else if (step != nanLossAt && saved is { } value) { embedding[100, 0] = value; saved = null; }
                }
                if (phase != "backward" || rank != faultRank) return;
                if (step == killAt) { Console.Out.Flush(); Process.GetCurrentProcess().Kill(); }
                if (step == hangAt) { Console.WriteLine($"rank {rank} hangs at step {step}"); Console.Out.Flush(); Thread.Sleep(Timeout.Infinite); }
                if (step == nanAt) using (no_grad()) parameters[parameters.Count / 2].Parameter.grad![0] = float.NaN;
            };
            using var cancel = new CancellationTokenSource();
            Stopwatch? steady = null;                           // from the end of step 1 (warm-up) on
            int firstTimedStep = 0;
            var progress = new Reporter(p =>
            {
                if (steady is null) { steady = Stopwatch.StartNew(); firstTimedStep = p.Step; timed?.Reset(); }
                if (rank == 0) Console.WriteLine($"step {p.Step} loss {p.Loss:R}" + (p.ValidationLoss is { } v ? $" eval {v:R}" : ""));
                if (p.Step == stopAt && rank == 0) cancel.Cancel();     // rank 0 alone is asked; every rank must stop with it
            });
            var result = trainer.Train(loader, validation, progress, cancel.Token, resume ? options.OutputDirectory : null);

            var weights = network.Adapters.StateDict("default").ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu());
            Safetensors.Write(Path.Combine(output, $"rank-{rank}.safetensors"), weights);
            File.WriteAllLines(Path.Combine(output, $"rank-{rank}.warnings"), warnings);
            if (time && rank == 0)
                Console.WriteLine($"TIME steps {result.Steps - firstTimedStep} seconds {steady?.Elapsed.TotalSeconds ?? 0:R} allreduce {timed?.GradientSeconds ?? 0:R} ranks {size} threads {get_num_threads()}");
            Console.WriteLine($"rank {rank} of {size} done: {result.Steps} steps{(result.Cancelled ? ", cancelled" : "")}, final loss {result.FinalLoss:R}");
            return 0;
        }

        /// <summary>Counting sequences (ids 100…115 round a cycle) of lengths 6–17; the first third of each is prompt.</summary>
        static List<TrainingExample> Examples(int count, int fixedLength, int offset = 0)
        {
            var list = new List<TrainingExample>();
            for (int i = 0; i < count; i++)
            {
                int length = fixedLength > 0 ? fixedLength : 6 + (i * 7 + offset) % 12;
                var ids = Enumerable.Range(0, length).Select(c => 100 + (i * 3 + offset + c) % 16).ToArray();
                var labels = ids.Select((id, c) => c < length / 3 ? TrainingExample.IgnoreIndex : id).ToArray();
                list.Add(new TrainingExample(ids, labels));
            }
            return list;
        }

        sealed class Reporter : IProgress<TrainingProgress>
        {
            readonly Action<TrainingProgress> _report;
            public Reporter(Action<TrainingProgress> report) => _report = report;
            public void Report(TrainingProgress value) => _report(value);
        }
    }

    /// <summary>A communicator that times the large all-reduces (the gradient buckets) of the one it wraps.</summary>
    sealed class TimedCommunicator : ICommunicator
    {
        readonly ICommunicator _inner;
        public TimedCommunicator(ICommunicator inner) => _inner = inner;
        public double GradientSeconds { get; private set; }
        public void Reset() => GradientSeconds = 0;
        public int Rank => _inner.Rank;
        public int Size => _inner.Size;
        public string Engine => _inner.Engine;
        public Device Device => _inner.Device;

        public void AllReduceSum(Tensor buffer, string what)
        {
            var clock = Stopwatch.StartNew();
            _inner.AllReduceSum(buffer, what);
            if (what.StartsWith("the gradient all-reduce", StringComparison.Ordinal)) GradientSeconds += clock.Elapsed.TotalSeconds;
        }

        public void Broadcast(Tensor buffer, int root, string what) => _inner.Broadcast(buffer, root, what);
        public Tensor AllGather(Tensor local, string what) => _inner.AllGather(local, what);
        public void Dispose() => _inner.Dispose();
    }
}
