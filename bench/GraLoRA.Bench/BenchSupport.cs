using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;

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
        public static List<double> TrainingSteps(GraLoRA.Models.DecoderForCausalLM model, GraLoRA.Data.DataBatch batch, TorchSharp.Modules.OptimizerHelper optimizer, int steps,
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
