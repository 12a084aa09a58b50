using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;
using TorchSharp;
using static TorchSharp.torch;

// The GPU kit's runner (bench/gpu, docs/gpu.md). Every subcommand prints human-readable lines, then one line
// "RESULT <json>" that run-gpu.sh collects.
//   probe                      where libtorch came from, the libtorch files mapped into this process, a checksum
//   compare [--device cuda]    GraLoRA and LoRA layers, forward + backward on the device vs the CPU in float32
//   train --method lora|gralora|dora|mora|rasa|full --rank R --k K [--device D] [--dtype bf16|fp32] [--hidden H --layers L --heads N
//         --kv-heads N --intermediate N --vocab N --seq S --batch B --steps N] [--baseline]
//                              (--baseline: attention through the explicit mask and the loss on a float32 copy of the
//                              logits, as before issue 21, for a side-by-side measure of both changes)
//   layerops [--device cuda] [--dtype bf16] [--features 2048] [--tokens 4096] [--configs 32:2,128:4]
//                              per-op timings of the GraLoRA and LoRA layers (LayerOps.cs)
//   cudamem                    checks that libtorch's CUDA allocator statistics can be read (CudaMemoryStats.cs)
//   lab rank|localisation|expressiveness|teacher|all [...]   the reproduction (bench/GraLoRA.Bench/LabBench.cs), via run-lab.sh
//   nccl [--device cuda] [--elements N]   a one-rank NCCL communicator on the device (NcclStage.cs)
//   quant --prepare-only --folder F [...] | quant-child BASE F DEVICE SEQ R K STEPS | quant-loss [...]   the quantised-base
//         bench (bench/GraLoRA.Bench/QuantBench.cs): run-gpu.sh's stage 5
try
{
    return (args.Length == 0 ? "" : args[0]) switch
    {
        "probe" => Kit.Probe(),
        "compare" => Kit.Compare(args),
        "train" => Kit.Train(args),
        "layerops" => LayerOps.Run(args),
        "cudamem" => Kit.CudaMemory(),
        "lab" => GraLoRA.Bench.LabBench.Run(args),
        "nccl" => NcclStage.Run(args),
        "quant" => GraLoRA.Bench.QuantBench.Run(args),
        "quant-child" => GraLoRA.Bench.QuantBench.Child(args),
        "quant-loss" => GraLoRA.Bench.QuantBench.Loss(args),
        _ => Kit.Usage(),
    };
}
catch (GraloraException ex)
{
    Console.WriteLine($"error {ex.ErrorId}: {ex.Message}");
    return 1;
}

static class Kit
{
    public static int Usage()
    {
        Console.Error.WriteLine("usage: GraLoRA.GpuKit probe | compare [--device cuda] [--features 1024] [--tokens 512] | train --method lora|gralora --rank R --k K [--device cuda] [--dtype bf16] [--hidden 2048] [--layers 16] [--seq 1024] [--batch 4] [--steps 5] [--baseline] | layerops [--device cuda] [--dtype bf16] [--features 2048] [--tokens 4096] [--configs 32:2,128:4] | cudamem");
        return 2;
    }

    internal static string Arg(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    internal static int Arg(string[] args, string name, int fallback) => int.Parse(Arg(args, name, fallback.ToString()));

    internal static void Result(object value) => Console.WriteLine("RESULT " + JsonSerializer.Serialize(value));

    internal static ScalarType DType(string name) => name switch
    {
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "fp32" or "float32" => ScalarType.Float32,
        "fp16" or "float16" => ScalarType.Float16,
        _ => throw new ArgumentException($"--dtype {name}: use bf16, fp16 or fp32"),
    };

    static long StatusBytes(string field) =>
        1024 * long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    /// <summary>The libtorch/LibTorchSharp files mapped into this process (what the dynamic loader really used).</summary>
    static List<string> MappedTorchFiles() =>
        File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries)).Where(p => p.Length == 6)
            .Select(p => p[5].Trim()).Where(f => f.Contains("libtorch") || f.Contains("libc10") || f.Contains("LibTorchSharp"))
            .Distinct().OrderBy(f => f, StringComparer.Ordinal).ToList();

    public static int Probe()
    {
        var info = TorchRuntime.GetDeviceInfo();
        manual_seed(0);
        using var scope = NewDisposeScope();
        var baseLayer = nn.Linear(64, 64, hasBias: false);
        var layer = new GraloraLinear(baseLayer, "default", new GraloraOptions { Rank = 8, K = 2, Alpha = 16, InitWeights = false });
        var x = randn(4, 64);
        double checksum = layer.forward(x).to(ScalarType.Float64).abs().sum().item<double>();
        Console.WriteLine($"libtorch {info.LibTorchVersion} from {info.LibTorchSource} ({info.LibTorchDirectory ?? "NuGet"}); CUDA: {(info.CudaAvailable ? info.CudaDeviceCount + " device(s)" : info.CudaUnavailableReason)}");
        if (info.LibTorchWarning != null) Console.WriteLine("warning: " + info.LibTorchWarning);
        Console.WriteLine($"self-test {(info.SelfTestPassed ? "passed" : "FAILED")}; GraLoRA checksum {checksum:R}");
        Result(new
        {
            info.LibTorchSource, info.LibTorchDirectory, info.LibTorchVersion, info.LibTorchWarning, info.TorchSharpVersion, info.CudaAvailable,
            info.CudaDeviceCount, info.CudaUnavailableReason, info.SelfTestPassed, info.NativeLibrary, Checksum = checksum, Mapped = MappedTorchFiles(),
        });
        return info.SelfTestPassed ? 0 : 1;
    }

    static double RelErr(Tensor actual, Tensor expected)
    {
        var a = actual.detach().to(ScalarType.Float64).cpu();
        var e = expected.detach().to(ScalarType.Float64).cpu();
        double scale = Math.Max(e.abs().max().item<double>(), 1e-12);
        return (a - e).abs().max().item<double>() / scale;
    }

    /// <summary>Forward + backward of one adapter layer; returns y, dx and the adapter gradients (all float32, CPU).</summary>
    static List<Tensor> RunLayer(AdapterLayerBase layer, Tensor x, Tensor g)
    {
        var xin = x.detach().clone().requires_grad_(true);
        var y = layer.forward(xin);
        (y.to(ScalarType.Float32) * g).sum().backward();
        var outputs = new List<Tensor> { y.detach().to(ScalarType.Float32).cpu(), xin.grad!.to(ScalarType.Float32).cpu() };
        outputs.AddRange(layer.AdapterParameters("default").Select(p => p.grad!.to(ScalarType.Float32).cpu()));
        return outputs;
    }

    static AdapterLayerBase MakeLayer(string method, int r, int k, Tensor weight, Device device, ScalarType dtype)
    {
        var baseLayer = nn.Linear(weight.shape[1], weight.shape[0], hasBias: false, device: device, dtype: dtype);
        using (no_grad()) baseLayer.weight!.copy_(weight.to(dtype).to(device));
        baseLayer.weight!.requires_grad = false;
        return method == "lora"
            ? new LoraLinear(baseLayer, "default", new LoraOptions { Rank = r, Alpha = 2 * r, InitWeights = false })
            : new GraloraLinear(baseLayer, "default", new GraloraOptions { Rank = r, K = k, Alpha = 2 * r, InitWeights = false });
    }

    public static int Compare(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        var device = TorchRuntime.ResolveDevice(Arg(args, "--device", "cuda"));
        int features = Arg(args, "--features", 1024), tokens = Arg(args, "--tokens", 512);
        Console.WriteLine($"layer forward+backward on {device} vs the CPU in float32: in=out={features}, {tokens} tokens; relative error = max|a-b| / max|b|");
        Console.WriteLine($"{"layer",-18} {"dtype",-9} {"y",10} {"dx",10} {"dA",10} {"dB",10}");
        var rows = new List<object>();
        double worst32 = 0;
        foreach (var (method, r, k) in new[] { ("lora", 32, 0), ("gralora", 32, 2), ("lora", 128, 0), ("gralora", 128, 4) })
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            {
                using var scope = NewDisposeScope();
                manual_seed(7);
                var weight = randn(features, features) / Math.Sqrt(features);
                var x = randn(tokens, features);
                var g = randn(tokens, features);
                var cpuLayer = MakeLayer(method, r, k, weight, CPU, ScalarType.Float32);
                var devLayer = MakeLayer(method, r, k, weight, device, dtype);
                using (no_grad())
                    foreach (var (d, c) in devLayer.AdapterParameters("default").Zip(cpuLayer.AdapterParameters("default")))
                        d.copy_(c.to(d.dtype).to(device));
                var reference = RunLayer(cpuLayer, x, g);
                var measured = RunLayer(devLayer, x.to(dtype).to(device), g.to(device));
                var errors = measured.Zip(reference, RelErr).ToList();
                string name = $"{method} r={r}" + (k > 0 ? $" k={k}" : "");
                string dt = dtype == ScalarType.Float32 ? "float32" : "bfloat16";
                if (dtype == ScalarType.Float32) worst32 = Math.Max(worst32, errors.Max());
                Console.WriteLine($"{name,-18} {dt,-9} {errors[0],10:E2} {errors[1],10:E2} {errors[2],10:E2} {errors[3],10:E2}");
                rows.Add(new { Layer = name, DType = dt, Y = errors[0], Dx = errors[1], DA = errors[2], DB = errors[3] });
                cpuLayer.Dispose(); devLayer.Dispose();
            }
        Result(new { Device = device.ToString(), Features = features, Tokens = tokens, Rows = rows, WorstFloat32 = worst32 });
        return 0;
    }

    public static int Train(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        string method = Arg(args, "--method", "gralora");
        int rank = Arg(args, "--rank", 32), k = Arg(args, "--k", 2);
        int hidden = Arg(args, "--hidden", 2048), layers = Arg(args, "--layers", 16), heads = Arg(args, "--heads", hidden / 128);
        int kvHeads = Arg(args, "--kv-heads", Math.Max(1, heads / 4)), intermediate = Arg(args, "--intermediate", hidden * 11 / 4);
        int vocab = Arg(args, "--vocab", 32000), seq = Arg(args, "--seq", 1024), batch = Arg(args, "--batch", 4), steps = Arg(args, "--steps", 5);
        bool baseline = args.Contains("--baseline");
        var device = TorchRuntime.ResolveDevice(Arg(args, "--device", "cuda"));
        var dtype = DType(Arg(args, "--dtype", "bf16"));
        bool cuda = device.type == DeviceType.CUDA;
        // libtorch's allocator statistics, when run-gpu.sh's cudamem stage found them readable (KIT_TORCH_STATS=1).
        var torchStats = cuda && Environment.GetEnvironmentVariable("KIT_TORCH_STATS") == "1" ? OpenCudaMemoryStats(device, out _) : null;

        var buildWatch = Stopwatch.StartNew();
        var options = new TinyModelOptions { HiddenSize = hidden, IntermediateSize = intermediate, Layers = layers, Heads = heads, KeyValueHeads = kvHeads, VocabSize = vocab, Seed = 1 };
        using var model = TinyModelFactory.Create(options);
        model.to(dtype).to(device);
        long baseParameters = model.parameters().Sum(p => p.numel());
        var host = new AdapterHost(model, DecoderForCausalLM.OutputHeadName);
        // The paper's equal-parameter settings per method (RaSA k = r/8, MoRA type 6); GraLoRA's k from --k.
        var config = AdapterConfig.ForComparison(Enum.Parse<AdapterMethod>(method, ignoreCase: true), rank,
            new AdapterConfig { InitWeights = false, TargetModules = new[] { AdapterConfig.AllLinear } });
        if (config.Method == AdapterMethod.GraLoRA) config = config with { K = k };
        host.Add("kit", config);
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        long adapterParameters = trainable.Sum(p => p.numel());
        string adapterDType = trainable[0].dtype.ToString();
        using var optimizer = optim.AdamW(trainable, 1e-4);
        manual_seed(2);
        // The trainer's own loss path (Trainer.LossSum): a full batch with attention mask and positions, no padding.
        var tokenIds = randint(0, vocab, new long[] { batch, seq }).data<long>().ToArray();
        var data = new DataBatch(batch, seq, tokenIds, tokenIds, Enumerable.Repeat(1L, batch * seq).ToArray(),
            Enumerable.Range(0, batch).SelectMany(_ => Enumerable.Range(0, seq).Select(i => (long)i)).ToArray(), null, null, Enumerable.Range(0, batch).ToArray());
        long predicted = Trainer.PredictedTokens(data);
        model.train();
        if (cuda) cuda_synchronize();
        Console.WriteLine($"{GraLoRA.Training.MethodComparison.Describe(config)}{(baseline ? " (baseline: explicit attention mask, float32 logits copy)" : "")}: {baseParameters / 1e6:F0}M base parameters in {dtype} on {device}, {adapterParameters / 1e6:F2}M adapter parameters in {adapterDType}, built in {buildWatch.Elapsed.TotalSeconds:F1} s; batch {batch} × {seq} tokens");
        long rssBefore = StatusBytes("VmRSS");
        torchStats?.ResetPeak();
        long allocatedBefore = torchStats?.Read().Allocated ?? 0;
        var times = new List<double>();
        double lastLoss = double.NaN;
        for (int s = 0; s <= steps; s++)
        {
            var sw = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                var loss = (baseline ? GraLoRA.Bench.BenchSupport.BaselineLossSum(model, data, device) : Trainer.LossSum(model, data, device)) / predicted;
                loss.backward();
                optimizer.step();
                optimizer.zero_grad();
                lastLoss = loss.item<float>();                                            // also synchronises
            }
            if (cuda) cuda_synchronize();
            if (s > 0) times.Add(sw.Elapsed.TotalSeconds);                                 // step 0 warms up
            Console.WriteLine($"  step {s}: {sw.Elapsed.TotalSeconds:F3} s, loss {lastLoss:F4}");
        }
        double median = times.OrderBy(t => t).ElementAt(times.Count / 2);
        long peakRss = StatusBytes("VmHWM") - rssBefore;
        var stats = torchStats?.Read();
        Console.WriteLine($"median step {median:F3} s = {batch * seq / median:F0} tokens/s; peak RSS above baseline {peakRss / 1e6:F0} MB"
            + (stats is { } st ? $"; libtorch peak allocated {(st.AllocatedPeak - allocatedBefore) / 1073741824.0:F2} GiB above the model, peak reserved {st.ReservedPeak / 1073741824.0:F2} GiB" : ""));
        Result(new
        {
            Implementation = "GraLoRA.NET", Method = method, Rank = rank, K = config.K?.Value ?? config.RasaK ?? 0, Settings = GraLoRA.Training.MethodComparison.Describe(config), Device = device.ToString(), DType = dtype.ToString(),
            AdapterDType = adapterDType, BaseParameters = baseParameters, AdapterParameters = adapterParameters, Hidden = hidden, Layers = layers,
            Seq = seq, Batch = batch, Steps = steps, StepSeconds = times, MedianStepSeconds = median, TokensPerSecond = batch * seq / median,
            PeakRssBytes = peakRss, LastLoss = lastLoss, Baseline = baseline,
            // As peft_compare.py: peak allocated above what was allocated before the first step, peak reserved in all.
            TorchPeakAllocatedBytes = stats is { } a ? a.AllocatedPeak - allocatedBefore : (long?)null,
            TorchPeakReservedBytes = stats?.ReservedPeak,
        });
        return 0;
    }

    static CudaMemoryStats? OpenCudaMemoryStats(Device device, out string reason)
    {
        var directory = TorchRuntime.GetDeviceInfo().LibTorchDirectory;
        if (directory is null)
        {
            reason = "libtorch is not loaded from a folder (GRALORA_LIBTORCH)";
            return null;
        }
        return CudaMemoryStats.Open(directory, floats => empty(floats, device: device), out reason);
    }

    /// <summary>
    /// Whether libtorch's CUDA allocator statistics can be read here (run-gpu.sh then passes them to train). The layout
    /// and type checks also run without CUDA, on the CPU allocator, so the CPU run checks the reader's parts.
    /// </summary>
    public static int CudaMemory()
    {
        TorchRuntime.EnsureInitialized();
        var info = TorchRuntime.GetDeviceInfo();
        var directory = info.LibTorchDirectory;
        if (directory is null)
        {
            Console.WriteLine("libtorch CUDA allocator statistics: not available (libtorch is not loaded from a folder: set GRALORA_LIBTORCH)");
            Result(new { Available = false, Reason = "no GRALORA_LIBTORCH" });
            return 0;
        }
        int firstSlot = CudaMemoryStats.FirstDeviceAllocatorSlot(directory, out string layout);
        var cpu = CudaMemoryStats.DescribeCpuAllocator(directory);
        Console.WriteLine(firstSlot >= 0 ? $"c10::DeviceAllocator vtable: its own functions from slot {firstSlot}" : $"c10::DeviceAllocator vtable: {layout}");
        Console.WriteLine($"CPU allocator {cpu.Type}: c10::Allocator {cpu.IsAllocator}, c10::DeviceAllocator {cpu.IsDeviceAllocator}");
        string reason = info.CudaAvailable ? "" : "no CUDA device";
        var stats = info.CudaAvailable ? OpenCudaMemoryStats(TorchRuntime.ResolveDevice("cuda"), out reason) : null;
        Console.WriteLine(stats is null ? $"libtorch CUDA allocator statistics: not available ({reason})"
            : $"libtorch CUDA allocator statistics: readable ({stats.AllocatorType}); a 64 MiB tensor checked");
        Result(new
        {
            Available = stats is not null, Reason = reason, stats?.AllocatorType, FirstDeviceAllocatorSlot = firstSlot,
            CpuAllocatorType = cpu.Type, CpuAllocatorIsAllocator = cpu.IsAllocator, CpuAllocatorIsDeviceAllocator = cpu.IsDeviceAllocator,
        });
        return 0;
    }

    static void cuda_synchronize() => torch.cuda.synchronize();
}
