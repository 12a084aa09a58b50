using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using GraLoRA;
using GraLoRA.Adapters;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// Where a GraLoRA layer's time goes next to LoRA's on the device: the real layers forward and forward + backward
/// (autograd), then each tensor operation GraloraLinear's forward runs and the ones its backward runs, replayed one by
/// one on tensors of the same shapes (base in --dtype, adapters in float32 as in training). The op list mirrors
/// GraloraLinear.BlockOutputs / AddAdapterOutput; "regroup" is the one copy between the two batched matmuls, and the
/// "[M, out] order" rows are the copies the layer avoids (kept for comparison). Also: the layer as computed before issue
/// 21 (BenchSupport.BaselineGraloraForward), both layers on 64 tokens (launch cost), and "alt" rows for layouts not used.
/// </summary>
static class LayerOps
{
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        var device = TorchRuntime.ResolveDevice(Kit.Arg(args, "--device", "cuda"));
        var dtype = Kit.DType(Kit.Arg(args, "--dtype", "bf16"));
        int features = Kit.Arg(args, "--features", 2048), tokens = Kit.Arg(args, "--tokens", 4096), reps = Kit.Arg(args, "--reps", 20);
        var configs = Kit.Arg(args, "--configs", "32:2,128:4").Split(',').Select(c => c.Split(':')).Select(p => (R: int.Parse(p[0]), K: int.Parse(p[1]))).ToList();
        Console.WriteLine($"GraLoRA vs LoRA layer ops on {device}: in=out={features}, {tokens} tokens, base {dtype}, adapters Float32; median of {reps} timings (ms), each over {Inner} calls");
        var results = new List<object>();
        foreach (var (r, k) in configs)
        {
            var ops = Measure(device, dtype, features, tokens, r, k, reps);
            Console.WriteLine($"-- r={r} k={k}");
            foreach (var (name, ms) in ops) Console.WriteLine($"  {name,-44} {ms,9:F3}");
            results.Add(new { Rank = r, K = k, Ops = ops.ToDictionary(o => o.Name, o => o.Ms) });
        }
        Kit.Result(new { Device = device.ToString(), DType = dtype.ToString(), Features = features, Tokens = tokens, Configs = results });
        return 0;
    }

    const int Inner = 5;

    static List<(string Name, double Ms)> Measure(Device device, ScalarType dtype, int features, int tokens, int r, int k, int reps)
    {
        using var scope = NewDisposeScope();
        bool cuda = device.type == DeviceType.CUDA;
        void Sync() { if (cuda) torch.cuda.synchronize(); }
        var ops = new List<(string, double)>();
        void Time(string name, Func<Tensor> op)
        {
            var times = new List<double>();
            for (int rep = -2; rep < reps; rep++)
            {
                using var inner = NewDisposeScope();
                Sync();
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < Inner; i++) op();
                Sync();
                if (rep >= 0) times.Add(sw.Elapsed.TotalMilliseconds / Inner);
            }
            ops.Add((name, times.OrderBy(t => t).ElementAt(times.Count / 2)));
        }

        manual_seed(0);
        long m = tokens, inBlock = features / k, outBlock = features / k, s = r / k;
        var baseLayer = nn.Linear(features, features, hasBias: false, device: device, dtype: dtype);
        baseLayer.weight!.requires_grad = false;
        var lora = new LoraLinear(baseLayer, "default", new LoraOptions { Rank = r, Alpha = 2 * r, InitWeights = false });
        var gralora = new GraloraLinear(baseLayer, "default", new GraloraOptions { Rank = r, K = k, Alpha = 2 * r, InitWeights = false });
        var x = randn(new long[] { m, features }, device: device).to(dtype).requires_grad_(true);
        var gy = randn(new long[] { m, features }, device: device).to(dtype);
        // Forward + backward of one layer on `input` with upstream gradient `gradient` (the adapters' grads cleared first).
        Tensor Backward(Tensor input, Tensor gradient, Func<Tensor, Tensor> layer, IEnumerable<Tensor> parameters)
        {
            foreach (var p in parameters) p.grad = null;
            input.grad = null;
            var y = layer(input);
            y.backward(new[] { gradient });
            return y;
        }
        Tensor GraloraBefore(Tensor input) => GraLoRA.Bench.BenchSupport.BaselineGraloraForward(gralora, "default", input);
        Time("layer: base only, forward + backward", () => Backward(x, gy, baseLayer.forward, Array.Empty<Tensor>()));
        Time("layer: LoRA, forward + backward", () => Backward(x, gy, lora.forward, lora.AdapterParameters("default")));
        Time("layer: GraLoRA, forward + backward", () => Backward(x, gy, gralora.forward, gralora.AdapterParameters("default")));
        Time("layer: GraLoRA before issue 21, forward + backward", () => Backward(x, gy, GraloraBefore, gralora.AdapterParameters("default")));
        Time("layer: LoRA, forward", () => lora.forward(x));
        Time("layer: GraLoRA, forward", () => gralora.forward(x));
        // The same layers on 64 tokens: the kernels are tiny, so this is what launching them costs (host-side dispatch).
        var xSmall = x.detach().narrow(0, 0, Math.Min(64, m)).clone().requires_grad_(true);
        var gySmall = gy.narrow(0, 0, Math.Min(64, m)).clone();
        Time("launch: LoRA, 64 tokens, forward + backward", () => Backward(xSmall, gySmall, lora.forward, lora.AdapterParameters("default")));
        Time("launch: GraLoRA, 64 tokens, forward + backward", () => Backward(xSmall, gySmall, gralora.forward, gralora.AdapterParameters("default")));

        using var _ = no_grad();
        var a = gralora.A("default").detach();                                                 // [k, in/k, r]
        var b = gralora.B("default").detach();                                                 // [k, r, out/k]
        var x32 = x.detach().to(ScalarType.Float32);                                           // [M, in]
        var xBlocks = x32.view(m, k, inBlock).transpose(0, 1);                                 // [k, M, in/k], strided
        var t = xBlocks.bmm(a);                                                                // [k(n), M, r]
        var u = t.view(k, m, k, s).permute(2, 1, 0, 3).reshape(k, m, r);                       // [k(j), M, r]
        var blocks = u.bmm(b);                                                                 // [k(j), M, out/k]
        var result = x.detach().matmul(baseLayer.weight!.t());                                 // [M, out]
        var g32 = gy.to(ScalarType.Float32);
        var gBlocks = g32.view(m, k, outBlock).transpose(0, 1);                                // [k(j), M, out/k], strided
        var gu = gBlocks.bmm(b.transpose(1, 2));                                               // [k(j), M, r]
        var gt = gu.view(k, m, k, s).permute(2, 1, 0, 3).reshape(k, m, r);                      // [k(n), M, r]
        var gxBlocks = gt.bmm(a.transpose(1, 2));                                              // [k(n), M, in/k]
        double scaling = 2.0;
        Time("fwd: base x·Wᵀ", () => x.detach().matmul(baseLayer.weight!.t()));
        Time("fwd: x to float32 (both methods)", () => x.detach().to(ScalarType.Float32));
        Time("fwd: GraLoRA x blocks · A (bmm)", () => xBlocks.bmm(a));
        Time("fwd alt: x blocks copied contiguous, then · A (bmm)", () => xBlocks.contiguous().bmm(a));
        Time("fwd: GraLoRA regroup copy [k, M, r]", () => t.view(k, m, k, s).permute(2, 1, 0, 3).reshape(k, m, r));
        Time("fwd: GraLoRA u · B (bmm)", () => u.bmm(b));
        Time("fwd: GraLoRA add blocks in place order", () => result.view(m, k, outBlock).add(blocks.to(dtype).transpose(0, 1), alpha: scaling));
        Time("fwd: GraLoRA blocks to [M, out] order (old)", () => blocks.transpose(0, 1).reshape(m, features));
        Time("fwd: add an [M, out] update (LoRA)", () => result.add(blocks.view(m, features).to(dtype), alpha: scaling));
        var la = lora.A("default").detach();                                                   // [r, in]
        var lb = lora.B("default").detach();                                                   // [out, r]
        var lt = x32.mm(la.t());                                                               // [M, r]
        Time("fwd: LoRA x · Aᵀ (mm)", () => x32.mm(la.t()));
        Time("fwd: LoRA · Bᵀ (mm)", () => lt.mm(lb.t()));
        Time("bwd: gy to float32 (both methods)", () => gy.to(ScalarType.Float32));
        Time("bwd: GraLoRA dB = uᵀ · gy blocks (bmm)", () => u.transpose(1, 2).bmm(gBlocks));
        Time("bwd: GraLoRA du = gy blocks · Bᵀ (bmm)", () => gBlocks.bmm(b.transpose(1, 2)));
        Time("bwd: GraLoRA regroup back copy [k, M, r]", () => gu.view(k, m, k, s).permute(2, 1, 0, 3).reshape(k, m, r));
        Time("bwd: GraLoRA dA = x blocksᵀ · dt (bmm)", () => xBlocks.transpose(1, 2).bmm(gt));
        Time("bwd: GraLoRA dx blocks = dt · Aᵀ (bmm)", () => gt.bmm(a.transpose(1, 2)));
        Time("bwd: GraLoRA dx blocks to [M, in] copy", () => gxBlocks.transpose(0, 1).reshape(m, features));
        Time("bwd: dx to base dtype + add (both methods)", () => result.add(gxBlocks.view(m, features).to(dtype)));
        var glt = g32.mm(lb);                                                                  // [M, r]
        Time("bwd: LoRA dB = gyᵀ · (x·Aᵀ) (mm)", () => g32.t().mm(lt));
        Time("bwd: LoRA d(x·Aᵀ) = gy · B (mm)", () => g32.mm(lb));
        Time("bwd: LoRA dA = (gy·B)ᵀ · x (mm)", () => glt.t().mm(x32));
        Time("bwd: LoRA dx = (gy·B) · A (mm)", () => glt.mm(la));
        return ops;
    }
}
