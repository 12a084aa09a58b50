using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// A linear layer with DoRA adapters, computing what PEFT's LoRA with <c>use_dora=True</c> computes (tuners/lora:
    /// dora.py, variants.py). On top of LoRA's lora_A [r, in] and lora_B [out, r] it trains lora_magnitude_vector m [out].
    /// With D = scaling·B·A (the direction update) and n = ‖W + D‖ per output row, treated as a constant in backward:
    /// output = (m/n) ⊙ (x·(W + D)ᵀ) + bias, so ΔW = (m/n)·(W + D) − W, which is not low rank. m starts at n, so a fresh
    /// adapter behaves as LoRA does.
    /// </summary>
    public sealed class DoraLinear : LoraLinear
    {
        readonly ParameterDict _magnitude = new();                           // "name.weight" -> [out]
        readonly Dictionary<string, Tensor> _normAtMerge = new();            // name -> n [out] when it was merged

        /// <summary>Wraps <paramref name="baseLayer"/> (a Linear or a quantised layer) with no adapters yet.</summary>
        public DoraLinear(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(DoraLinear), baseLayer)
            => register_module(MagnitudeName, _magnitude);

        /// <summary>Wraps <paramref name="baseLayer"/> and adds one adapter (<paramref name="options"/> with UseDora).</summary>
        public DoraLinear(Linear baseLayer, string adapterName, LoraOptions options, ScalarType? dtype = null) : this(baseLayer)
            => AddAdapter(adapterName, options, dtype);

        /// <inheritdoc />
        public override AdapterMethod Method => AdapterMethod.DoRA;

        /// <summary>lora_magnitude_vector of adapter <paramref name="name"/>: [out].</summary>
        public Parameter Magnitude(string name) => _magnitude.TryGetValue(name + ".weight", out var p) ? p : throw UnknownAdapter(name);

        /// <summary>As LoRA's, with PEFT's key for the magnitude: <c>lora_magnitude_vector</c>, no ".weight" suffix.</summary>
        public override IEnumerable<(string Key, Parameter Tensor)> AdapterStateDict(string adapter) =>
            base.AdapterStateDict(adapter).Select(t => t.Key == MagnitudeName + ".weight" ? (MagnitudeName, t.Tensor) : t);

        const string MagnitudeName = "lora_magnitude_vector";

        /// <inheritdoc />
        protected override void CreateAdapterParameters(string name, IAdapterOptions options, ScalarType dtype, Device device)
        {
            base.CreateAdapterParameters(name, options, dtype, device);
            using var scope = NewDisposeScope();
            var weight = UnmergedBaseWeight();                                              // [out, in]
            var norm = RowNorm(weight.add(DirectionUpdate(name).to(weight.dtype)));         // ‖W + D‖ [out]
            _magnitude.Add(name + ".weight", new Parameter(norm.to(dtype).MoveToOuterDisposeScope()));
        }

        /// <inheritdoc />
        protected override ScalarType AdapterDType(string name) => Magnitude(name).dtype;

        /// <summary>Unbounded: rescaling the rows of W + D changes W itself, so ΔW can have full rank.</summary>
        protected override long StructuralRank(string name) => long.MaxValue;

        /// <inheritdoc />
        protected override void RemoveAdapterParameters(string name)
        {
            base.RemoveAdapterParameters(name);
            RemoveParameter(_magnitude, name + ".weight");
            if (_normAtMerge.Remove(name, out var norm)) norm.Dispose();
        }

        /// <summary>D = scaling·B·A [out, in]: the direction update, which PEFT's get_delta_weight returns for DoRA.</summary>
        public Tensor DirectionUpdate(string name) => base.GetDeltaWeight(name);

        /// <summary>n = ‖W + D‖ per output row [out] (float32 for half-precision bases), W the unmerged base weight.</summary>
        public Tensor WeightNorm(string name)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var weight = UnmergedBaseWeight();                                              // [out, in]
            return RowNorm(weight.add(DirectionUpdate(name).to(weight.dtype))).MoveToOuterDisposeScope();
        }

        /// <summary>ΔW = (m/n)·(W + D) − W [out, in], W the unmerged base weight: what the forward adds.</summary>
        public override Tensor GetDeltaWeight(string name)
        {
            using var scope = NewDisposeScope();
            var dtype = Magnitude(name).dtype;
            var weight = UnmergedBaseWeight();                                              // [out, in]
            var work = weight.dtype;
            var direction = weight.add(DirectionUpdate(name).to(work));                    // W + D [out, in]
            var factor = Magnitude(name).to(work).div(RowNorm(direction).detach());        // m/n [out]
            return direction.mul(factor.unsqueeze(1)).sub(weight).to(dtype).MoveToOuterDisposeScope();
        }

        /// <inheritdoc />
        protected override Tensor AdapterForward(string name, Tensor x)
        {
            var lora = base.AdapterForward(name, x);                                        // scaling·x·Aᵀ·Bᵀ [M, out]
            var weight = BaseWeight().to(x.dtype);                                          // [out, in]
            Tensor norm;
            using (no_grad()) norm = RowNorm(weight.add(DirectionUpdate(name).to(x.dtype))); // n [out], a constant
            var factor = Magnitude(name).div(norm);                                         // m/n [out]
            var baseOutput = x.mm(weight.t());                                              // x·Wᵀ [M, out], no bias
            return baseOutput.mul(factor.sub(1)).add(lora.mul(factor));                     // [M, out]
        }

        /// <summary>As PEFT: W' = (m/n)·(W + D) with n from the weight being merged into.</summary>
        protected override Tensor MergeWeight(string name, Tensor weight)
        {
            var direction = weight.add(DirectionUpdate(name).to(weight.dtype));            // W + D [out, in]
            var factor = Magnitude(name).to(weight.dtype).div(RowNorm(direction));         // m/n [out]
            return direction.mul(factor.unsqueeze(1));                                      // [out, in]
        }

        /// <summary>Keeps n of the merge, as PEFT caches weight_norm: the unmerge cannot recompute it from W'.</summary>
        protected override void OnMerged(string name, Tensor weightBefore)
        {
            var norm = RowNorm(weightBefore.add(DirectionUpdate(name).to(weightBefore.dtype)));   // [out]
            if (_normAtMerge.Remove(name, out var stale)) stale.Dispose();
            _normAtMerge[name] = norm.detach().clone().DetachFromDisposeScope();
        }

        /// <summary>As PEFT: W = W'/(m/n) − D, with the n kept at merge time.</summary>
        protected override Tensor UnmergeWeight(string name, Tensor weight)
        {
            var factor = Magnitude(name).to(weight.dtype).div(_normAtMerge[name].to(weight.dtype)); // m/n [out]
            return weight.div(factor.unsqueeze(1)).sub(DirectionUpdate(name).to(weight.dtype));    // [out, in]
        }

        // ‖row‖₂ of a matrix [out, in] → [out] (PEFT's torch.linalg.norm(weight, dim=1)).
        static Tensor RowNorm(Tensor matrix) => linalg.vector_norm(matrix, 2, new long[] { 1 });
    }
}
