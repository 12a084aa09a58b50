using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
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
        static string Arg(string[] args, string name, string fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        public static int Run(string[] args)
        {
            int reps = int.Parse(Arg(args, "--reps", "3"));
            string shape = $"{Arg(args, "--hidden", "512")} {Arg(args, "--layers", "8")} {Arg(args, "--seq", "512")} {Arg(args, "--rank", "64")} {Arg(args, "--k", "4")} {Arg(args, "--steps", "3")}";
            Console.WriteLine($"training step (forward + backward + AdamW) on a Llama-shaped model: hidden/layers/seq/r/k/steps = {shape}, {reps} reps, batch 1, all-linear targets");
            Console.WriteLine("each contender in its own process; time = median step after one warm-up; peak = peak RSS above the post-load baseline");
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
            double Median(List<double> v) => v.OrderBy(x => x).ElementAt(v.Count / 2);
            Console.WriteLine($"median GraLoRA/LoRA step time: {Median(ratios):F3}×   median GraLoRA/LoRA peak memory: {Median(memRatios):F3}×");
            return 0;
        }

        static (double Seconds, long Peak) Child(string method, string shape)
        {
            string host = Environment.ProcessPath!;
            var argv = new List<string>();
            if (Path.GetFileNameWithoutExtension(host) == "dotnet") argv.Add(typeof(TrainBench).Assembly.Location);
            argv.Add("train-child");
            argv.Add(method);
            argv.AddRange(shape.Split(' '));
            var psi = new ProcessStartInfo(host, argv) { RedirectStandardOutput = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            var parts = output.Trim().Split(' ');
            if (p.ExitCode != 0 || parts.Length != 2) throw new InvalidOperationException($"train child ({method}) failed: {output}");
            return (double.Parse(parts[0]), long.Parse(parts[1]));
        }

        static long StatusKb(string field) =>
            long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

        /// <summary>Child: one contender; prints the median step seconds and peak RSS above the post-build baseline.</summary>
        public static int Child(string[] args)
        {
            string method = args[1];
            int hidden = int.Parse(args[2]), layers = int.Parse(args[3]), seq = int.Parse(args[4]), rank = int.Parse(args[5]), k = int.Parse(args[6]), steps = int.Parse(args[7]);
            TorchRuntime.EnsureInitialized();
            var options = new TinyModelOptions { HiddenSize = hidden, IntermediateSize = hidden * 11 / 4, Layers = layers, Heads = hidden / 64, KeyValueHeads = hidden / 64, VocabSize = 4096, Seed = 1 };
            using var model = TinyModelFactory.Create(options);
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
            using var optimizer = optim.AdamW(trainable, 1e-4);
            manual_seed(2);
            var ids = randint(0, 4096, new long[] { 1, seq }).data<long>().ToArray();
            var batch = new GraLoRA.Data.DataBatch(1, seq, ids, ids, Enumerable.Repeat(1L, seq).ToArray(), Enumerable.Range(0, seq).Select(i => (long)i).ToArray(), null, null, new[] { 0 });
            model.train();
            using (var warm = ones(2, 2)) _ = warm.sum().item<float>();
            long baseline = StatusKb("VmRSS") * 1024;
            var times = new List<double>();
            for (int s = 0; s <= steps; s++)
            {
                var sw = Stopwatch.StartNew();
                using (NewDisposeScope())
                {
                    var loss = Trainer.LossSum(model, batch, CPU) / seq;
                    loss.backward();
                    optimizer.step();
                    optimizer.zero_grad();
                }
                if (s > 0) times.Add(sw.Elapsed.TotalSeconds);                 // step 0 warms up
            }
            long peak = StatusKb("VmHWM") * 1024 - baseline;
            Console.WriteLine($"{times.OrderBy(t => t).ElementAt(times.Count / 2)} {peak}");
            return 0;
        }
    }
}
