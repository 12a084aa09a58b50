using System;
using System.Diagnostics;
using System.Linq;
using GraLoRA.Generation;
using GraLoRA.Models;

namespace GraLoRA.Bench
{
    /// <summary>Greedy tokens/s on a tiny model with and without the key/value cache, timed back to back per repetition.</summary>
    static class GenerateBench
    {
        public static int Run(string[] args)
        {
            int tokens = BenchSupport.Arg(args, "--tokens", 128), reps = BenchSupport.Arg(args, "--reps", 5), prompt = BenchSupport.Arg(args, "--prompt", 32);
            var options = new TinyModelOptions { HiddenSize = 256, IntermediateSize = 704, Layers = 4, Heads = 8, KeyValueHeads = 2, VocabSize = 4096, Seed = 1 };
            using var model = TinyModelFactory.Create(options);
            var prompts = new[] { Enumerable.Range(1, prompt).ToArray() };
            Console.WriteLine($"greedy generation, tiny llama (hidden 256, 4 layers, vocab 4096), prompt {prompt}, {tokens} new tokens, {reps} reps, {TorchSharp.torch.get_num_threads()} threads");
            Console.WriteLine($"{"rep",4} {"cache tok/s",12} {"no-cache tok/s",15} {"speedup",8}");
            var speedups = new System.Collections.Generic.List<double>();
            for (int rep = -1; rep < reps; rep++)
            {
                double Rate(bool cache)
                {
                    var sw = Stopwatch.StartNew();
                    var result = TextGenerator.Generate(model, prompts, new GenerationOptions { MaxNewTokens = tokens, UseCache = cache });
                    return result[0].Tokens.Length / sw.Elapsed.TotalSeconds;
                }
                double withCache = Rate(true), without = Rate(false);
                if (rep < 0) continue;                                     // warm-up
                speedups.Add(withCache / without);
                Console.WriteLine($"{rep,4} {withCache,12:F1} {without,15:F1} {withCache / without,8:F2}");
            }
            Console.WriteLine($"median cache speedup: {speedups.OrderBy(s => s).ElementAt(speedups.Count / 2):F2}×");
            return 0;
        }
    }
}
