using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Diagnostics;
using GraLoRA.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Bench
{
    /// <summary>
    /// The paper's core claims, reproduced on a CPU (docs/reproduction.md):
    ///   rank            ΔW's numerical rank for LoRA and GraLoRA (k = 1, 2, 4, 8) on LLaMA3.1-8B layer shapes at r 128, random A and B;
    ///   localisation    gradient deviation from full fine-tuning, LoRA vs GraLoRA across r, with a synthetic outlier channel
    ///                   injected into a tiny model's real activations (and without, as a control);
    ///   expressiveness  fitting a teacher layer W0 + ΔW with LoRA and GraLoRA at r 16–128 (equal parameters), final loss vs r;
    ///   teacher         the same for a whole decoder: a teacher model = base + a dense ΔW in every linear layer, the student
    ///                   (base + adapters on every linear layer) distilled on the teacher's logits.
    /// Usage: lab rank|localisation|expressiveness|teacher|all [--out docs/reproduction] [--scale small|large] [--device cpu|cuda]
    ///        [--threads 1] [--ranks 16,32] [--steps N] [--seeds N] [--batches N]   (these shrink a run, for smoke checks)
    ///        [--n N] [--batch N]   (expressiveness: the teacher layer's size and the batch, e.g. n 512 with r 16–128 on a CPU)
    /// </summary>
    static class LabBench
    {
        static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

        public static int Run(string[] args)
        {
            TorchRuntime.EnsureInitialized();
            string part = args.Length > 1 ? args[1] : "all";
            string output = Path.GetFullPath(BenchSupport.Arg(args, "--out", Path.Combine("docs", "reproduction")));
            bool large = BenchSupport.Arg(args, "--scale", "small") == "large";
            var device = TorchRuntime.ResolveDevice(BenchSupport.Arg(args, "--device", "cpu"));
            Directory.CreateDirectory(output);
            // One thread by default: on a shared, oversubscribed CPU libtorch's spinning worker threads cost more than they give.
            set_num_threads(BenchSupport.Arg(args, "--threads", 1));
            ranksOverride = BenchSupport.Arg(args, "--ranks", "") is { Length: > 0 } list ? list.Split(',').Select(int.Parse).ToArray() : null;
            stepsOverride = BenchSupport.Arg(args, "--steps", 0);
            seedsOverride = BenchSupport.Arg(args, "--seeds", 0);
            batchesOverride = BenchSupport.Arg(args, "--batches", 0);
            nOverride = BenchSupport.Arg(args, "--n", 0);
            batchOverride = BenchSupport.Arg(args, "--batch", 0);
            if (part is not ("rank" or "localisation" or "expressiveness" or "teacher" or "all"))
            {
                Console.Error.WriteLine($"lab: unknown part '{part}'; use rank, localisation, expressiveness, teacher or all.");
                return 2;
            }
            Console.WriteLine($"GraLoRA lab: part {part}, scale {(large ? "large" : "small")}, device {device}, {get_num_threads()} threads, output {output}");
            if (part is "rank" or "all") Timed("rank", () => Rank(output, device, large));
            if (part is "localisation" or "all") Timed("localisation", () => Localisation(output, device, large));
            if (part is "expressiveness" or "all") Timed("expressiveness", () => Expressiveness(output, device, large));
            if (part is "teacher" or "all") Timed("teacher", () => Teacher(output, device, large));
            return 0;
        }

        static int[]? ranksOverride;
        static int stepsOverride, seedsOverride, batchesOverride, nOverride, batchOverride;
        static int[] Ranks(int[] planned) => ranksOverride ?? planned;
        static int Steps(int planned) => stepsOverride > 0 ? stepsOverride : planned;

        static void Timed(string part, Action run)
        {
            var watch = Stopwatch.StartNew();
            run();
            Console.WriteLine();
            Console.WriteLine(string.Format(Inv, "({0}: {1:0} s)", part, watch.Elapsed.TotalSeconds));
        }

        // (a) ΔW rank on real layer shapes.
        // A full SVD of a 4096×14336 ΔW is out of reach of a shared 2-core CPU, so the spectrum is computed from the factors:
        // ΔW = B̃·Ã with B̃ [out, k·r] (block (j, n)'s B_jn in output rows j) and Ã [k·r, in] (A_jn in input columns n);
        // with B̃ = Q_B·R_B and Ãᵀ = Q_A·R_A, ΔW = Q_B·(R_B·R_Aᵀ)·Q_Aᵀ has the singular values of the k·r × k·r matrix R_B·R_Aᵀ.
        // A cross-check on a smaller shape compares that with the direct SVD of GetDeltaWeight.
        static (Tensor BTilde, Tensor ATilde) Factors(AdapterLayerBase layer)
        {
            if (layer is LoraLinear l) return (l.B("a").detach(), l.A("a").detach());
            var g = (GraloraLinear)layer;
            long k = g.Options("a").K;
            var (a, b) = GraloraLinear.BlockFactors(g.A("a").detach(), g.B("a").detach(), k);   // [k, k, s, in/k], [k, k, out/k, s]
            long s = a.shape[2], inBlock = a.shape[3], outBlock = b.shape[2];
            var bTilde = zeros(k * outBlock, k * k * s, dtype: b.dtype, device: b.device);
            var aTilde = zeros(k * k * s, k * inBlock, dtype: a.dtype, device: a.device);
            for (long j = 0; j < k; j++)
                for (long n = 0; n < k; n++)
                {
                    long group = (j * k + n) * s;
                    bTilde[TensorIndex.Slice(j * outBlock, (j + 1) * outBlock), TensorIndex.Slice(group, group + s)] = b[j, n];
                    aTilde[TensorIndex.Slice(group, group + s), TensorIndex.Slice(n * inBlock, (n + 1) * inBlock)] = a[j, n];
                }
            return (bTilde, aTilde);
        }

        static SpectrumInfo FactorSpectrum(AdapterLayerBase layer)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var (bt, at) = Factors(layer);
            var rb = linalg.qr(bt.to(ScalarType.Float64)).R;
            var ra = linalg.qr(at.t().to(ScalarType.Float64)).R;
            var core = rb.mm(ra.t()).mul(layer.GetOptions("a").Scaling);                        // [k·r, k·r], same singular values as ΔW
            var values = linalg.svdvals(core).cpu().data<double>().ToArray();
            double tolerance = Math.Max(layer.OutFeatures, layer.InFeatures) * finfo(ScalarType.Float32).eps * values[0];   // the rule RankAnalysis uses for a float32 ΔW
            return new SpectrumInfo(values, values.LongCount(v => v > tolerance), RankAnalysis.EffectiveRank(values), tolerance);
        }

        static AdapterLayerBase RandomAdapter(int outF, int inF, int rank, int k, Device device)
        {
            manual_seed(0);
            var linear = nn.Linear(inF, outF, hasBias: false, device: device);
            return k == 1
                ? new LoraLinear(linear, "a", new LoraOptions { Rank = rank, Alpha = 2 * rank, InitWeights = false })
                : new GraloraLinear(linear, "a", new GraloraOptions { Rank = rank, K = k, Alpha = 2 * rank, InitWeights = false });
        }

        static void Rank(string output, Device device, bool large)
        {
            Console.WriteLine();
            Console.WriteLine("## (a) ΔW rank at r 128, random A and B (InitWeights=false), LLaMA3.1-8B shapes");
            Console.WriteLine();
            Console.WriteLine("Cross-check of the factor method against the direct SVD of GetDeltaWeight (1024×3584, r 32):");
            Console.WriteLine();
            Console.WriteLine("| k | direct rank | factor rank | direct eff. rank | factor eff. rank | max rel. diff of σ |");
            Console.WriteLine("|---|---|---|---|---|---|");
            foreach (int k in new[] { 1, 2, 4, 8 })
            {
                using var scope = NewDisposeScope();
                var layer = RandomAdapter(1024, 3584, 32, k, device);
                SpectrumInfo direct;
                using (no_grad()) direct = RankAnalysis.Analyse(layer.GetDeltaWeight("a"));
                var factor = FactorSpectrum(layer);
                double diff = factor.SingularValues.Select((v, i) => Math.Abs(v - direct.SingularValues[i]) / direct.SingularValues[0]).Max();
                Console.WriteLine(string.Format(Inv, "| {0} | {1} | {2} | {3:0.0} | {4:0.0} | {5:0.0e+0} |", k, direct.NumericalRank, factor.NumericalRank, direct.EffectiveRank, factor.EffectiveRank, diff));
            }
            Console.WriteLine();
            Console.WriteLine("| layer shape (out×in) | method | k | bound k·r | numerical rank | effective rank (entropy) | s |");
            Console.WriteLine("|---|---|---|---|---|---|---|");
            var shapes = new (string Name, int Out, int In)[] { ("q_proj 4096×4096", 4096, 4096), ("down_proj 4096×14336", 4096, 14336) };
            var spectra = new List<AdapterSpectrum>();
            foreach (var (name, outF, inF) in shapes)
                foreach (int k in new[] { 1, 2, 4, 8 })
                {
                    using var scope = NewDisposeScope();
                    var layer = RandomAdapter(outF, inF, 128, k, device);
                    var sw = Stopwatch.StartNew();
                    var s = FactorSpectrum(layer);
                    Console.WriteLine(string.Format(Inv, "| {0} | {1} | {2} | {3} | {4} | {5:0.0} | {6:0} |", name, k == 1 ? "LoRA" : "GraLoRA", k, 128 * k, s.NumericalRank, s.EffectiveRank, sw.Elapsed.TotalSeconds));
                    spectra.Add(new AdapterSpectrum("a", name, layer.Method, 128, k, 0, outF, inF, 128 * k, s.NumericalRank, s.EffectiveRank, s.SingularValues));
                    layer.BaseLayer.Dispose();
                }
            DiagnosticCharts.SaveSpectra(spectra.Where(s => s.InFeatures == 14336).ToList(), Path.Combine(output, "rank-spectra.png"));
        }

        // (b) Gradient localisation with an injected outlier channel.
        static void Localisation(string output, Device device, bool large)
        {
            int hidden = large ? 2048 : 256, intermediate = large ? 5632 : 512, layers = large ? 16 : 2;
            string folder = Path.Combine(Path.GetTempPath(), $"gralora-lab-{hidden}-{Guid.NewGuid():N}");
            TinyModelFactory.SaveWithTokenizer(folder, new TinyModelOptions { HiddenSize = hidden, IntermediateSize = intermediate, Layers = layers, Heads = 8, KeyValueHeads = 4, Seed = 1 });
            using var model = BaseModel.Load(folder, new BaseModelLoadOptions { Device = device.ToString() });
            var source = DatasetSource.FromFile(FindExampleData());
            var prepared = TrainingData.Prepare(model.Tokenizer!, source, null, new DataOptions { MaxLength = 128 });
            var loader = new BatchLoader(prepared.Train, prepared.PadTokenId, new BatchOptions { BatchSize = 4, Shuffle = false });
            const int channel = 37;
            const double factor = 50;
            string layer = "layers.1.mlp.down_proj";
            int seeds = seedsOverride > 0 ? seedsOverride : 3, batches = batchesOverride > 0 ? batchesOverride : 4;
            Console.WriteLine();
            Console.WriteLine($"## (b) Deviation of the implied update from full fine-tuning: tiny Llama (hidden {hidden}, intermediate {intermediate}, {layers} layers, random weights), {layer}, tiny-chat.jsonl, {batches} batches of 4");
            Console.WriteLine($"Outlier: input channel {channel} × {factor}. Fresh factors, A Kaiming-uniform; B 'A-bound' = uniform with A's bound, 'zero' = PEFT's B = 0 (U = G·AᵀA). Seeds 0–{seeds - 1}, mean over seeds. Dev = 1 − cos(U, G); Err = ‖cU − G‖/‖G‖; share = outlier channel's share of ‖·‖²; far = mean block error outside the outlier's input block column.");
            Console.WriteLine();
            Console.WriteLine("| B | outlier | r | k | G share | LoRA Dev | GraLoRA Dev | LoRA Err | GraLoRA Err | LoRA share | GraLoRA share | LoRA far | GraLoRA far |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
            var ranks = Ranks(new[] { 8, 16, 32, 64, 128 });
            var series = new Dictionary<string, List<double>>();
            foreach (bool zeroB in new[] { false, true })
            foreach (bool inject in new[] { false, true })
                foreach (int r in ranks)
                {
                    int k = Math.Max(2, AdapterConfig.AutoK(r));
                    var rows = Enumerable.Range(0, seeds).Select(seed => GradientEntanglement.Measure(model, loader, new EntanglementOptions
                    {
                        Layers = new[] { layer }, Rank = r, K = k, Batches = batches, Seed = seed, ZeroB = zeroB,
                        InjectOutliers = inject ? new Dictionary<int, double> { [channel] = factor } : null,
                    }).Single()).ToList();
                    double Mean(Func<LayerEntanglement, double> f) => rows.Average(f);
                    long inBlock = rows[0].InFeatures / k;
                    int outlierBlock = (int)(channel / inBlock);
                    double Far(UpdateDeviation d)
                    {
                        var values = new List<double>();
                        for (int j = 0; j < d.BlockError.GetLength(0); j++)
                            for (int n = 0; n < d.BlockError.GetLength(1); n++)
                                if (n != outlierBlock) values.Add(d.BlockError[j, n]);
                        return values.Average();
                    }
                    var line = (zeroB ? "| zero " : "| A-bound ") + string.Format(Inv, "| {0} | {1} | {2} | {3:0.000} | {4:0.000} | {5:0.000} | {6:0.000} | {7:0.000} | {8:0.000} | {9:0.000} | {10:0.000} | {11:0.000} |",
                        inject ? $"ch {channel} ×{factor}" : "none", r, k, Mean(l => l.GradientOutlierShare),
                        Mean(l => l.Lora!.Deviation), Mean(l => l.Gralora!.Deviation), Mean(l => l.Lora!.NormalizedError), Mean(l => l.Gralora!.NormalizedError),
                        Mean(l => l.Lora!.OutlierShare), Mean(l => l.Gralora!.OutlierShare), Mean(l => Far(l.Lora!)), Mean(l => Far(l.Gralora!)));
                    Console.WriteLine(line);
                    string tag = (inject ? "outlier" : "no outlier") + (zeroB ? ", B = 0" : ", B A-bound");
                    Add(series, $"LoRA ({tag})", Mean(l => Far(l.Lora!)));
                    Add(series, $"GraLoRA ({tag})", Mean(l => Far(l.Gralora!)));
                    if (inject && r == ranks[Math.Min(2, ranks.Length - 1)])
                    {
                        var charted = DiagnosticCharts.SaveEntanglement(rows[0], Path.Combine(output, $"localisation-r{r}" + (zeroB ? "-zeroB" : "")));
                        Console.WriteLine($"(charts for r {r}, seed 0: {string.Join(", ", charted.Charts.Select(Path.GetFileName))})");
                    }
                }
            var xs = ranks.Select(r => (double)r).ToArray();
            DiagnosticCharts.SaveLines(Path.Combine(output, "localisation-far-error.png"), $"{layer}: mean block error ‖cU − G‖/‖G‖ outside the outlier's input blocks", "r", "block error",
                series.Select(kv => (kv.Key, xs, kv.Value.ToArray())).ToList());
            try { Directory.Delete(folder, true); } catch (IOException) { }
        }

        static void Add(Dictionary<string, List<double>> series, string name, double value)
        {
            if (!series.TryGetValue(name, out var list)) series[name] = list = new List<double>();
            list.Add(value);
        }

        static string FindExampleData()
        {
            foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                {
                    string candidate = Path.Combine(dir.FullName, "examples", "data", "tiny-chat.jsonl");
                    if (File.Exists(candidate)) return candidate;
                }
            throw new FileNotFoundException("examples/data/tiny-chat.jsonl not found above the current folder or " + AppContext.BaseDirectory);
        }

        // (c) Expressiveness at equal parameter count.
        static void Expressiveness(string output, Device device, bool large)
        {
            int n = nOverride > 0 ? nOverride : large ? 2048 : 128, steps = Steps(large ? 2000 : 300), batch = batchOverride > 0 ? batchOverride : large ? 1024 : 128;
            Console.WriteLine();
            Console.WriteLine($"## (c) Fitting a teacher layer W0 + ΔW ({n}×{n}) with LoRA and GraLoRA (same parameter count r·(in+out)), {steps} Adam steps, lr 5e-3, batch {batch}, x ~ N(0, I)");
            Console.WriteLine("Loss: ‖(student − teacher)·x‖² / ‖ΔW·x‖² on 4096 held-out inputs (1 = learned nothing). 'SVD best' = the best any rank-r matrix can do (Eckart–Young): LoRA's floor.");
            Console.WriteLine();
            Console.WriteLine("| target ΔW | r | LoRA loss | GraLoRA loss (k = AutoK, at least 2) | GraLoRA loss k 4 | SVD best rank r |");
            Console.WriteLine("|---|---|---|---|---|---|");
            var ranks = Ranks(large ? new[] { 16, 32, 64, 128 } : new[] { 4, 8, 16, 32 });   // small scale: the same r/n as 16–128 at n 512
            var targets = new (string Name, Func<Generator, Tensor> Make)[]
            {
                ("dense Gaussian (flat spectrum)", g => randn(new long[] { n, n }, generator: g, device: device).div(Math.Sqrt(n))),
                ("power-law spectrum σ_i ∝ 1/i", g =>
                {
                    var u = linalg.qr(randn(new long[] { n, n }, generator: g, device: device)).Q;
                    var v = linalg.qr(randn(new long[] { n, n }, generator: g, device: device)).Q;
                    var sigma = arange(1, n + 1, dtype: ScalarType.Float32, device: device).reciprocal();
                    return u.mul(sigma).mm(v.t());
                }),
                ($"block-low-rank: every block of a 4×4 grid rank {n / 32} (total rank {n / 2})", g =>
                {
                    var w = zeros(n, n, device: device);
                    int b = n / 4, q = n / 32;
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++)
                            w[TensorIndex.Slice(i * b, (i + 1) * b), TensorIndex.Slice(j * b, (j + 1) * b)] =
                                randn(new long[] { b, q }, generator: g, device: device).mm(randn(new long[] { q, b }, generator: g, device: device)).div(Math.Sqrt(q * n));
                    return w;
                }),
            };
            foreach (var (targetName, make) in targets)
            {
                var loraLoss = new List<double>();
                var graloraLoss = new List<double>();
                var gralora4Loss = new List<double>();
                foreach (int r in ranks)
                {
                    using var scope = NewDisposeScope();
                    var gen = new Generator(7, device);
                    var delta = make(gen);
                    var svd = linalg.svdvals(delta.to(ScalarType.Float64)).pow(2);
                    double total = svd.sum().item<double>();
                    int k = AdapterConfig.AutoK(r);
                    double Best(int rank) => rank >= n ? 0 : svd.narrow(0, rank, n - rank).sum().item<double>() / total;
                    k = Math.Max(k, 2);                      // GraLoRA at k 1 is LoRA; compare with the smallest grid
                    double lora = Fit(n, delta, r, 1, steps, batch, device);
                    double gralora = Fit(n, delta, r, k, steps, batch, device);
                    double gralora4 = Fit(n, delta, r, 4, steps, batch, device);
                    loraLoss.Add(lora);
                    graloraLoss.Add(gralora);
                    gralora4Loss.Add(gralora4);
                    Console.WriteLine(string.Format(Inv, "| {0} | {1} | {2:0.0000} | {3:0.0000} (k {4}) | {5:0.0000} | {6:0.0000} |", targetName, r, lora, gralora, k, gralora4, Best(r)));
                }
                var xs = ranks.Select(r => (double)r).ToArray();
                string file = "expressiveness-" + new string(targetName.TakeWhile(char.IsLetter).ToArray()) + ".png";
                DiagnosticCharts.SaveLines(Path.Combine(output, file), $"Teacher fit, {targetName}: final loss vs r", "r", "relative loss",
                    new List<(string, double[], double[])> { ("LoRA", xs, loraLoss.ToArray()), ("GraLoRA (k = AutoK, ≥ 2)", xs, graloraLoss.ToArray()), ("GraLoRA k 4", xs, gralora4Loss.ToArray()) });
            }
        }

        // (d) Expressiveness for a whole model: the teacher is the base decoder with a dense (full-rank) ΔW added to every
        // linear layer of every block; the student is the same base plus adapters on those layers, distilled on the teacher's
        // logits. Unlike (c), errors compound through attention, MLPs and norms, as they would in fine-tuning.
        static void Teacher(string output, Device device, bool large)
        {
            var options = large
                ? new TinyModelOptions { HiddenSize = 1024, IntermediateSize = 2816, Layers = 8, Heads = 8, KeyValueHeads = 4, VocabSize = 2048, Seed = 1 }
                : new TinyModelOptions { HiddenSize = 128, IntermediateSize = 256, Layers = 2, Heads = 4, KeyValueHeads = 2, VocabSize = 256, Seed = 1 };
            int steps = Steps(large ? 600 : 300), batch = 8, seq = large ? 128 : 64;
            var ranks = Ranks(large ? new[] { 16, 32, 64, 128 } : new[] { 4, 8, 16, 32 });
            const double relativeUpdate = 0.5;    // ‖ΔW‖ = 0.5·‖W‖ per layer: a large, dense change the adapter must approximate
            const double lr = 2e-3;
            Console.WriteLine();
            Console.WriteLine($"## (d) Distilling a teacher decoder = base + dense ΔW in every linear layer (hidden {options.HiddenSize}, intermediate {options.IntermediateSize}, {options.Layers} layers, vocab {options.VocabSize}, random weights)");
            Console.WriteLine($"ΔW Gaussian, ‖ΔW‖ = {relativeUpdate}·‖W‖ in each q/k/v/o/gate/up/down projection. Student: the base + LoRA or GraLoRA (equal parameters) on all those layers, B = 0 at start; "
                + $"{steps} Adam steps, lr {lr}, batch {batch} × {seq} random tokens, loss = mean squared logit difference. Loss column: ‖student − teacher‖² / ‖base − teacher‖² on 16 held-out sequences (1 = learned nothing).");
            Console.WriteLine();
            Console.WriteLine("| r | adapter parameters | LoRA loss | GraLoRA loss | GraLoRA k | seconds L/G |");
            Console.WriteLine("|---|---|---|---|---|---|");
            using var outer = NewDisposeScope();
            using var teacher = TinyModelFactory.Create(options);
            teacher.to(device);
            teacher.eval();
            var generator = new Generator(5, device);
            using (no_grad())
                foreach (var (name, module) in teacher.named_modules())
                    if (module is Linear linear && name != DecoderForCausalLM.OutputHeadName)
                    {
                        var w = linear.weight!;
                        var delta = randn(w.shape, generator: generator, device: device);
                        w.add_(delta.mul(relativeUpdate * w.norm().item<float>() / delta.norm().item<float>()));
                    }
            var heldOut = randint(0, options.VocabSize, new long[] { 16, seq }, generator: new Generator(99, device), device: device);
            Tensor teacherHeldOut, baseGap;
            using (no_grad())
            {
                teacherHeldOut = teacher.Forward(heldOut).Logits.detach();
                using var baseModel = TinyModelFactory.Create(options);
                baseModel.to(device);
                baseModel.eval();
                baseGap = baseModel.Forward(heldOut).Logits.sub(teacherHeldOut).pow(2).sum();
            }
            var lora = new List<double>();
            var gralora = new List<double>();
            foreach (int r in ranks)
            {
                int k = Math.Max(2, AdapterConfig.AutoK(r));
                var loraFit = Distil(options, teacher, teacherHeldOut, baseGap, heldOut, AdapterMethod.LoRA, r, 1, steps, batch, seq, lr, device);
                var graloraFit = Distil(options, teacher, teacherHeldOut, baseGap, heldOut, AdapterMethod.GraLoRA, r, k, steps, batch, seq, lr, device);
                lora.Add(loraFit.Loss);
                gralora.Add(graloraFit.Loss);
                string parameters = loraFit.Parameters == graloraFit.Parameters ? loraFit.Parameters.ToString("N0", Inv) : $"{loraFit.Parameters:N0} / {graloraFit.Parameters:N0}";
                Console.WriteLine(string.Format(Inv, "| {0} | {1} | {2:0.0000} | {3:0.0000} | {4} | {5:0} / {6:0} |", r, parameters, loraFit.Loss, graloraFit.Loss, k, loraFit.Seconds, graloraFit.Seconds));
            }
            var xs = ranks.Select(r => (double)r).ToArray();
            DiagnosticCharts.SaveLines(Path.Combine(output, "teacher-model.png"), $"Distilling a teacher decoder (hidden {options.HiddenSize}, {options.Layers} layers): held-out loss vs r", "r", "relative loss",
                new List<(string, double[], double[])> { ("LoRA", xs, lora.ToArray()), ("GraLoRA (k = AutoK, ≥ 2)", xs, gralora.ToArray()) });
        }

        static (double Loss, long Parameters, double Seconds) Distil(TinyModelOptions options, DecoderForCausalLM teacher, Tensor teacherHeldOut, Tensor baseGap, Tensor heldOut,
            AdapterMethod method, int rank, int k, int steps, int batch, int seq, double lr, Device device)
        {
            var watch = Stopwatch.StartNew();
            using var scope = NewDisposeScope();
            manual_seed(3);
            using var student = TinyModelFactory.Create(options);
            student.to(device);
            new AdapterHost(student, DecoderForCausalLM.OutputHeadName).Add("lab", new AdapterConfig
            {
                Method = method, Rank = rank, K = method == AdapterMethod.LoRA ? null : k, Alpha = 2 * rank, TargetModules = new[] { AdapterConfig.AllLinear },
            });
            var trainable = student.parameters().Where(p => p.requires_grad).ToList();
            long parameters = trainable.Sum(p => p.numel());
            using var optimizer = optim.Adam(trainable, lr);
            var generator = new Generator(11, device);
            student.train();
            for (int step = 0; step < steps; step++)
            {
                using var stepScope = NewDisposeScope();
                var ids = randint(0, options.VocabSize, new long[] { batch, seq }, generator: generator, device: device);
                Tensor target;
                using (no_grad()) target = teacher.Forward(ids).Logits;
                var loss = student.Forward(ids).Logits.sub(target).pow(2).mean();
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
            }
            student.eval();
            using var _ = no_grad();
            double gap = student.Forward(heldOut).Logits.sub(teacherHeldOut).pow(2).sum().item<float>();
            return (gap / baseGap.item<float>(), parameters, watch.Elapsed.TotalSeconds);
        }

        // Trains an adapter on a frozen zero base so the student's update must equal ΔW; returns the held-out relative loss.
        static double Fit(int n, Tensor delta, int rank, int k, int steps, int batch, Device device)
        {
            using var scope = NewDisposeScope();
            manual_seed(3);
            var linear = nn.Linear(n, n, hasBias: false, device: device);
            using (no_grad()) linear.weight!.zero_();
            linear.weight!.requires_grad = false;
            AdapterLayerBase layer = k == 1
                ? new LoraLinear(linear, "a", new LoraOptions { Rank = rank, Alpha = 2 * rank })
                : new GraloraLinear(linear, "a", new GraloraOptions { Rank = rank, K = k, Alpha = 2 * rank });
            var parameters = layer.AdapterParameters("a").ToList();
            using var optimizer = optim.Adam(parameters, 5e-3);
            var gen = new Generator(11, device);
            for (int step = 0; step < steps; step++)
            {
                using var stepScope = NewDisposeScope();
                var x = randn(new long[] { batch, n }, generator: gen, device: device);
                var loss = layer.forward(x).sub(x.mm(delta.t())).pow(2).mean();
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
            }
            using var _ = no_grad();
            var test = randn(new long[] { 4096, n }, generator: new Generator(99, device), device: device);
            var target = test.mm(delta.t());
            return layer.forward(test).sub(target).pow(2).sum().item<float>() / target.pow(2).sum().item<float>();
        }
    }
}
