using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Quantization;
using GraLoRA.Training;
using static TorchSharp.torch;

namespace GraLoRA.Bench
{
    /// <summary>
    /// What a quantised base buys and costs (docs/quantization.md): peak memory and step time of a GraLoRA training step
    /// over an NF4 and an int8 base against a bfloat16 base (each load + training in its own child process, the peak
    /// counting the model's weights), and the loss curve of the quickstart run over a bfloat16 and an NF4 base.
    /// </summary>
    static class QuantBench
    {
        static readonly string[] Bases = { "bfloat16", "nf4", "int8" };

        /// <summary>quant: the bases side by side, one child each per repetition; ratios against bfloat16 per repetition.</summary>
        public static int Run(string[] args)
        {
            int reps = BenchSupport.Arg(args, "--reps", 3), hidden = BenchSupport.Arg(args, "--hidden", 1024), layers = BenchSupport.Arg(args, "--layers", 8);
            int vocab = BenchSupport.Arg(args, "--vocab", 8192);
            string device = BenchSupport.Arg(args, "--device", "cpu");
            string folder = BenchSupport.Arg(args, "--folder", Path.Combine(Path.GetTempPath(), $"gralora-quant-bench-{hidden}x{layers}"));
            if (!File.Exists(Path.Combine(folder, "config.json")))
            {
                TorchRuntime.EnsureInitialized();
                TinyModelFactory.Save(folder, new TinyModelOptions
                {
                    HiddenSize = hidden, IntermediateSize = hidden * 11 / 4, Layers = layers, Heads = hidden / 64, KeyValueHeads = hidden / 256 > 0 ? hidden / 256 : 1,
                    VocabSize = vocab, Seed = 1, DType = "bfloat16",
                });
            }
            if (args.Contains("--prepare-only")) { Console.WriteLine($"model folder: {folder}"); return 0; }
            string[] rest = { folder, device, BenchSupport.Arg(args, "--seq", "256"), BenchSupport.Arg(args, "--rank", "32"), BenchSupport.Arg(args, "--k", "2"), BenchSupport.Arg(args, "--steps", "2") };
            Console.WriteLine($"training step over a quantised base: hidden {hidden}, {layers} layers, vocab {vocab}, seq/r/k/steps = {string.Join('/', rest.Skip(2))}, batch 1, GraLoRA on all linear layers (float32), compute bfloat16, {device}, {reps} reps");
            Console.WriteLine("each base in its own process; peak = peak RSS above the baseline before loading (the weights included; separate child, fixed mmap threshold); time = median step after one warm-up");
            Console.WriteLine($"{"rep",4} {"bf16 s",8} {"nf4 s",8} {"int8 s",8} {"nf4/bf16 t",11} {"int8/bf16 t",12} {"bf16 MB",8} {"nf4 MB",8} {"int8 MB",8} {"nf4/bf16 mem",13} {"int8/bf16 mem",14} {"weights MB bf16/nf4/int8",26}");
            var ratios = Bases.Skip(1).ToDictionary(b => b, _ => (Time: new List<double>(), Memory: new List<double>()));
            for (int rep = 0; rep < reps; rep++)
            {
                var r = Bases.ToDictionary(b => b, b => Child(b, rest));
                foreach (var b in Bases.Skip(1))
                {
                    ratios[b].Time.Add(r[b].Seconds / r["bfloat16"].Seconds);
                    ratios[b].Memory.Add((double)r[b].Peak / r["bfloat16"].Peak);
                }
                Console.WriteLine($"{rep,4} {r["bfloat16"].Seconds,8:F3} {r["nf4"].Seconds,8:F3} {r["int8"].Seconds,8:F3} {ratios["nf4"].Time[^1],11:F3} {ratios["int8"].Time[^1],12:F3} " +
                                  $"{r["bfloat16"].Peak / 1e6,8:F0} {r["nf4"].Peak / 1e6,8:F0} {r["int8"].Peak / 1e6,8:F0} {ratios["nf4"].Memory[^1],13:F3} {ratios["int8"].Memory[^1],14:F3} " +
                                  $"{$"{r["bfloat16"].Weights / 1e6:F0}/{r["nf4"].Weights / 1e6:F0}/{r["int8"].Weights / 1e6:F0}",26}");
            }
            double Median(List<double> v) => v.OrderBy(x => x).ElementAt(v.Count / 2);
            foreach (var b in Bases.Skip(1))
                Console.WriteLine($"median {b}/bfloat16: step time {Median(ratios[b].Time):F3}×, peak memory {Median(ratios[b].Memory):F3}×");
            return 0;
        }

        static (double Seconds, long Peak, long Weights) Child(string baseKind, string[] rest)
        {
            var arguments = new[] { "quant-child", baseKind }.Concat(rest).ToArray();
            double seconds = double.Parse(BenchSupport.RunChild(arguments).Split('\n')[^1].Split(' ')[0]);
            var exact = BenchSupport.RunChild(arguments, BenchSupport.ExactMemory).Split('\n')[^1].Split(' ');
            return (seconds, long.Parse(exact[1]), long.Parse(exact[2]));
        }

        /// <summary>
        /// quant-child BASE FOLDER DEVICE SEQ RANK K STEPS: loads FOLDER with a BASE (bfloat16, nf4, int8) base, trains
        /// GraLoRA STEPS+1 steps; prints "median-step-seconds peak-bytes weight-bytes" (peak above the pre-load RSS).
        /// </summary>
        public static int Child(string[] args)
        {
            string baseKind = args[1], folder = args[2], device = args[3];
            int seq = int.Parse(args[4]), rank = int.Parse(args[5]), k = int.Parse(args[6]), steps = int.Parse(args[7]);
            TorchRuntime.EnsureInitialized();
            using (var warm = ones(2, 2)) _ = warm.sum().item<float>();
            long baseline = BenchSupport.StatusBytes("VmRSS");
            using var model = BaseModel.Load(folder, new BaseModelLoadOptions
            {
                DType = "bfloat16", Device = device,
                Quantize = baseKind == "bfloat16" ? null : new QuantizationOptions { Scheme = QuantizationOptions.ParseScheme(baseKind) },
            });
            long weights = model.Network.parameters().Sum(p => p.numel() * p.ElementSize) + model.QuantizedBytes;
            model.AddAdapter("bench", new AdapterConfig { Method = AdapterMethod.GraLoRA, Rank = rank, K = k, Alpha = 2 * rank, InitWeights = false, TargetModules = new[] { AdapterConfig.AllLinear } });
            var trainable = model.Module.parameters().Where(p => p.requires_grad).ToList();
            using var optimizer = optim.AdamW(trainable, 1e-4);
            manual_seed(2);
            var ids = randint(0, model.Config.VocabSize, new long[] { 1, seq }).data<long>().ToArray();
            var batch = new DataBatch(1, seq, ids, ids, Enumerable.Repeat(1L, seq).ToArray(), Enumerable.Range(0, seq).Select(i => (long)i).ToArray(), null, null, new[] { 0 });
            var dev = model.Transformer.Device;
            model.Module.train();
            var times = new List<double>();
            for (int s = 0; s <= steps; s++)
            {
                var sw = Stopwatch.StartNew();
                using (NewDisposeScope())
                {
                    var loss = Trainer.LossSum(model.Module, batch, dev) / seq;
                    loss.backward();
                    optimizer.step();
                    optimizer.zero_grad();
                    _ = loss.item<float>();                                                    // synchronises a GPU
                }
                if (s > 0) times.Add(sw.Elapsed.TotalSeconds);                                 // step 0 warms up
            }
            long peak = BenchSupport.StatusBytes("VmHWM") - baseline;
            double median = times.OrderBy(t => t).ElementAt(times.Count / 2);
            // For the GPU kit (run-gpu.sh reads the RESULT line and adds the GPU's peak); the last line is for quant's parent.
            Console.WriteLine("RESULT " + System.Text.Json.JsonSerializer.Serialize(new { Base = baseKind, Device = device, MedianStepSeconds = median, TokensPerSecond = seq / median, PeakRssBytes = peak, WeightBytes = weights }));
            Console.WriteLine($"{median} {peak} {weights}");
            return 0;
        }

        /// <summary>
        /// quant-loss: the quickstart run (examples/01-quickstart.ps1's model, adapter and settings, the first 180 conversations
        /// of examples/data/tiny-chat.jsonl) over a bfloat16 base and over an NF4 base, the training loss side by side.
        /// </summary>
        public static int Loss(string[] args)
        {
            int steps = BenchSupport.Arg(args, "--steps", 200), every = BenchSupport.Arg(args, "--every", 10);
            int hidden = BenchSupport.Arg(args, "--hidden", 128), layers = BenchSupport.Arg(args, "--layers", 4);
            string device = BenchSupport.Arg(args, "--device", "cpu"), dtype = BenchSupport.Arg(args, "--dtype", "bfloat16");
            string source = BenchSupport.Arg(args, "--data", QuickstartData());
            TorchRuntime.EnsureInitialized();
            string folder = Path.Combine(Path.GetTempPath(), "gralora-quant-loss-" + Guid.NewGuid().ToString("N"));
            try
            {
                Directory.CreateDirectory(folder);
                string data = Path.Combine(folder, "train.jsonl");
                File.WriteAllLines(data, File.ReadLines(source).Take(180));                   // the quickstart's training split
                TinyModelFactory.SaveWithTokenizer(Path.Combine(folder, "model"), new TinyModelOptions { HiddenSize = hidden, IntermediateSize = hidden * 2, Layers = layers, Seed = 0 });
                Console.WriteLine($"quickstart training over a {dtype} base and an NF4 base (compute {dtype}): hidden {hidden}, {layers} layers, GraLoRA r 32 k 2 + lm_head, {steps} steps, batch 8, lr 3e-3, {device}");
                var curves = new[] { "none", "nf4" }.Select(q => Curve(Path.Combine(folder, "model"), data, dtype, device, q, steps, every)).ToList();
                Console.WriteLine($"{"step",5} {dtype + " loss",15} {"nf4 loss",9} {"nf4 − " + dtype,16}");
                foreach (int step in curves[0].Keys.Intersect(curves[1].Keys).Order())
                    Console.WriteLine($"{step,5} {curves[0][step],15:F4} {curves[1][step],9:F4} {curves[1][step] - curves[0][step],16:+0.0000;-0.0000}");
                double Tail(SortedDictionary<int, double> c) => c.Values.Skip(c.Count * 3 / 4).Average();
                Console.WriteLine($"mean loss over the last quarter: {dtype} {Tail(curves[0]):F4}, nf4 {Tail(curves[1]):F4} (ratio {Tail(curves[1]) / Tail(curves[0]):F3})");
                Console.WriteLine("RESULT " + System.Text.Json.JsonSerializer.Serialize(new { Steps = steps, DType = dtype, Device = device, Full = curves[0].Values, Nf4 = curves[1].Values, TailRatio = Tail(curves[1]) / Tail(curves[0]) }));
                return 0;
            }
            finally
            {
                try { Directory.Delete(folder, true); } catch (IOException) { }
            }
        }

        static SortedDictionary<int, double> Curve(string folder, string data, string dtype, string device, string quantize, int steps, int every)
        {
            using var model = BaseModel.Load(folder, new BaseModelLoadOptions
            {
                DType = dtype, Device = device, Quantize = quantize == "none" ? null : new QuantizationOptions { Scheme = QuantizationOptions.ParseScheme(quantize) },
            });
            manual_seed(0);
            model.AddAdapter("default", new AdapterConfig { Method = AdapterMethod.GraLoRA, Rank = 32, K = 2, TargetModules = new[] { AdapterConfig.AllLinear }, ModulesToSave = new[] { DecoderForCausalLM.OutputHeadName } });
            var job = TrainingJob.Prepare(model, DatasetSource.FromFile(data), new TrainingSettings { MaxSteps = steps, BatchSize = 8, LearningRate = 3e-3, WarmupSteps = 10, LoggingSteps = every, Seed = 42 });
            var curve = new SortedDictionary<int, double>();
            job.Run(new Progress(p => curve[p.Step] = p.Loss));
            return curve;
        }

        /// <summary>examples/data/tiny-chat.jsonl of the checkout run from (or built in).</summary>
        static string QuickstartData()
        {
            foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    string candidate = Path.Combine(dir.FullName, "examples", "data", "tiny-chat.jsonl");
                    if (File.Exists(candidate)) return candidate;
                }
            throw new FileNotFoundException("examples/data/tiny-chat.jsonl not found above the current or the program's folder: pass --data PATH");
        }

        /// <summary>Synchronous progress (System.Progress posts to the thread pool).</summary>
        sealed class Progress : IProgress<TrainingProgress>
        {
            readonly Action<TrainingProgress> _report;
            public Progress(Action<TrainingProgress> report) => _report = report;
            public void Report(TrainingProgress value) => _report(value);
        }
    }
}
