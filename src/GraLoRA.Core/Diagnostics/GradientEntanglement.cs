using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Diagnostics
{
    /// <summary>What <see cref="GradientEntanglement.Measure"/> looks at and which adapter factors it analyses.</summary>
    public sealed record EntanglementOptions
    {
        /// <summary>Linear layers to measure: full module names or name suffixes at a dot boundary ("down_proj", "layers.1.mlp.down_proj"). Default: every down_proj.</summary>
        public IReadOnlyList<string>? Layers { get; init; }
        /// <summary>Batches of the data to run (default 4); G and the statistics sum over them.</summary>
        public int Batches { get; init; } = 4;
        /// <summary>Rank of the fresh adapters analysed when <see cref="Adapter"/> is null (default 32). LoRA gets Rank + HybridRank, so both have the same parameter count.</summary>
        public int Rank { get; init; } = AdapterDefaults.GraloraRank;
        /// <summary>GraLoRA k of the fresh adapter, and the grid a LoRA update is measured on (default Auto: <see cref="AdapterConfig.AutoK"/> of the rank).</summary>
        public KChoice K { get; init; } = KChoice.Auto;
        /// <summary>Hybrid rank of the fresh GraLoRA adapter (default 0).</summary>
        public int HybridRank { get; init; }
        /// <summary>Analyse this adapter of the model (its current, possibly trained, factors) instead of fresh ones.</summary>
        public string? Adapter { get; init; }
        /// <summary>Seed of the fresh factors and of substituted B factors (a private generator; the global RNG is untouched).</summary>
        public long Seed { get; init; }
        /// <summary>Outlier rule factor (see <see cref="ChannelStatistics.FlagOutliers"/>).</summary>
        public double OutlierThreshold { get; init; } = ChannelStatistics.DefaultOutlierThreshold;
        /// <summary>
        /// Analyse B = 0 exactly as PEFT initialises it (then U = G·AᵀA: the update B's first gradient step makes) instead of
        /// drawing B for fresh factors / replacing an all-zero B. Trained (non-zero) B factors are used as they are either way.
        /// </summary>
        public bool ZeroB { get; init; }
        /// <summary>Synthetic outliers: input channel → factor its activations are multiplied by before each measured layer (the model's output changes accordingly).</summary>
        public IReadOnlyDictionary<int, double>? InjectOutliers { get; init; }
    }

    /// <summary>One measured layer: its activation statistics, the full-fine-tuning gradient's channel profile, and the adapters' deviation from it.</summary>
    public sealed record LayerEntanglement(
        string Layer, long InFeatures, long OutFeatures, ChannelStats Activations, int[] OutlierChannels,
        double[] GradientChannelNorms, double GradientOutlierShare, UpdateDeviation? Lora, UpdateDeviation? Gralora)
    {
        /// <summary>PNG files written for this layer (set by <see cref="DiagnosticCharts.SaveEntanglement(LayerEntanglement, string)"/>).</summary>
        public IReadOnlyList<string> Charts { get; init; } = Array.Empty<string>();
    }

    /// <summary>
    /// Measures, for chosen linear layers of a model on a few batches, the per-input-channel activation statistics and
    /// how far LoRA's and GraLoRA's implied one-step updates depart from the full-fine-tuning gradient G = ∂L/∂W
    /// (the paper's gradient entanglement, Section 3).
    /// <para>Factors. By default fresh factors are drawn for both methods at the same parameter count: A as PEFT's
    /// Kaiming-uniform init (±1/√fan_in, fan_in = in for LoRA, in/k for a GraLoRA block), and B — which PEFT starts at
    /// zero, making the B·Bᵀ·G term vanish — drawn uniform with the same bound as A, so E[B·Bᵀ] = E[Aᵀ·A] = r/(3·in)·I
    /// for both methods and neither term dominates by construction (PEFT's init_weights=False bound ±1/√r would make the
    /// B term in/r times larger and hide the A term's mixing of input channels). <see cref="EntanglementOptions.ZeroB"/>
    /// keeps B = 0 instead. With <see cref="EntanglementOptions.Adapter"/> the adapter's own factors are used (trained
    /// ones as they are); a B that is still all zero is replaced the same way and the result says so
    /// (<see cref="UpdateDeviation.BSubstituted"/>).</para>
    /// <para>G is the gradient of the summed next-token loss over all predicted tokens of the batches (divided by
    /// their number), at the model as it is (active adapters included); the model runs in eval mode (no dropout).</para>
    /// </summary>
    public static class GradientEntanglement
    {
        /// <summary>Default layers: every down_proj (the paper's example is LLaMA3.1-8B layer 1 down_proj).</summary>
        public static readonly IReadOnlyList<string> DefaultLayers = new[] { "down_proj" };

        /// <summary>Runs the measurement on the first <see cref="EntanglementOptions.Batches"/> batches of <paramref name="data"/> (epoch 0 order).</summary>
        public static IReadOnlyList<LayerEntanglement> Measure(BaseModel model, IBatchSource data, EntanglementOptions? options = null)
        {
            options ??= new EntanglementOptions();
            if (options.Batches <= 0)
                throw new GraloraException("InvalidBatches", GraloraErrorKind.InvalidArgument, $"Batches must be at least 1, but it is {options.Batches}.", options.Batches);
            if (options.Adapter is { } adapterName) model.Adapters.Config(adapterName);   // AdapterNotFound, naming those there are
            var module = model.Module;
            var host = model.Adapters;
            var patterns = options.Layers is { Count: > 0 } l ? l : DefaultLayers;
            var slots = host.SlotsOf().Where(s => s.Name != DecoderForCausalLM.OutputHeadName && patterns.Any(p => Matches(s.Name, p))).ToList();
            foreach (var (name, owner, slot) in slots)
                if (owner.GetSlot(slot) is Quantization.QuantizedLinear or AdapterLayerBase { BaseQuantized: true })
                    throw new GraloraException("QuantizedLayer", GraloraErrorKind.InvalidOperation,
                        $"Layer '{name}' is quantised: gradient entanglement measures the gradient of the full weight, which a quantised layer does not train or keep. Load the model without -Quantize to measure it.", name);
            if (slots.Count == 0)
                throw new GraloraException("NoMatchingLayer", GraloraErrorKind.InvalidArgument,
                    $"Layers '{string.Join(", ", patterns)}' match no linear layer of this model; its linear layers are named: {string.Join(", ", host.SlotsOf().Select(s => s.Name.Split('.').Last()).Distinct())}.", string.Join(", ", patterns));
            var batches = data.Epoch(0).Take(options.Batches).ToList();
            long tokens = batches.Sum(Trainer.PredictedTokens);
            if (tokens == 0)
                throw new GraloraException("NoTargetTokens", GraloraErrorKind.InvalidData, "The batches have no tokens to predict (every label is -100), so there is no gradient to measure.", null);

            var probes = new List<(string Name, ILinearSlots Owner, string Slot, nn.Module<Tensor, Tensor> Original, ActivationProbe Probe, Tensor Weight)>();
            var requiresGrad = module.parameters().Select(p => (p, p.requires_grad)).ToList();
            bool wasTraining = module.training;
            var device = module.Device;
            try
            {
                foreach (var (p, _) in requiresGrad) p.requires_grad = false;
                foreach (var (name, owner, slot) in slots)
                {
                    var original = owner.GetSlot(slot);
                    var weight = Slots.BaseWeight(original);
                    weight.requires_grad = true;
                    var probe = new ActivationProbe(original, weight.shape[1], options.InjectOutliers);
                    owner.SetSlot(slot, probe);
                    probes.Add((name, owner, slot, original, probe, weight));
                }
                module.eval();
                foreach (var batch in batches)
                {
                    using var scope = NewDisposeScope();
                    var keep = tensor(batch.AttentionMask, batch.Shape, device: device).ne(0);
                    foreach (var p in probes) p.Probe.Keep = keep;
                    Trainer.LossSum(module, batch, device).div(tokens).backward();
                    foreach (var p in probes) p.Probe.Keep = null;
                }
            }
            finally
            {
                foreach (var p in probes)
                {
                    p.Owner.SetSlot(p.Slot, p.Original);
                    p.Probe.Release();
                }
                if (wasTraining) module.train();
            }

            try
            {
                var generator = new Generator((ulong)options.Seed, device);
                var results = new List<LayerEntanglement>();
                foreach (var p in probes)
                {
                    using var scope = NewDisposeScope();
                    var g = p.Weight.grad ?? throw new GraloraException("NoGradient", GraloraErrorKind.InvalidOperation,
                        $"Layer '{p.Name}' received no gradient: the loss does not depend on it.", p.Name);
                    results.Add(Analyse(p.Name, g.detach().to(ScalarType.Float64), p.Probe.Statistics.Result(options.OutlierThreshold), p.Original, options, generator));
                }
                return results;
            }
            finally
            {
                foreach (var p in probes) p.Weight.grad?.Dispose();
                foreach (var p in probes) p.Weight.grad = null;
                foreach (var (p, flag) in requiresGrad) p.requires_grad = flag;
            }
        }

        /// <summary>
        /// The analysis of one layer given its gradient G [out, in] and activation statistics: G's channel profile and,
        /// per method, the implied update's deviation (factors as described on <see cref="GradientEntanglement"/>).
        /// </summary>
        public static LayerEntanglement Analyse(string layer, Tensor g, ChannelStats activations, nn.Module<Tensor, Tensor> slotModule,
                                                EntanglementOptions options, Generator generator)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            long outFeatures = g.shape[0], inFeatures = g.shape[1];
            var outliers = activations.Outliers;
            var columns = g.mul(g).sum(0, false);
            var gradientNorms = columns.sqrt().cpu().data<double>().ToArray();
            double total = columns.sum().item<double>();
            double gradientShare = total > 0 ? outliers.Sum(i => columns[i].item<double>()) / total : 0;

            UpdateDeviation? lora = null, gralora = null;
            if (options.Adapter is { } name)
            {
                if (slotModule is not AdapterLayerBase layerBase || !layerBase.AdapterNames.Contains(name))
                    throw new GraloraException("AdapterNotOnLayer", GraloraErrorKind.InvalidArgument,
                        $"Adapter '{name}' does not adapt layer '{layer}': measure the layers it targets (Get-GraLoRAAdapter shows them) or leave out the adapter to analyse fresh factors.", layer);
                switch (layerBase)
                {
                    case LoraLinear l when l is not DoraLinear:
                    {
                        var a = l.A(name).detach().to(ScalarType.Float64);
                        var (b, substituted) = NonZeroB(l.B(name).detach().to(ScalarType.Float64), inFeatures, generator, options.ZeroB);
                        var (at, bt) = ImpliedUpdate.Lora(g, a, b);
                        int k = options.K.For(l.Options(name).Rank);
                        lora = UpdateDeviation.Compare(AdapterMethod.LoRA, l.Options(name).Rank, 1, 0, substituted, g, at, bt, GridFor(k, outFeatures, inFeatures), outliers);
                        break;
                    }
                    case GraloraLinear gl:
                    {
                        var o = gl.Options(name);
                        var (b, substituted) = NonZeroB(gl.B(name).detach().to(ScalarType.Float64), inFeatures / o.K, generator, options.ZeroB);
                        var (aBlocks, bBlocks) = GraloraLinear.BlockFactors(gl.A(name).detach().to(ScalarType.Float64), b, o.K);
                        Tensor? ag = gl.AGeneral(name)?.detach().to(ScalarType.Float64), bg = null;
                        if (gl.BGeneral(name) is { } bGeneral)
                        {
                            var (nb, s2) = NonZeroB(bGeneral.detach().to(ScalarType.Float64), inFeatures, generator, options.ZeroB);
                            bg = nb;
                            substituted |= s2;
                        }
                        var (at, bt) = ImpliedUpdate.Gralora(g, aBlocks, bBlocks, ag, bg);
                        gralora = UpdateDeviation.Compare(AdapterMethod.GraLoRA, o.Rank, o.K, o.HybridRank, substituted, g, at, bt, o.K, outliers);
                        break;
                    }
                    default:
                        throw new GraloraException("MethodNotAnalysed", GraloraErrorKind.InvalidArgument,
                            $"Adapter '{name}' is a {layerBase.Method} adapter; the implied-update analysis covers LoRA and GraLoRA factors only. Leave out the adapter to analyse fresh LoRA and GraLoRA factors, or use the ΔW spectrum (Get-GraLoRAAdapter -Detailed) for {layerBase.Method}.", name);
                }
            }
            else
            {
                int k = options.K.For(options.Rank);
                var go = new GraloraOptions { Rank = options.Rank, K = k, HybridRank = options.HybridRank };
                go.Validate(inFeatures, outFeatures, layer);
                int loraRank = options.Rank + options.HybridRank;
                var la = Uniform(generator, new[] { (long)loraRank, inFeatures }, inFeatures);
                var lb = FreshB(generator, new[] { outFeatures, (long)loraRank }, inFeatures, options.ZeroB);
                var (lat, lbt) = ImpliedUpdate.Lora(g, la, lb);
                lora = UpdateDeviation.Compare(AdapterMethod.LoRA, loraRank, 1, 0, !options.ZeroB, g, lat, lbt, k, outliers);

                var a = Uniform(generator, new[] { k, inFeatures / k, options.Rank }, inFeatures / k);
                var b = FreshB(generator, new[] { k, options.Rank, outFeatures / k }, inFeatures / k, options.ZeroB);
                var (aBlocks, bBlocks) = GraloraLinear.BlockFactors(a, b, k);
                Tensor? ag = null, bg = null;
                if (options.HybridRank > 0)
                {
                    ag = Uniform(generator, new[] { (long)options.HybridRank, inFeatures }, inFeatures);
                    bg = FreshB(generator, new[] { outFeatures, (long)options.HybridRank }, inFeatures, options.ZeroB);
                }
                var (gat, gbt) = ImpliedUpdate.Gralora(g, aBlocks, bBlocks, ag, bg);
                gralora = UpdateDeviation.Compare(AdapterMethod.GraLoRA, options.Rank, k, options.HybridRank, !options.ZeroB, g, gat, gbt, k, outliers);
            }
            return new LayerEntanglement(layer, inFeatures, outFeatures, activations, outliers, gradientNorms, gradientShare, lora, gralora);
        }

        /// <summary>A full module name matches a pattern equal to it or ending it at a dot boundary.</summary>
        public static bool Matches(string name, string pattern) =>
            name == pattern || name.EndsWith("." + pattern, StringComparison.Ordinal);

        // The grid a LoRA adapter's deviation is reported on: k when it divides the layer, else 1.
        static int GridFor(int k, long outFeatures, long inFeatures) => outFeatures % k == 0 && inFeatures % k == 0 ? k : 1;

        // Uniform ±1/√fanIn in float64 from the private generator (PEFT's Kaiming-uniform bound for A, reused for B).
        static Tensor Uniform(Generator generator, long[] shape, long fanIn)
        {
            double bound = 1.0 / Math.Sqrt(fanIn);
            return rand(shape, ScalarType.Float64, generator.device, generator: generator).mul(2 * bound).sub(bound);
        }

        static Tensor FreshB(Generator generator, long[] shape, long aFanIn, bool zero) =>
            zero ? zeros(shape, ScalarType.Float64, generator.device) : Uniform(generator, shape, aFanIn);

        static (Tensor B, bool Substituted) NonZeroB(Tensor b, long aFanIn, Generator generator, bool keepZero) =>
            keepZero || b.abs().max().item<double>() > 0 ? (b, false) : (Uniform(generator, b.shape, aFanIn), true);

        /// <summary>
        /// Sits in a linear slot during a measurement: records the input's channel statistics (rows where
        /// <see cref="Keep"/> is false — padding — are left out), optionally scales chosen channels, and calls the original module.
        /// Not registered as the original's parent, so it never owns or disposes it.
        /// </summary>
        sealed class ActivationProbe : nn.Module<Tensor, Tensor>
        {
            readonly nn.Module<Tensor, Tensor> _inner;
            readonly Tensor? _multiplier;

            public ActivationProbe(nn.Module<Tensor, Tensor> inner, long channels, IReadOnlyDictionary<int, double>? inject) : base("ActivationProbe")
            {
                _inner = inner;
                Statistics = new ChannelStatistics(channels);
                if (inject is { Count: > 0 })
                {
                    var m = Enumerable.Repeat(1.0f, checked((int)channels)).ToArray();
                    foreach (var (channel, factor) in inject)
                    {
                        if (channel < 0 || channel >= channels)
                            throw new GraloraException("InvalidOutlierChannel", GraloraErrorKind.InvalidArgument,
                                $"Cannot inject an outlier into channel {channel}: the layer has {channels} input channels (0–{channels - 1}).", channel);
                        m[channel] = (float)factor;
                    }
                    _multiplier = tensor(m).DetachFromDisposeScope();
                }
            }

            public ChannelStatistics Statistics { get; }
            public Tensor? Keep { get; set; }

            public override Tensor forward(Tensor x)
            {
                if (_multiplier is not null) x = x.mul(_multiplier.to(x.dtype, x.device));
                var keep = Keep is { } k && k.numel() * Statistics.Channels == x.numel() ? k : null;
                Statistics.Add(x, keep);
                return _inner.forward(x);
            }

            /// <summary>Frees the multiplier; the probe itself is left to the GC so nothing can reach the original module.</summary>
            public void Release() => _multiplier?.Dispose();
        }
    }
}
