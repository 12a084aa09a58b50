using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Models;
using GraLoRA.Training;
using static TorchSharp.torch;

namespace GraLoRA.Bench
{
    /// <summary>
    /// Training step time of every method at the paper's equal-parameter settings (LoRA, DoRA and MoRA at r, GraLoRA
    /// with the r/k² ≈ 8 rule, RaSA with k = r/8, optionally Full) on one Llama-shaped model, all-linear targets. Every
    /// repetition runs all methods back to back in this process (the base model built once), and each ratio to LoRA is
    /// taken within a repetition, then the median; printed beside the GraLoRA paper's measured ratios.
    /// </summary>
    static class MethodsBench
    {
        /// <summary>The paper's training-time table (relative to LoRA, 7–8B models on GPUs); null where it gives none.</summary>
        static readonly Dictionary<AdapterMethod, string> Paper = new()
        {
            [AdapterMethod.LoRA] = "1.00",
            [AdapterMethod.GraLoRA] = "1.06–1.10",
            [AdapterMethod.MoRA] = "1.40–1.45",
            [AdapterMethod.RaSA] = "1.03–1.09",
        };

        public static int Run(string[] args)
        {
            int hidden = BenchSupport.Arg(args, "--hidden", 256), layers = BenchSupport.Arg(args, "--layers", 2), seq = BenchSupport.Arg(args, "--seq", 128);
            int rank = BenchSupport.Arg(args, "--rank", 32), steps = BenchSupport.Arg(args, "--steps", 5), reps = BenchSupport.Arg(args, "--reps", 5);
            bool full = args.Contains("--full");
            var methods = new List<AdapterMethod> { AdapterMethod.LoRA, AdapterMethod.GraLoRA, AdapterMethod.MoRA, AdapterMethod.RaSA, AdapterMethod.DoRA };
            if (full) methods.Add(AdapterMethod.Full);
            TorchRuntime.EnsureInitialized();
            var options = new TinyModelOptions { HiddenSize = hidden, IntermediateSize = hidden * 11 / 4, Layers = layers, Heads = hidden / 64, KeyValueHeads = hidden / 64, VocabSize = 4096, Seed = 1 };
            using var model = TinyModelFactory.Create(options);
            var host = new AdapterHost(model, DecoderForCausalLM.OutputHeadName);
            manual_seed(2);
            var ids = randint(0, options.VocabSize, new long[] { 1, seq }).data<long>().ToArray();
            var batch = new GraLoRA.Data.DataBatch(1, seq, ids, ids, Enumerable.Repeat(1L, seq).ToArray(), Enumerable.Range(0, seq).Select(i => (long)i).ToArray(), null, null, new[] { 0 });
            Console.WriteLine($"training step (forward + backward + AdamW), every method at r {rank} with the paper's equal-parameter settings; hidden {hidden}, {layers} layers, seq {seq}, batch 1, all-linear; {reps} reps × {steps} steps, {get_num_threads()} threads");
            Console.WriteLine("time = median step after one warm-up, wall clock and process CPU time; ratio = median over repetitions of (method / LoRA) in the same repetition");
            Console.WriteLine("on a shared, oversubscribed CPU the wall clock mostly measures waiting: read the CPU-time ratio there");

            var configs = methods.Select(m => AdapterConfig.ForComparison(m, rank, new AdapterConfig { TargetModules = new[] { AdapterConfig.AllLinear } })).ToList();
            var seconds = configs.ToDictionary(c => c.Method, _ => new List<double>());
            var cpuSeconds = configs.ToDictionary(c => c.Method, _ => new List<double>());
            var parameters = new Dictionary<AdapterMethod, long>();
            model.train();
            for (int rep = 0; rep < reps; rep++)
                foreach (var config in configs)
                {
                    host.Add("bench", config);
                    parameters[config.Method] = host.List().Single().Parameters;
                    var (wall, cpu) = MedianStep(model, batch, steps);
                    seconds[config.Method].Add(wall);
                    cpuSeconds[config.Method].Add(cpu);
                    host.Remove("bench");
                }
            static double Median(IEnumerable<double> values) { var t = values.OrderBy(v => v).ToList(); return t[t.Count / 2]; }
            Console.WriteLine();
            Console.WriteLine($"| method | settings | trainable parameters | step ms (wall / CPU) | × LoRA wall | × LoRA CPU | × LoRA (paper) |");
            Console.WriteLine($"| --- | --- | --- | --- | --- | --- | --- |");
            foreach (var config in configs)
            {
                var m = config.Method;
                double Ratio(Dictionary<AdapterMethod, List<double>> t) => Median(t[m].Zip(t[AdapterMethod.LoRA], (a, l) => a / l));
                Console.WriteLine($"| {m} | {MethodComparison.Describe(config)} | {parameters[m]:N0} | {1000 * Median(seconds[m]):F0} / {1000 * Median(cpuSeconds[m]):F0} | {Ratio(seconds):F2} | {Ratio(cpuSeconds):F2} | {(Paper.TryGetValue(m, out var p) ? p : "—")} |");
            }
            return 0;
        }

        static (double Wall, double Cpu) MedianStep(DecoderForCausalLM model, GraLoRA.Data.DataBatch batch, int steps)
        {
            var trainable = model.parameters().Where(p => p.requires_grad).ToList();
            using var optimizer = optim.AdamW(trainable, 1e-4);
            var cpu = new List<double>();
            var wall = BenchSupport.TrainingSteps(model, batch, optimizer, steps, cpu);
            return (wall.OrderBy(t => t).ElementAt(wall.Count / 2), cpu.OrderBy(t => t).ElementAt(cpu.Count / 2));
        }
    }
}
