using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Distributed;
using GraLoRA.Models;
using GraLoRA.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

// The kit's NCCL stage (run-gpu.sh "5. NCCL"): a one-rank NCCL communicator on the GPU (one GPU cannot host two NCCL
// ranks), through GraLoRA's own P/Invoke bindings:
//   nccl [--device cuda] [--elements 25000000]
// checks all-reduce (float32, float64), broadcast and all-gather on device buffers, the bucketed gradient all-reduce,
// and two training steps through the Trainer's data-parallel hooks against the same steps without them; times the
// all-reduce of --elements floats. On a CPU device it only loads libnccl (or says why it cannot) and reports skipped.
static class NcclStage
{
    static void Result(object value) => Console.WriteLine("RESULT " + JsonSerializer.Serialize(value));

    static string Arg(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        string deviceName = Arg(args, "--device", "cuda");
        string loader;
        try { loader = "libnccl " + NcclCommunicator.LibraryVersion(); }
        catch (GraloraException ex) { loader = $"{ex.ErrorId}: {ex.Message}"; }
        Console.WriteLine($"NCCL loader: {loader}");
        if (!deviceName.StartsWith("cuda", StringComparison.Ordinal))
        {
            Console.WriteLine($"NCCL stage skipped: it needs a CUDA device, and this run is on {deviceName}.");
            Result(new { Skipped = true, Reason = $"needs a CUDA device (run on {deviceName})", Loader = loader });
            return 0;
        }
        var device = TorchRuntime.ResolveDevice(deviceName);
        long elements = long.Parse(Arg(args, "--elements", "25000000"));
        var checks = new Dictionary<string, bool>();
        using var nccl = NcclCommunicator.Create(NcclCommunicator.NewUniqueId(), 0, 1, device, TimeSpan.FromMinutes(2));
        Console.WriteLine($"{nccl.Engine}: one rank on {nccl.Device}");

        using (NewDisposeScope())
        {
            manual_seed(0);
            // A sum over one rank is the buffer itself; a broadcast from rank 0 and a gather of one rank change nothing.
            foreach (var type in new[] { ScalarType.Float32, ScalarType.Float64 })
            {
                var buffer = randn(new long[] { 1 << 20 }, type, device);
                var expected = buffer.clone();
                nccl.AllReduceSum(buffer, $"the {type} all-reduce");
                checks[$"AllReduce{type}"] = buffer.equal(expected).item<bool>();
            }
            var source = randn(new long[] { 4096 }, device: device);
            var copy = source.clone();
            nccl.Broadcast(copy, 0, "the broadcast");
            checks["Broadcast"] = copy.equal(source).item<bool>();
            checks["AllGather"] = nccl.AllGather(source, "the all-gather").equal(source).item<bool>();

            // Gradients of a GraLoRA layer through the flat buckets (a small cap: several buckets).
            var layer = new GraloraLinear(nn.Linear(256, 256, hasBias: false, device: device), "default", new GraloraOptions { Rank = 16, K = 2, Alpha = 32, InitWeights = false });
            layer.forward(randn(new long[] { 32, 256 }, device: device)).square().sum().backward();
            var parameters = layer.AdapterParameters("default").ToList();
            var before = parameters.Select(p => p.grad!.clone()).ToList();
            GradientBuckets.AllReduceGradients(nccl, parameters, capBytes: 16 << 10, "the gradient all-reduce");
            checks["GradientBuckets"] = parameters.Zip(before).All(pair => pair.First.grad!.equal(pair.Second).item<bool>());
        }

        checks["TrainerHooks"] = TrainerHooks(nccl, device);

        double seconds;
        using (NewDisposeScope())
        {
            var big = randn(new long[] { elements }, device: device);
            nccl.AllReduceSum(big, "the warm-up all-reduce");
            var clock = Stopwatch.StartNew();
            const int reps = 10;
            for (int i = 0; i < reps; i++) nccl.AllReduceSum(big, "the timed all-reduce");
            seconds = clock.Elapsed.TotalSeconds / reps;
        }
        double gigabytes = elements * 4 / 1e9;
        foreach (var (name, ok) in checks) Console.WriteLine($"  {name,-22} {(ok ? "ok" : "FAILED")}");
        Console.WriteLine($"  all-reduce of {elements:N0} float32 ({gigabytes:0.###} GB) on one rank: {seconds * 1000:0.00} ms ({gigabytes / seconds:0.#} GB/s, a device copy: one rank moves nothing over links)");
        Result(new { Skipped = false, Loader = loader, nccl.Engine, Checks = checks, AllReduceSeconds = seconds, Elements = elements });
        return checks.Values.All(v => v) ? 0 : 1;
    }

    // Two steps of a tiny model through DataParallel over the one-rank communicator (sharding, token and loss sums, the
    // NCCL gradient all-reduce, the random-state gather of a checkpoint) against the same steps in one process: equal.
    static bool TrainerHooks(NcclCommunicator nccl, Device device)
    {
        string folder = TinyModelFactory.Save(Path.Combine(Path.GetTempPath(), "gralora-kit-nccl-" + Guid.NewGuid().ToString("N")), new TinyModelOptions { Seed = 3 });
        try
        {
            var weights = new List<Dictionary<string, Tensor>>();
            foreach (var world in new[] { null, new DataParallel(nccl) })
            {
                using var model = BaseModel.Load(folder, new BaseModelLoadOptions { Device = device.ToString() });
                manual_seed(1);
                model.AddAdapter("default", new AdapterConfig { Rank = 8, K = 2, Alpha = 16, TargetModules = new[] { AdapterConfig.AllLinear } });
                var examples = Enumerable.Range(0, 16).Select(i => Enumerable.Range(0, 10).Select(c => 100 + (i + c) % 16).ToArray())
                    .Select(ids => new TrainingExample(ids, ids)).ToList();
                string output = Path.Combine(folder, world is null ? "alone" : "nccl");
                new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 2, OutputDirectory = output, Distributed = world })
                    .Train(new BatchLoader(examples, 0, new BatchOptions { BatchSize = 8, Seed = 1 }));
                weights.Add(model.Adapters.StateDict("default").ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu()));
            }
            return weights[0].All(kv => kv.Value.equal(weights[1][kv.Key]).item<bool>())
                   && File.Exists(Path.Combine(folder, "nccl", "checkpoint-2", "distributed.json"));
        }
        finally { Directory.Delete(folder, true); }
    }
}
