using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using GraLoRA.Models;
using static TorchSharp.torch;

namespace GraLoRA.Bench
{
    /// <summary>
    /// Load time and peak memory of a ~500M-parameter random bf16 checkpoint, against the file size and against
    /// reading the same bytes raw. Each repetition loads in a fresh child process (so peak RSS is the load's own)
    /// right after a raw read of the files, and the ratio is taken per pair.
    /// </summary>
    static class LoadBench
    {
        public static int Run(string[] args)
        {
            int hidden = BenchSupport.Arg(args, "--hidden", 1024), layers = BenchSupport.Arg(args, "--layers", 34), reps = BenchSupport.Arg(args, "--reps", 3);
            string folder = BenchSupport.Arg(args, "--folder", Path.Combine(Path.GetTempPath(), $"gralora-bench-load-{hidden}x{layers}"));
            var options = new TinyModelOptions
            {
                HiddenSize = hidden, IntermediateSize = hidden * 11 / 4, Layers = layers, Heads = hidden / 64, KeyValueHeads = hidden / 256,
                VocabSize = 32000, DType = "bfloat16",
            };
            if (!File.Exists(Path.Combine(folder, "config.json")))
            {
                Console.WriteLine($"creating {folder} …");
                TinyModelFactory.Save(folder, options);
            }
            var files = CheckpointLoader.WeightFiles(folder);
            long bytes = files.Sum(f => new FileInfo(f).Length);
            var config = TinyModelFactory.Config(options);
            Console.WriteLine($"checkpoint: {config.ModelType}, hidden {hidden}, {layers} layers, vocab {config.VocabSize}, bf16 on disk: {bytes / 1e6:F0} MB in {files.Count} file(s)");
            Console.WriteLine("per repetition: raw read of the files, then a load in a fresh process (bf16 as stored, then as float32)");
            Console.WriteLine($"{"rep",4} {"raw s",7} {"bf16 s",7} {"ratio",6} {"init s",7} {"peak-base MB",13} {"/file",6} {"fp32 s",7} {"peak-base MB",13} {"/file",6}");
            var ratios = new System.Collections.Generic.List<double>();
            for (int rep = 0; rep < reps; rep++)
            {
                var sw = Stopwatch.StartNew();
                var buffer = new byte[1 << 20];
                foreach (var f in files) { using var s = File.OpenRead(f); while (s.Read(buffer, 0, buffer.Length) > 0) { } }
                double raw = sw.Elapsed.TotalSeconds;
                var (bf16Seconds, bf16Peak) = LoadInChild(folder, "bfloat16");
                var (fp32Seconds, fp32Peak) = LoadInChild(folder, "float32");
                var (initSeconds, _) = LoadInChild(folder, "bfloat16", "construct");
                ratios.Add(bf16Seconds / raw);
                Console.WriteLine($"{rep,4} {raw,7:F2} {bf16Seconds,7:F2} {bf16Seconds / raw,6:F1} {initSeconds,7:F2} {bf16Peak / 1e6,13:F0} {(double)bf16Peak / bytes,6:F2} {fp32Seconds,7:F2} {fp32Peak / 1e6,13:F0} {(double)fp32Peak / bytes,6:F2}");
            }
            Console.WriteLine($"median load/raw-read ratio (bf16): {ratios.OrderBy(r => r).ElementAt(ratios.Count / 2):F1}");
            Console.WriteLine("init = building a randomly initialised bf16 model, for comparison: loads skip that (parameters start uninitialised and are filled from the file).");
            Console.WriteLine("peak-base = the child's peak resident memory minus its resident memory after libtorch initialised (before loading).");
            return 0;
        }

        static (double Seconds, long PeakAboveBase) LoadInChild(string folder, string dtype, string mode = "load")
        {
            var parts = BenchSupport.RunChild(new[] { "load-child", folder, dtype, mode }).Split(' ');
            return (double.Parse(parts[0]), long.Parse(parts[1]));
        }

        /// <summary>Child: loads once; prints seconds and peak RSS above the post-initialisation baseline, in bytes.</summary>
        public static int Child(string[] args)
        {
            TorchRuntime.EnsureInitialized();
            using (var warm = ones(2, 2)) _ = warm.sum().item<float>();
            long baseline = BenchSupport.StatusBytes("VmRSS");
            var sw = Stopwatch.StartNew();
            // "construct" builds a randomly initialised model only (what a load would cost if it initialised first).
            using var model = args.Length > 3 && args[3] == "construct"
                ? new DecoderForCausalLM(DecoderConfig.Load(Path.Combine(args[1], "config.json")), ModelDType.Parse(args[2]))
                : CheckpointLoader.LoadDecoder(args[1], ModelDType.Parse(args[2]));
            double seconds = sw.Elapsed.TotalSeconds;
            long peak = BenchSupport.StatusBytes("VmHWM");
            Console.WriteLine($"{seconds} {peak - baseline}");
            return 0;
        }
    }
}
