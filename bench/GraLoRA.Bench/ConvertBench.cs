using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Bench
{
    /// <summary>
    /// GraLoRA → LoRA conversion of 8 B-sized layers (Llama-3-8B shapes: hidden 4096, MLP 14336, 32 heads, 8 KV heads; one
    /// decoder layer, all-linear GraLoRA r 32, k 2): time and peak memory of the exact conversion (range finder + small
    /// SVD per layer), against a dense SVD of the largest layer's ΔW alone (what a plain SVD-based converter does per
    /// layer). Each in its own child process, peak resident memory above the model's.
    /// </summary>
    static class ConvertBench
    {
        public static int Run(string[] args)
        {
            int hidden = BenchSupport.Arg(args, "--hidden", 4096), mlp = BenchSupport.Arg(args, "--mlp", 14336);
            Console.WriteLine($"one decoder layer, hidden {hidden}, MLP {mlp}, GraLoRA r 32 k 2 on all 7 linear layers (exact LoRA rank 64)");
            Console.WriteLine("job                                   seconds  peak MB above model");
            foreach (var job in new[] { "convert", "dense-svd" })
            {
                string output = BenchSupport.RunChild(new[] { "convert-child", job, "--hidden", hidden.ToString(), "--mlp", mlp.ToString() }, BenchSupport.ExactMemory);
                Console.WriteLine(output);
            }
            long delta32 = (long)hidden * mlp * 4;
            Console.WriteLine($"for scale: the largest ΔW is {delta32 / 1e6:F0} MB in float32, {2 * delta32 / 1e6:F0} MB in float64");
            return 0;
        }

        public static int Child(string[] args)
        {
            string job = args[1];
            int hidden = BenchSupport.Arg(args, "--hidden", 4096), mlp = BenchSupport.Arg(args, "--mlp", 14336);
            TorchRuntime.EnsureInitialized();
            var config = TinyModelFactory.Config(new TinyModelOptions { HiddenSize = hidden, IntermediateSize = mlp, Heads = 32, KeyValueHeads = 8, Layers = 1 });
            using var model = DecoderForCausalLM.Uninitialized(config, ScalarType.Float32, CPU);
            using (no_grad()) foreach (var p in model.parameters()) p.normal_(0, 0.02);
            var host = new AdapterHost(model, DecoderForCausalLM.OutputHeadName);
            host.Add("default", new AdapterConfig { Rank = 32, K = 2, TargetModules = new[] { AdapterConfig.AllLinear }, InitWeights = false });
            File.WriteAllText("/proc/self/clear_refs", "5");       // resets VmHWM to the current resident size
            long baseline = BenchSupport.StatusBytes("VmRSS");
            var watch = Stopwatch.StartNew();
            if (job == "convert")
            {
                using var conversion = LoraConversion.FromAdapter(host, "default", new LoraConversionOptions());
                watch.Stop();
                Console.WriteLine($"exact conversion, {conversion.Layers.Count} layers (max err {conversion.MaxRelativeError:E1}) {watch.Elapsed.TotalSeconds,8:F1}  {(BenchSupport.StatusBytes("VmHWM") - baseline) / 1e6,8:F0}");
            }
            else
            {
                var down = host.Layers().Single(l => l.Name.EndsWith("down_proj")).Layer;
                using var scope = NewDisposeScope();
                var (_, s, _) = linalg.svd(down.GetDeltaWeight("default").to(ScalarType.Float64), fullMatrices: false);
                watch.Stop();
                Console.WriteLine($"dense SVD of down_proj's ΔW only ({s.shape[0]} values)  {watch.Elapsed.TotalSeconds,8:F1}  {(BenchSupport.StatusBytes("VmHWM") - baseline) / 1e6,8:F0}");
            }
            return 0;
        }
    }
}
