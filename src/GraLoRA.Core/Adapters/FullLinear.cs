using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// Full fine-tuning of a linear layer: the adapter is a trainable copy W_c [out, in] of the base weight, used in its
    /// place (output = x·W_cᵀ + bias), so AdamW on W_c is AdamW on the weight itself, weight decay included, while the
    /// base stays as it was for disabling, unmerging and other adapters. ΔW = W_c − W. The bias follows the adapter's
    /// Bias setting, as for the other methods.
    /// </summary>
    public sealed class FullLinear : AdapterLayerBase
    {
        readonly ParameterDict _weight = new();                      // "name.weight" -> [out, in]
        readonly Dictionary<string, Tensor> _weightBeforeMerge = new();   // name -> W [out, in] while merged

        /// <summary>Wraps <paramref name="baseLayer"/> with no adapters yet.</summary>
        public FullLinear(Linear baseLayer) : base(nameof(FullLinear), baseLayer)
            => register_module(ContainerName, _weight);

        /// <summary>Wraps <paramref name="baseLayer"/> and adds one adapter.</summary>
        public FullLinear(Linear baseLayer, string adapterName, FullOptions options, ScalarType? dtype = null) : this(baseLayer)
            => AddAdapter(adapterName, options, dtype);

        /// <inheritdoc />
        public override AdapterMethod Method => AdapterMethod.Full;

        /// <summary>The trained weight W_c of adapter <paramref name="name"/>: [out, in].</summary>
        public Parameter Weight(string name) => _weight.TryGetValue(name + ".weight", out var p) ? p : throw UnknownAdapter(name);

        /// <summary>The trained weight under the module's own key, <c>weight</c> (as PEFT saves a module to save), not <c>full.weight</c>.</summary>
        public override IEnumerable<(string Key, Parameter Tensor)> AdapterStateDict(string adapter) =>
            base.AdapterStateDict(adapter).Select(t => (t.Key[(ContainerName.Length + 1)..], t.Tensor));

        const string ContainerName = "full";

        /// <inheritdoc />
        protected override ScalarType AdapterDType(string name) => Weight(name).dtype;

        /// <inheritdoc />
        protected override void CreateAdapterParameters(string name, IAdapterOptions options, ScalarType dtype, Device device)
        {
            var copy = UnmergedBaseWeight().to(dtype, device, copy: true);                       // [out, in]
            // Tests want a copy that already differs from the base: a small perturbation of every entry.
            if (!options.InitWeights) copy.add_(empty_like(copy).uniform_(-KaimingBound(InFeatures), KaimingBound(InFeatures)));
            _weight.Add(name + ".weight", new Parameter(copy));
        }

        /// <summary>Unbounded: the whole weight trains.</summary>
        protected override long StructuralRank(string name) => long.MaxValue;

        /// <inheritdoc />
        protected override void RemoveAdapterParameters(string name)
        {
            RemoveParameter(_weight, name + ".weight");
            if (_weightBeforeMerge.Remove(name, out var w)) w.Dispose();
        }

        /// <summary>ΔW = W_c − W [out, in], W the unmerged base weight.</summary>
        public override Tensor GetDeltaWeight(string name)
        {
            using var scope = NewDisposeScope();
            var copy = Weight(name);
            var weight = UnmergedBaseWeight();                                                   // [out, in]
            return copy.to(weight.dtype).sub(weight).to(copy.dtype).MoveToOuterDisposeScope();
        }

        /// <inheritdoc />
        protected override Tensor AdapterForward(string name, Tensor x)
        {
            var weight = BaseWeight().to(x.dtype);                                               // [out, in]
            return x.mm(Weight(name).sub(weight).t());                                            // x·(W_c − W)ᵀ [M, out]
        }

        /// <summary>With one active, unmerged adapter the copy replaces the base in one matmul (no second pass for ΔW).</summary>
        public override Tensor forward(Tensor x)
        {
            if (AdaptersDisabled || Merged || ActiveAdapters.Count != 1) return base.forward(x);
            var copy = Weight(ActiveAdapters[0]);                                                  // [out, in]
            var bias = BaseBias;
            using var scope = NewDisposeScope();
            var input = x.to(copy.dtype);
            var output = nn.functional.linear(input, copy, bias?.to(copy.dtype));                  // [..., out]
            return output.to(x.dtype).MoveToOuterDisposeScope();
        }

        /// <summary>
        /// W_c plus whatever earlier merges changed (the weight minus the unmerged base): exactly W_c when merged alone, so
        /// a checkpoint saved from the merged weights resumes exactly.
        /// </summary>
        protected override Tensor MergeWeight(string name, Tensor weight) =>
            Weight(name).to(weight.dtype).add(weight.sub(UnmergedBaseWeight().to(weight.dtype)));

        /// <summary>Keeps the weight it replaced, for the unmerge.</summary>
        protected override void OnMerged(string name, Tensor weightBefore)
        {
            if (_weightBeforeMerge.Remove(name, out var stale)) stale.Dispose();
            _weightBeforeMerge[name] = weightBefore.detach().clone().DetachFromDisposeScope();
        }

        /// <inheritdoc />
        protected override Tensor UnmergeWeight(string name, Tensor weight) => _weightBeforeMerge[name].to(weight.dtype);
    }
}
