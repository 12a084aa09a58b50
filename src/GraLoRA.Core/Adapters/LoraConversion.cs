using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>How ConvertTo-LoRAAdapter truncates: exact (neither set), a fixed rank, or an energy share.</summary>
    public sealed record LoraConversionOptions
    {
        /// <summary>Keep this many singular directions in every layer (at most the layer's exact rank).</summary>
        public int? Rank { get; init; }
        /// <summary>Keep, per layer, the fewest directions whose squared singular values reach this share of the total, in (0, 1].</summary>
        public double? Energy { get; init; }
        /// <summary>Seed of the random test matrix the range finder multiplies ΔW with.</summary>
        public long Seed { get; init; }

        /// <summary>Refuses contradictory or out-of-range settings, naming the value.</summary>
        public void Validate()
        {
            if (Rank is not null && Energy is not null)
                throw Bad("ConflictingTruncation", $"Give either Rank ({Rank}) or Energy ({Energy}), not both.", Rank);
            if (Rank is < 1)
                throw Bad("InvalidRank", $"Rank {Rank} must be a positive whole number (or leave it out for the exact conversion).", Rank);
            if (Energy is { } e && !(e > 0 && e <= 1))
                throw Bad("InvalidEnergy", $"Energy {e} must be in (0, 1]: the share of ΔW's squared singular values to keep, e.g. 0.99.", e);
        }

        static GraloraException Bad(string id, string message, object? value) => new(id, GraloraErrorKind.InvalidArgument, message, value);
    }

    /// <summary>What happened to one layer: the exact rank bound of its ΔW, the rank kept, and ‖ΔW − B·A‖_F / ‖ΔW‖_F.</summary>
    public sealed record LoraLayerConversion(string Module, int ExactRank, int Rank, double RelativeError);

    /// <summary>A written conversion: where (folder or .gguf file), in which format, the common rank and each layer's row.</summary>
    public sealed record LoraConversionResult(string Path, string Format, string Adapter, int Rank, double MaxRelativeError, IReadOnlyList<LoraLayerConversion> Layers);

    /// <summary>
    /// A GraLoRA adapter rewritten as plain LoRA factors, layer by layer: ΔW (scaling included, from the layer's own
    /// <see cref="AdapterLayerBase.GetDeltaWeight"/>) has rank at most k·r + hybrid_r, so a randomized range finder with
    /// that many columns (plus a few) captures it exactly; an SVD of the small projected matrix gives ΔW = U·S·Vᵀ, and
    /// B = U√S, A = √S·Vᵀ at LoRA scaling 1 (alpha = rank). Only one layer's ΔW exists at a time.
    /// </summary>
    public sealed class LoraConversion : IDisposable
    {
        const int Oversampling = 8;
        readonly Dictionary<string, (Tensor A, Tensor B)> _factors;

        LoraConversion(string adapter, AdapterConfig source, IReadOnlyList<LoraLayerConversion> layers, Dictionary<string, (Tensor, Tensor)> factors)
        {
            AdapterName = adapter;
            Source = source;
            Layers = layers;
            _factors = factors;
        }

        /// <summary>The converted adapter's name.</summary>
        public string AdapterName { get; }
        /// <summary>The GraLoRA adapter's config.</summary>
        public AdapterConfig Source { get; }
        /// <summary>One row per adapted module.</summary>
        public IReadOnlyList<LoraLayerConversion> Layers { get; }
        /// <summary>The largest per-layer relative error.</summary>
        public double MaxRelativeError => Layers.Max(l => l.RelativeError);
        /// <summary>The LoRA rank most layers have (ties: the larger); the others go to rank_pattern.</summary>
        public int DefaultRank => Layers.GroupBy(l => l.Rank).OrderByDescending(g => g.Count()).ThenByDescending(g => g.Key).First().Key;

        /// <summary>LoRA A [r, in] and B [out, r] of <paramref name="module"/>, with ΔW = B·A (scaling 1).</summary>
        public (Tensor A, Tensor B) Factors(string module) => _factors.TryGetValue(module, out var f) ? f
            : throw new GraloraException("ModuleNotConverted", GraloraErrorKind.NotFound, $"Module '{module}' is not part of the converted adapter.", module);

        /// <summary>
        /// Converts adapter <paramref name="name"/> of <paramref name="host"/>. Exact unless <paramref name="options"/>
        /// truncate; a Rank above some layer's exact rank is refused (it would only add zeros).
        /// </summary>
        public static LoraConversion FromAdapter(AdapterHost host, string name, LoraConversionOptions options)
        {
            options.Validate();
            var config = host.Config(name);
            if (config.Method != AdapterMethod.GraLoRA)
                throw new GraloraException("NotGraLoRA", GraloraErrorKind.InvalidArgument,
                    $"Adapter '{name}' is already a LoRA adapter: save it as it is (Save-GraLoRAAdapter).", name);
            var layers = host.Layers().Where(l => l.Layer.AdapterNames.Contains(name)).ToList();
            foreach (var (module, layer) in layers)
                if (options.Rank is { } r && r > ExactRank(layer, name))
                    throw new GraloraException("RankAboveExact", GraloraErrorKind.InvalidArgument,
                        $"Rank {r} is larger than the exact rank {ExactRank(layer, name)} of module '{module}' (k·r + hybrid_r, or its size): the exact conversion already reproduces ΔW; leave -Rank out or choose at most {layers.Min(l => ExactRank(l.Layer, name))}.", r);
            var generator = new Generator((ulong)options.Seed);
            var rows = new List<LoraLayerConversion>();
            var factors = new Dictionary<string, (Tensor, Tensor)>(StringComparer.Ordinal);
            try
            {
                foreach (var (module, layer) in layers)
                {
                    var (a, b, row) = ConvertLayer(module, layer, name, options, generator);
                    factors[module] = (a, b);
                    rows.Add(row);
                }
            }
            catch
            {
                foreach (var (a, b) in factors.Values) { a.Dispose(); b.Dispose(); }
                throw;
            }
            return new LoraConversion(name, config, rows, factors);
        }

        /// <summary>The rank bound of a GraLoRA layer's ΔW: k·r + hybrid_r, capped by the layer's size.</summary>
        public static int ExactRank(AdapterLayerBase layer, string name)
        {
            var o = (GraloraOptions)layer.GetOptions(name);
            return (int)Math.Min(o.K * o.Rank + o.HybridRank, Math.Min(layer.InFeatures, layer.OutFeatures));
        }

        static (Tensor A, Tensor B, LoraLayerConversion Row) ConvertLayer(string module, AdapterLayerBase layer, string name, LoraConversionOptions options, Generator generator)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            int exact = ExactRank(layer, name);
            var delta = layer.GetDeltaWeight(name);                                          // [out, in], scaling included
            var storage = delta.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
            var device = delta.device;
            var w = delta.to(ScalarType.Float64, CPU);
            if (!ReferenceEquals(w, delta)) delta.Dispose();                                  // one [out, in] copy at a time
            long width = Math.Min(exact + Oversampling, Math.Min(w.shape[0], w.shape[1]));
            var probe = randn(new[] { w.shape[1], width }, dtype: ScalarType.Float64, generator: generator);   // [in, p]
            var (q, _) = linalg.qr(w.mm(probe));                                              // [out, p]: spans ΔW's columns
            var (u, s, vh) = linalg.svd(q.t().mm(w), fullMatrices: false);                    // [p, p], [p], [p, in]
            double total = s.square().sum().item<double>();
            int keep = options.Rank ?? (options.Energy is { } e ? EnergyRank(s, e, exact) : exact);
            keep = Math.Max(1, Math.Min(keep, (int)s.shape[0]));
            var root = s.narrow(0, 0, keep).sqrt();
            var b = q.mm(u.narrow(1, 0, keep)).mul(root.unsqueeze(0));                       // [out, r] = U√S
            var a = vh.narrow(0, 0, keep).mul(root.unsqueeze(1));                             // [r, in] = √S·Vᵀ
            var bStored = b.to(storage).to(device);
            var aStored = a.to(storage).to(device);
            // The error of what is stored, measured rather than read off the dropped singular values, without a second
            // [out, in] matrix: ‖W − BA‖² = ‖W‖² − 2⟨BᵀW, A⟩ + ⟨BᵀB, AAᵀ⟩, every product r wide.
            var b64 = bStored.to(ScalarType.Float64, CPU);
            var a64 = aStored.to(ScalarType.Float64, CPU);
            double residual = w.square().sum().item<double>() - 2 * b64.t().mm(w).mul(a64).sum().item<double>()
                              + b64.t().mm(b64).mul(a64.mm(a64.t())).sum().item<double>();
            double error = total > 0 ? Math.Sqrt(Math.Max(residual, 0) / total) : 0;
            return (aStored.DetachFromDisposeScope(), bStored.DetachFromDisposeScope(),
                new LoraLayerConversion(module, exact, keep, error));
        }

        /// <summary>The fewest leading singular values whose squares reach <paramref name="energy"/> of the total (at most <paramref name="cap"/>).</summary>
        static int EnergyRank(Tensor singular, double energy, int cap)
        {
            var squares = singular.square().data<double>().ToArray();
            double total = squares.Sum(), running = 0;
            if (total <= 0) return 1;
            for (int i = 0; i < Math.Min(cap, squares.Length); i++)
            {
                running += squares[i];
                if (running >= energy * total * (1 - 1e-12)) return i + 1;
            }
            return cap;
        }

        /// <summary>
        /// The converted adapter's PEFT LoRA config: the GraLoRA adapter's targets, dropout and modules to save, rank = the
        /// common rank with rank_pattern for layers that differ, and alpha = rank everywhere (lora_alpha and alpha_pattern),
        /// so PEFT's scaling alpha/r is 1 for every layer, and so is vLLM's and TGI's global lora_alpha/r.
        /// </summary>
        public AdapterConfig LoraConfig()
        {
            int rank = DefaultRank;
            var odd = Layers.Where(l => l.Rank != rank).ToList();
            return Source with
            {
                Method = AdapterMethod.LoRA,
                Rank = rank,
                Alpha = rank,
                K = null,
                KPattern = null,
                HybridRank = 0,
                RankPattern = odd.Count == 0 ? null : odd.ToDictionary(l => l.Module, l => l.Rank),
                AlphaPattern = odd.Count == 0 ? null : odd.ToDictionary(l => l.Module, l => (double)l.Rank),
                Bias = Source.Bias == Source.OnlyBias ? "lora_only" : Source.Bias,
                UseRsLora = false,
                InitWeights = true,
            };
        }

        /// <summary>
        /// Writes the converted adapter in PEFT's LoRA format (adapter_config.json + adapter_model.safetensors) into
        /// <paramref name="folder"/>; modules to save and trained biases of the GraLoRA adapter travel unchanged.
        /// </summary>
        public string SavePeft(AdapterHost host, string folder, bool overwrite = false)
        {
            var adapterTensors = new HashSet<IntPtr>(host.Layers().Where(l => l.Layer.AdapterNames.Contains(AdapterName))
                .SelectMany(l => l.Layer.AdapterParameters(AdapterName)).Select(p => p.Handle));
            var tensors = host.StateDict(AdapterName).Where(kv => !adapterTensors.Contains(kv.Value.Handle))
                .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            foreach (var (module, (a, b)) in _factors)
            {
                tensors[PeftKeys.ModuleKey(module, LoraLinear.FactorKeys.A)] = a;
                tensors[PeftKeys.ModuleKey(module, LoraLinear.FactorKeys.B)] = b;
            }
            var config = LoraConfig();
            return PeftAdapterFormat.Save(tensors, PeftAdapterFormat.ConfigJson(config, Layers.Select(l => l.Module).ToList()), AdapterName, folder, overwrite);
        }

        /// <inheritdoc />
        public void Dispose()
        {
            foreach (var (a, b) in _factors.Values) { a.Dispose(); b.Dispose(); }
            _factors.Clear();
        }
    }
}
