using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using GraLoRA.Distributed;
using GraLoRA.Models;

namespace GraLoRA.Bench
{
    /// <summary>
    /// Data-parallel throughput on the CPU: 2 MPI ranks × 1 libtorch thread (batch 4 each) against 1 process × 2 threads
    /// (batch 8), same model, data and global batch, and the share of a step the gradient all-reduce takes on rank 0
    /// (its wait for the other rank included). Each repetition runs both back to back; steps after the first count.
    /// </summary>
    static class DistBench
    {
        public static int Run(string[] args)
        {
            int reps = BenchSupport.Arg(args, "--reps", 3), steps = BenchSupport.Arg(args, "--steps", 6), seq = BenchSupport.Arg(args, "--seq", 128);
            int hidden = BenchSupport.Arg(args, "--hidden", 512), layers = BenchSupport.Arg(args, "--layers", 8), rank = BenchSupport.Arg(args, "--rank", 64);
            string mpirun = Launchers.RequireMpirun();
            string folder = Path.Combine(Path.GetTempPath(), "gralora-dist-bench-" + Guid.NewGuid().ToString("N"));
            try
            {
                TorchRuntime.EnsureInitialized();
                var shape = new TinyModelOptions { HiddenSize = hidden, IntermediateSize = hidden * 11 / 4, Layers = layers, Heads = hidden / 64, KeyValueHeads = hidden / 64, VocabSize = 4096, Seed = 1 };
                string model = TinyModelFactory.Save(Path.Combine(folder, "model"), shape);
                Console.WriteLine($"data-parallel training step on the CPU: hidden {hidden}, {layers} layers, seq {seq}, GraLoRA r {rank} k 2 on all linears, global batch 8, {steps} steps ({steps - 1} timed), {reps} reps, {Environment.ProcessorCount} cores");
                Console.WriteLine($"{"rep",4} {"2×1 steps/s",12} {"1×2 steps/s",12} {"2×1 / 1×2",10} {"all-reduce share",17}");
                var ratios = new List<double>();
                var shares = new List<double>();
                for (int rep = 0; rep < reps; rep++)
                {
                    string common = $"--model {model} --steps {steps} --seq {seq} --examples 64 --rank {rank} --time";
                    var two = Time(mpirun, Launchers.MpirunArguments(2, Child(folder, $"{common} --threads 1 --batch 4 --out {folder}/two")));
                    var one = Time(Child(folder, "")[0], Child(folder, $"{common} --threads 2 --batch 8 --out {folder}/one").Skip(1));
                    double twoRate = two.Steps / two.Seconds, oneRate = one.Steps / one.Seconds, share = two.AllReduce / two.Seconds;
                    ratios.Add(twoRate / oneRate);
                    shares.Add(share);
                    Console.WriteLine($"{rep,4} {twoRate,12:F3} {oneRate,12:F3} {twoRate / oneRate,10:F2} {share,16:P1}");
                }
                double Median(List<double> v) => v.OrderBy(x => x).ElementAt(v.Count / 2);
                Console.WriteLine($"median 2 ranks × 1 thread / 1 rank × 2 threads: {Median(ratios):F2}×   median all-reduce share of a 2-rank step: {Median(shares):P1}");
                return 0;
            }
            finally { try { Directory.Delete(folder, true); } catch (IOException) { } }
        }

        // This bench program as a dist-child command line: [dotnet, GraLoRA.Bench.dll, dist-child, …] (or the app host).
        static List<string> Child(string folder, string arguments)
        {
            string host = Environment.ProcessPath!;
            var argv = new List<string> { host };
            if (Path.GetFileNameWithoutExtension(host) == "dotnet") argv.Add(typeof(DistBench).Assembly.Location);
            argv.Add("dist-child");
            argv.AddRange(arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries));
            return argv;
        }

        static (double Steps, double Seconds, double AllReduce) Time(string program, IEnumerable<string> arguments)
        {
            var start = new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.Environment["TERM"] = "dumb";
            using var p = Process.Start(start)!;
            string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            string? line = output.Split('\n').FirstOrDefault(l => l.StartsWith("TIME ", StringComparison.Ordinal));
            if (p.ExitCode != 0 || line is null) throw new InvalidOperationException($"'{program} {string.Join(' ', arguments)}' failed:\n{output}");
            var f = line.Split(' ');
            double Field(string name) => double.Parse(f[Array.IndexOf(f, name) + 1], CultureInfo.InvariantCulture);
            return (Field("steps"), Field("seconds"), Field("allreduce"));
        }
    }
}
