using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;
using static TorchSharp.torch;

namespace GraLoRA.Bench
{
    /// <summary>
    /// Training step time and peak memory: GraLoRA vs LoRA at the same r (same parameter count) vs the frozen model's
    /// own forward+backward, on a small Llama-shaped model. Each contender runs in a fresh child process (so peak
    /// resident memory is its own); every repetition runs the three back to back and ratios are taken per repetition.
    /// </summary>
    static class TrainBench
    {
        public static int Run(string[] args)
        {
            int reps = BenchSupport.Arg(args, "--reps", 3);
            string shape = $"{BenchSupport.Arg(args, "--hidden", "512")} {BenchSupport.Arg(args, "--layers", "8")} {BenchSupport.Arg(args, "--seq", "512")} {BenchSupport.Arg(args, "--rank", "64")} {BenchSupport.Arg(args, "--k", "4")} {BenchSupport.Arg(args, "--steps", "3")}";
            Console.WriteLine($"training step (forward + backward + AdamW) on a Llama-shaped model: hidden/layers/seq/r/k/steps = {shape}, {reps} reps, batch 1, all-linear targets");
            Console.WriteLine("each contender in its own process; time = median step after one warm-up (default allocator); peak = peak RSS above the post-load baseline (separate child, fixed mmap threshold)");
            Console.WriteLine($"{"rep",4} {"frozen s",9} {"lora s",8} {"gralora s",10} {"G/L",6} {"G/frozen",9} {"lora MB",8} {"gralora MB",11} {"mem G/L",8}");
            var ratios = new List<double>();
            var memRatios = new List<double>();
            for (int rep = 0; rep < reps; rep++)
            {
                var frozen = Child("frozen", shape);
                var lora = Child("lora", shape);
                var gralora = Child("gralora", shape);
                ratios.Add(gralora.Seconds / lora.Seconds);
                memRatios.Add((double)gralora.Peak / lora.Peak);
                Console.WriteLine($"{rep,4} {frozen.Seconds,9:F3} {lora.Seconds,8:F3} {gralora.Seconds,10:F3} {gralora.Seconds / lora.Seconds,6:F3} {gralora.Seconds / frozen.Seconds,9:F3} {lora.Peak / 1e6,8:F0} {gralora.Peak / 1e6,11:F0} {(double)gralora.Peak / lora.Peak,8:F3}");
            }
            Console.WriteLine($"median GraLoRA/LoRA step time: {Median(ratios):F3}×   median GraLoRA/LoRA peak memory: {Median(memRatios):F3}×");
            return 0;
        }

        static (double Seconds, long Peak) Child(string method, string shape)
        {
            // Time from a child with the default allocator, peak memory from one with the exact-memory setting.
            var arguments = new[] { "train-child", method }.Concat(shape.Split(' ')).ToArray();
            double seconds = double.Parse(BenchSupport.RunChild(arguments).Split(' ')[0]);
            long peak = long.Parse(BenchSupport.RunChild(arguments, BenchSupport.ExactMemory).Split(' ')[1]);
            return (seconds, peak);
        }

        /// <summary>
        /// A child's contender from its arguments (method hidden layers seq rank k, from index 1): the model (adapters on
        /// all linear layers, or none: "frozen"), its optimizer, one unpadded batch and its sequence length.
        /// </summary>
        static (DecoderForCausalLM Model, optim.Optimizer Optimizer, DataBatch Batch, int Seq) Setup(string[] args)
        {
            string method = args[1];
            int hidden = int.Parse(args[2]), layers = int.Parse(args[3]), seq = int.Parse(args[4]), rank = int.Parse(args[5]), k = int.Parse(args[6]);
            TorchRuntime.EnsureInitialized();
            var options = new TinyModelOptions { HiddenSize = hidden, IntermediateSize = hidden * 11 / 4, Layers = layers, Heads = hidden / 64, KeyValueHeads = hidden / 64, VocabSize = 4096, Seed = 1 };
            var model = TinyModelFactory.Create(options);
            var host = new AdapterHost(model, DecoderForCausalLM.OutputHeadName);
            if (method == "frozen")
            {
                // No adapter: only the embedding trains, so backward runs through every layer as it must for any adapter.
                foreach (var p in model.parameters()) p.requires_grad = false;
                model.model.embed_tokens.weight!.requires_grad = true;
            }
            else
                host.Add("bench", new AdapterConfig
                {
                    Method = method == "lora" ? AdapterMethod.LoRA : AdapterMethod.GraLoRA, Rank = rank, K = method == "lora" ? null : k,
                    Alpha = 2 * rank, InitWeights = false, TargetModules = new[] { AdapterConfig.AllLinear },
                });
            var trainable = model.parameters().Where(p => p.requires_grad).ToList();
            var optimizer = optim.AdamW(trainable, 1e-4);
            manual_seed(2);
            var ids = randint(0, 4096, new long[] { 1, seq }).data<long>().ToArray();
            var batch = new DataBatch(1, seq, ids, ids, Enumerable.Repeat(1L, seq).ToArray(), Enumerable.Range(0, seq).Select(i => (long)i).ToArray(), null, null, new[] { 0 });
            model.train();
            using (var warm = ones(2, 2)) _ = warm.sum().item<float>();
            return (model, optimizer, batch, seq);
        }

        /// <summary>One optimizer step on <paramref name="loss"/>'s batch; its seconds.</summary>
        static double TimedStep(Func<Tensor> loss, optim.Optimizer optimizer)
        {
            var sw = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                loss().backward();
                optimizer.step();
                optimizer.zero_grad();
            }
            return sw.Elapsed.TotalSeconds;
        }

        /// <summary>Child: one contender; prints the median step seconds and peak RSS above the post-build baseline.</summary>
        public static int Child(string[] args)
        {
            var (model, optimizer, batch, seq) = Setup(args);
            int steps = int.Parse(args[7]);
            using var _ = model;
            using var __ = optimizer;
            long baseline = BenchSupport.StatusBytes("VmRSS");
            var times = BenchSupport.TrainingSteps(model, batch, optimizer, steps);
            long peak = BenchSupport.StatusBytes("VmHWM") - baseline;
            Console.WriteLine($"{Median(times)} {peak}");
            return 0;
        }

        static double Median(List<double> values) => values.OrderBy(x => x).ElementAt(values.Count / 2);

        /// <summary>
        /// The attention and loss paths now vs before issue 21 (explicit mask, float32 logits copy). Time: paired step by
        /// step in one process per contender, each pair running both back to back (alternating which goes first), so load
        /// drift cancels in the per-pair ratio. Peak memory: one process per contender and path (VmHWM is a high-water
        /// mark), with the exact-memory allocator setting. (GraLoRA's own layer change is not toggled here: `layer` and
        /// the kit's layerops.)
        /// </summary>
        public static int Paths(string[] args)
        {
            int pairs = BenchSupport.Arg(args, "--pairs", 6);
            string shape = $"{BenchSupport.Arg(args, "--hidden", "512")} {BenchSupport.Arg(args, "--layers", "8")} {BenchSupport.Arg(args, "--seq", "512")} {BenchSupport.Arg(args, "--rank", "64")} {BenchSupport.Arg(args, "--k", "4")} {pairs}";
            Console.WriteLine($"attention + loss paths, now vs before issue 21: hidden/layers/seq/r/k/pairs = {shape}, batch 1, vocab 4096");
            Console.WriteLine("time: medians, paired per step in one process (ratio = median of per-pair ratios); peak: RSS above the post-setup baseline, one process per path (fixed mmap threshold)");
            Console.WriteLine($"{"contender",10} {"now s",8} {"before s",9} {"now/before",11} {"now MB",8} {"before MB",10} {"now/before",11}");
            foreach (var method in new[] { "frozen", "lora", "gralora" })
            {
                var child = new[] { "train-paths-child", method }.Concat(shape.Split(' ')).ToArray();
                var time = BenchSupport.RunChild(child).Split(' ');
                long Peak(string path) => long.Parse(BenchSupport.RunChild(child.Append(path).ToArray(), BenchSupport.ExactMemory));
                long now = Peak("now"), before = Peak("before");
                Console.WriteLine($"{method,10} {double.Parse(time[0]),8:F3} {double.Parse(time[1]),9:F3} {double.Parse(time[2]),11:F3} {now / 1e6,8:F0} {before / 1e6,10:F0} {(double)now / before,11:F3}");
            }
            return 0;
        }

        /// <summary>
        /// Child of <see cref="Paths"/>: prints the median seconds now and before and the median per-pair ratio; or, with a
        /// ninth argument "now" / "before", the peak RSS (bytes above the post-setup baseline) of two steps on that path.
        /// </summary>
        public static int PathsChild(string[] args)
        {
            var (model, optimizer, batch, seq) = Setup(args);
            int pairs = int.Parse(args[7]);
            using var _ = model;
            using var __ = optimizer;
            double Now() => TimedStep(() => Trainer.LossSum(model, batch, CPU) / seq, optimizer);
            double Before() => TimedStep(() => BenchSupport.BaselineLossSum(model, batch, CPU) / seq, optimizer);
            if (args.Length > 8)
            {
                long baseline = BenchSupport.StatusBytes("VmRSS");
                Func<double> step = args[8] == "now" ? Now : Before;
                step(); step();
                Console.WriteLine(BenchSupport.StatusBytes("VmHWM") - baseline);
                return 0;
            }
            Now(); Before();                                                   // warm-up
            var now = new List<double>();
            var before = new List<double>();
            for (int i = 0; i < pairs; i++)
            {
                if (i % 2 == 0) { now.Add(Now()); before.Add(Before()); }
                else { before.Add(Before()); now.Add(Now()); }
            }
            Console.WriteLine($"{Median(now)} {Median(before)} {Median(now.Zip(before, (a, b) => a / b).ToList())}");
            return 0;
        }
    }
}
