using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using static TorchSharp.torch;

namespace GraLoRA.Bench
{
    /// <summary>What the benchmarks share: option parsing, /proc memory readings, and running themselves as a child process.</summary>
    static class BenchSupport
    {
        /// <summary>The value after <paramref name="name"/> in <paramref name="args"/>, else <paramref name="fallback"/>.</summary>
        public static string Arg(string[] args, string name, string fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        /// <summary>As <see cref="Arg(string[], string, string)"/>, as a whole number.</summary>
        public static int Arg(string[] args, string name, int fallback) => int.Parse(Arg(args, name, fallback.ToString()));

        /// <summary>
        /// Times <paramref name="steps"/> training steps (forward, mean loss over the batch's tokens, backward, optimizer
        /// step) after one warm-up step; returns the wall seconds of each, and adds the process CPU seconds of each to
        /// <paramref name="cpuSeconds"/> when given (on a shared, oversubscribed machine CPU time is the steadier measure).
        /// </summary>
        public static List<double> TrainingSteps(GraLoRA.Models.DecoderForCausalLM model, GraLoRA.Data.DataBatch batch, TorchSharp.torch.optim.Optimizer optimizer, int steps,
                                                 List<double>? cpuSeconds = null)
        {
            var times = new List<double>();
            var process = Process.GetCurrentProcess();
            for (int s = 0; s <= steps; s++)
            {
                process.Refresh();
                var cpu = process.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                using (TorchSharp.torch.NewDisposeScope())
                {
                    var loss = GraLoRA.Training.Trainer.LossSum(model, batch, TorchSharp.torch.CPU) / batch.SequenceLength;
                    loss.backward();
                    optimizer.step();
                    optimizer.zero_grad();
                }
                double wall = sw.Elapsed.TotalSeconds;
                process.Refresh();
                if (s == 0) continue;                                           // step 0 warms up
                times.Add(wall);
                cpuSeconds?.Add((process.TotalProcessorTime - cpu).TotalSeconds);
            }
            return times;
        }

        /// <summary>A field of /proc/self/status (VmRSS, VmHWM, …) in bytes.</summary>
        public static long StatusBytes(string field) =>
            1024 * long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

        /// <summary>
        /// For peak-memory children: a fixed glibc mmap threshold. glibc otherwise raises it as large blocks are freed,
        /// so freed tensor memory stays resident or not depending on history and peak RSS measures the allocator rather
        /// than the tensors (with it, peaks repeat to the MB). Not for timing: every large allocation then maps fresh pages.
        /// </summary>
        public static readonly IReadOnlyDictionary<string, string> ExactMemory = new Dictionary<string, string> { ["MALLOC_MMAP_THRESHOLD_"] = "131072" };

        /// <summary>
        /// Summed next-token loss of <paramref name="batch"/> as the trainer computed it before issue 21, for side-by-side
        /// timings: attention through the explicit [B, 1, L, L] mask (one segment over every token forces it) and
        /// cross-entropy on a float32 copy of the shifted logits. The same value as Trainer.LossSum on unpadded batches.
        /// </summary>
        public static Tensor BaselineLossSum(DecoderForCausalLM model, DataBatch batch, Device device)
        {
            Tensor Matrix(long[] values) => tensor(values, new long[] { batch.BatchSize, batch.SequenceLength }, device: device);
            var ids = Matrix(batch.InputIds);
            var logits = model.Forward(ids, Matrix(batch.AttentionMask), Matrix(batch.PositionIds), segmentIds: ones_like(ids)).Logits;   // [B, L, V]
            long length = batch.SequenceLength;
            var predicted = logits.narrow(1, 0, length - 1).reshape(-1, logits.shape[2]).to(ScalarType.Float32);
            var targets = Matrix(batch.Labels).narrow(1, 1, length - 1).reshape(-1);
            return nn.functional.cross_entropy(predicted, targets, ignore_index: TrainingExample.IgnoreIndex, reduction: nn.Reduction.Sum);
        }

        /// <summary>
        /// A GraLoRA layer's output (no hybrid part) the way GraloraLinear computed it before issue 21, for side-by-side
        /// timings: the regroup through a four-way permute, and the k output blocks copied into [M, out] order before
        /// the add. The same value as <paramref name="layer"/>.forward(x).
        /// </summary>
        public static Tensor BaselineGraloraForward(GraloraLinear layer, string name, Tensor x)
        {
            var o = layer.Options(name);
            if (o.HybridRank > 0) throw new ArgumentException("the baseline layout is kept for GraLoRA without a hybrid part only");
            long k = o.K, r = o.Rank, s = r / k, m = x.numel() / layer.InFeatures;
            var result = layer.BaseLayer.forward(x);                                                        // [..., out]
            var a = layer.A(name);                                                                          // [k, in/k, r]
            var flat = x.reshape(m, layer.InFeatures).to(a.dtype);                                           // [M, in]
            var t = flat.view(m, k, layer.InFeatures / k).transpose(0, 1).bmm(a);                           // [k(n), M, r]
            var u = t.view(k, m, k, s).permute(2, 1, 0, 3).reshape(k, m, r);                               // [k(j), M, r]
            var update = u.bmm(layer.B(name)).transpose(0, 1).reshape(m, layer.OutFeatures);               // [M, out]
            return result.add(update.to(result.dtype).view(result.shape), alpha: o.Scaling);
        }

        /// <summary>Runs this benchmark program with <paramref name="arguments"/> (as the app host or through `dotnet`); with extra <paramref name="environment"/> variables; returns its stdout.</summary>
        public static string RunChild(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
        {
            string host = Environment.ProcessPath!;
            var argv = new List<string>();
            if (Path.GetFileNameWithoutExtension(host) == "dotnet") argv.Add(typeof(BenchSupport).Assembly.Location);
            argv.AddRange(arguments);
            var start = new ProcessStartInfo(host, argv) { RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
            using var p = Process.Start(start)!;
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"benchmark child '{string.Join(' ', arguments)}' failed: {output}");
            return output.Trim();
        }
    }
}
