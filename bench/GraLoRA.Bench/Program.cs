using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using GraLoRA;
using GraLoRA.Adapters;
using GraLoRA.Bench;
using TorchSharp;
using static TorchSharp.torch;

// Benchmarks print ratios measured side by side in one run: every repetition times each contender
// back to back, so machine noise hits both. Usage:
//   dotnet run -c Release --project bench/GraLoRA.Bench -- layer|load|generate [options]  (see bench/README.md)

switch (args.Length == 0 ? "" : args[0])
{
    case "layer": break;
    case "load": return GraLoRA.Bench.LoadBench.Run(args);
    case "load-child": return GraLoRA.Bench.LoadBench.Child(args);
    case "generate": return GraLoRA.Bench.GenerateBench.Run(args);
    case "train": return GraLoRA.Bench.TrainBench.Run(args);
    case "train-child": return GraLoRA.Bench.TrainBench.Child(args);
    case "train-paths": return GraLoRA.Bench.TrainBench.Paths(args);
    case "train-paths-child": return GraLoRA.Bench.TrainBench.PathsChild(args);
    case "lab": return GraLoRA.Bench.LabBench.Run(args);
    case "methods": return GraLoRA.Bench.MethodsBench.Run(args);
    case "crash-child": return GraLoRA.Bench.CrashChild.Run(args);
    case "dist-child": return GraLoRA.Bench.DistChild.Run(args);
    case "dist": return GraLoRA.Bench.DistBench.Run(args);
    case "quant": return GraLoRA.Bench.QuantBench.Run(args);
    case "quant-child": return GraLoRA.Bench.QuantBench.Child(args);
    case "quant-loss": return GraLoRA.Bench.QuantBench.Loss(args);
    case "convert": return GraLoRA.Bench.ConvertBench.Run(args);
    case "convert-child": return GraLoRA.Bench.ConvertBench.Child(args);
    default:
        Console.Error.WriteLine("usage: GraLoRA.Bench layer [--features N] [--tokens N] [--reps N] [--device cpu|cuda]");
        Console.Error.WriteLine("       GraLoRA.Bench load [--hidden N] [--layers N] [--folder PATH] [--reps N]");
        Console.Error.WriteLine("       GraLoRA.Bench generate [--tokens N] [--reps N]");
        Console.Error.WriteLine("       GraLoRA.Bench convert [--hidden 4096] [--mlp 14336]");
        Console.Error.WriteLine("       GraLoRA.Bench quant [--hidden 1024] [--layers 8] [--seq 256] [--rank 32] [--k 2] [--steps 2] [--reps 3] [--device cpu]");
        Console.Error.WriteLine("       GraLoRA.Bench quant-loss [--steps 200] [--every 10] [--dtype bfloat16] [--device cpu] [--hidden 128] [--layers 4]");
        Console.Error.WriteLine("       GraLoRA.Bench train [--hidden 512] [--layers 8] [--seq 512] [--rank 64] [--k 4] [--steps 3] [--reps 3]");
        Console.Error.WriteLine("       GraLoRA.Bench methods [--hidden 256] [--layers 2] [--seq 128] [--rank 32] [--steps 5] [--reps 5] [--full]");
        Console.Error.WriteLine("       GraLoRA.Bench dist [--hidden 512] [--layers 8] [--seq 128] [--rank 64] [--steps 6] [--reps 3]");
        Console.Error.WriteLine("       GraLoRA.Bench train-paths [--hidden 512] [--layers 8] [--seq 512] [--rank 64] [--k 4] [--pairs 6]");
        Console.Error.WriteLine("       GraLoRA.Bench lab rank|localisation|expressiveness|all [--out docs/reproduction] [--scale small|large] [--device cpu|cuda] [--threads 1]");
        return 2;
}

TorchRuntime.EnsureInitialized();
int features = BenchSupport.Arg(args, "--features", 2048), tokens = BenchSupport.Arg(args, "--tokens", 2048), reps = BenchSupport.Arg(args, "--reps", 7);
int di = Array.IndexOf(args, "--device");
var device = TorchRuntime.ResolveDevice(di >= 0 ? args[di + 1] : "cpu");
Console.WriteLine($"GraLoRA vs LoRA layer benchmark: in=out={features}, tokens={tokens}, {reps} reps, device {device}, {get_num_threads()} threads");
Console.WriteLine("times: medians; ratio: median of per-repetition GraLoRA/LoRA ratios (each pair timed back to back)");
Console.WriteLine("forward+backward; 'adapter' = the adapter update alone, 'layer' = frozen base + adapter, grads for x and the adapter");
Console.WriteLine("'G before': GraLoRA's layer as computed before issue 21 (permute regroup, output blocks copied to [M, out]); 'now/before': paired ratio");
Console.WriteLine();
Console.WriteLine($"{"config",-22} {"LoRA r",7} {"adapter ms L/G",16} {"ratio",6} {"layer ms L/G",16} {"ratio",6} {"G before",9} {"now/before",10}");

var configs = new (int R, int K, int H)[] { (16, 2, 8), (32, 2, 0), (64, 4, 0), (128, 4, 0) };
foreach (var (r, k, h) in configs)
{
    manual_seed(0);
    var baseLayer = nn.Linear(features, features, hasBias: false, device: device);
    baseLayer.weight!.requires_grad = false;
    var gralora = new GraloraLinear(baseLayer, "default", new GraloraOptions { Rank = r, K = k, HybridRank = h, Alpha = 2 * r, InitWeights = false });
    var lora = new LoraLinear(baseLayer, "default", new LoraOptions { Rank = r + h, Alpha = 2 * (r + h), InitWeights = false });
    var x = randn(new long[] { tokens, features }, device: device).requires_grad_(true);
    var g = randn(new long[] { tokens, features }, device: device);

    double Time(Func<Tensor> f, IEnumerable<Tensor> parameters)
    {
        using var scope = NewDisposeScope();
        foreach (var p in parameters) p.grad = null;
        x.grad = null;
        if (device.type == DeviceType.CUDA) cuda.synchronize();
        var sw = Stopwatch.StartNew();
        (f() * g).sum().backward();
        if (device.type == DeviceType.CUDA) cuda.synchronize();
        return sw.Elapsed.TotalMilliseconds;
    }

    var contenders = new (string Name, Func<Tensor> Run, IEnumerable<Tensor> Params)[]
    {
        ("lora-adapter", () => lora.AdapterUpdate("default", x), lora.AdapterParameters("default")),
        ("gralora-adapter", () => gralora.AdapterUpdate("default", x), gralora.AdapterParameters("default")),
        ("lora-layer", () => lora.forward(x), lora.AdapterParameters("default")),
        ("gralora-layer", () => gralora.forward(x), gralora.AdapterParameters("default")),
    };
    // Without a hybrid part, also GraLoRA's layer as computed before issue 21 (BenchSupport.BaselineGraloraForward).
    if (h == 0)
    {
        using var check = NewDisposeScope();
        using var _ = no_grad();
        var (current, previous) = (gralora.forward(x), BenchSupport.BaselineGraloraForward(gralora, "default", x));
        double error = (current - previous).abs().max().item<float>() / previous.abs().max().item<float>();
        if (error > 1e-5) throw new InvalidOperationException($"the pre-issue-21 GraLoRA layout computes another output (relative error {error:E2})");
        contenders = contenders.Append(("gralora-layer-before", () => BenchSupport.BaselineGraloraForward(gralora, "default", x), gralora.AdapterParameters("default"))).ToArray();
    }
    var times = contenders.ToDictionary(c => c.Name, _ => new List<double>());
    for (int rep = -2; rep < reps; rep++)                      // two warm-up rounds
        foreach (var c in contenders)
        {
            double ms = Time(c.Run, c.Params);
            if (rep >= 0) times[c.Name].Add(ms);
        }
    static double Median(IEnumerable<double> values) { var t = values.OrderBy(v => v).ToList(); return t[t.Count / 2]; }
    // Ratios are paired per repetition (GraLoRA and LoRA timed back to back), then the median is taken:
    // drift in machine load cancels within a pair.
    double PairedRatio(string lora, string gralora) => Median(times[gralora].Zip(times[lora], (g, l) => g / l));
    double la = Median(times["lora-adapter"]), ga = Median(times["gralora-adapter"]), ll = Median(times["lora-layer"]), gl = Median(times["gralora-layer"]);
    string name = $"r={r} k={k}" + (h > 0 ? $" hybrid={h}" : "");
    string before = h == 0 ? $"{Median(times["gralora-layer-before"]),9:F1} {PairedRatio("gralora-layer-before", "gralora-layer"),10:F2}" : $"{"-",9} {"-",10}";
    Console.WriteLine($"{name,-22} {r + h,7} {la,7:F1}/{ga,-8:F1} {PairedRatio("lora-adapter", "gralora-adapter"),6:F2} {ll,7:F1}/{gl,-8:F1} {PairedRatio("lora-layer", "gralora-layer"),6:F2} {before}");
}
return 0;
