using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// Bookkeeping shared by every adapted linear layer (PEFT's BaseTunerLayer): named adapters,
    /// the active set, merged and disabled state, merge/unmerge, and the forward skeleton.
    /// Subclasses add only the math: parameters, <see cref="GetDeltaWeight"/> and <see cref="AdapterForward"/>.
    /// </summary>
    public abstract class AdapterLayerBase : nn.Module<Tensor, Tensor>, IAdapterTensors
    {
        /// <summary>The name the wrapped layer is registered under (PEFT's).</summary>
        public const string BaseLayerName = "base_layer";

        readonly nn.Module<Tensor, Tensor> _base;
        readonly List<string> _adapters = new();
        readonly List<string> _active = new();
        readonly List<string> _merged = new();
        readonly Dictionary<string, IAdapterOptions> _options = new(StringComparer.Ordinal);

        /// <summary>
        /// Wraps <paramref name="baseLayer"/> (a Linear or a <see cref="Quantization.QuantizedLinear"/>), registered as the
        /// child <see cref="BaseLayerName"/>.
        /// </summary>
        protected AdapterLayerBase(string name, nn.Module<Tensor, Tensor> baseLayer) : base(name)
        {
            _base = baseLayer ?? throw new ArgumentNullException(nameof(baseLayer));
            if (!FrozenLinear.Is(baseLayer)) throw new ArgumentException($"adapters wrap linear layers, not a {baseLayer.GetType().Name}", nameof(baseLayer));
            register_module(BaseLayerName, _base);
            OutFeatures = FrozenLinear.OutFeatures(baseLayer);
            InFeatures = FrozenLinear.InFeatures(baseLayer);
        }

        /// <summary>The wrapped layer: a Linear, or a quantised layer.</summary>
        public nn.Module<Tensor, Tensor> BaseLayer => _base;

        /// <summary>
        /// The one accessor of the base weight [out, in], as the forward uses it: a Linear's parameter, or a quantised
        /// layer's weight dequantised to its compute dtype (a new tensor each call). Read it inside a dispose scope and never
        /// dispose it directly. Merges, DoRA's weight norm and exports all go through it.
        /// </summary>
        public Tensor BaseWeight() => FrozenLinear.Weight(_base);
        /// <summary>The base layer's bias, or null.</summary>
        public Parameter? BaseBias => FrozenLinear.Bias(_base);
        /// <summary>True when the base weight is held quantised (merges then re-quantise).</summary>
        public bool BaseQuantized => _base is Quantization.QuantizedLinear;
        /// <summary>The rounding the last merge or unmerge added by re-quantising a quantised base (null for a Linear).</summary>
        public Requantization? LastRequantization { get; private set; }
        /// <summary>Input width of the base layer.</summary>
        public long InFeatures { get; }
        /// <summary>Output width of the base layer.</summary>
        public long OutFeatures { get; }
        /// <summary>The method all adapters of this layer use.</summary>
        public abstract AdapterMethod Method { get; }
        /// <summary>Adapter names, in the order they were added.</summary>
        public IReadOnlyList<string> AdapterNames => _adapters;
        /// <summary>Adapters that take part in forward and merge.</summary>
        public IReadOnlyList<string> ActiveAdapters => _active;
        /// <summary>Adapters currently merged into the base weight, oldest first.</summary>
        public IReadOnlyList<string> MergedAdapters => _merged;
        /// <summary>True while any adapter is merged into the base weight.</summary>
        public bool Merged => _merged.Count > 0;
        /// <summary>True while the layer behaves as its base (adapters kept, not used).</summary>
        public bool AdaptersDisabled { get; private set; }

        /// <summary>The settings adapter <paramref name="name"/> was created with.</summary>
        public IAdapterOptions GetOptions(string name) => _options.TryGetValue(name, out var o) ? o : throw UnknownAdapter(name);

        /// <summary>
        /// Adds adapter <paramref name="name"/> with its parameters on the base layer's device. Adapter
        /// dtype: <paramref name="dtype"/>, else float32 when the base is float16/bfloat16 (as PEFT's
        /// autocast_adapter_dtype), else the base's. The first adapter becomes active.
        /// </summary>
        public void AddAdapter(string name, IAdapterOptions options, ScalarType? dtype = null)
        {
            if (string.IsNullOrWhiteSpace(name) || name.Contains('.'))
                throw new GraloraException("InvalidAdapterName", GraloraErrorKind.InvalidArgument,
                    $"Adapter name '{name}' is not usable: give a non-empty name without dots, such as 'default'.", name);
            if (_options.ContainsKey(name))
                throw new GraloraException("AdapterExists", GraloraErrorKind.InvalidOperation,
                    $"Adapter '{name}' already exists on this layer: remove it first or choose another name.", name);
            if (options.Method != Method)
                throw new GraloraException("AdapterMethodMismatch", GraloraErrorKind.InvalidArgument,
                    $"A {Method} layer cannot hold {options.Method} adapter '{name}'.", name);
            options.Validate(InFeatures, OutFeatures);
            var adapterType = dtype ?? WidenHalf(FrozenLinear.DType(_base));      // a quantised base: from its compute dtype
            _options[name] = options;                 // known while its parameters are made (DoRA's magnitude needs its ΔW)
            try
            {
                using (no_grad())
                    CreateAdapterParameters(name, options, adapterType, FrozenLinear.Device(_base));
            }
            catch
            {
                _options.Remove(name);
                throw;
            }
            _adapters.Add(name);
            if (_active.Count == 0) _active.Add(name);
            UpdateRequiresGrad();
        }

        /// <summary>Deletes adapter <paramref name="name"/> and its parameters. A merged adapter must be unmerged first.</summary>
        public void RemoveAdapter(string name)
        {
            GetOptions(name);
            if (_merged.Contains(name))
                throw new GraloraException("AdapterMerged", GraloraErrorKind.InvalidOperation,
                    $"Adapter '{name}' is merged into the base weight: unmerge it before removing it.", name);
            RemoveAdapterParameters(name);
            _options.Remove(name);
            _adapters.Remove(name);
            _active.Remove(name);
        }

        /// <summary>Makes exactly <paramref name="names"/> active; only active adapters' parameters require grad.</summary>
        public void SetActiveAdapters(IEnumerable<string> names)
        {
            var list = names.Distinct().ToList();
            foreach (var n in list) GetOptions(n);
            _active.Clear();
            _active.AddRange(list);
            UpdateRequiresGrad();
        }

        /// <summary>Makes the layer behave as its base (unmerging first); adapters are kept.</summary>
        public void DisableAdapters()
        {
            if (Merged) Unmerge();
            AdaptersDisabled = true;
        }

        /// <summary>Undoes <see cref="DisableAdapters"/>.</summary>
        public void EnableAdapters() => AdaptersDisabled = false;

        void UpdateRequiresGrad()
        {
            foreach (var n in _adapters)
                foreach (var p in AdapterParameters(n))
                    p.requires_grad = _active.Contains(n);
        }

        /// <summary>
        /// Parameters of adapter <paramref name="name"/>: what the subclass registered for it, in registration order
        /// (each parameter lives in a container child as <c>&lt;container&gt;.&lt;adapter&gt;[.rest]</c>; see <see cref="PeftKeys"/>).
        /// </summary>
        public IEnumerable<Parameter> AdapterParameters(string name) => PeftKeys.AdapterParameters(this, name, BaseLayerName).Select(p => p.Parameter);

        /// <inheritdoc />
        public bool HasAdapter(string adapter) => _options.ContainsKey(adapter);

        /// <inheritdoc />
        public virtual IEnumerable<(string Key, Parameter Tensor)> AdapterStateDict(string adapter)
        {
            GetOptions(adapter);
            return PeftKeys.AdapterParameters(this, adapter, BaseLayerName).Select(p => (PeftKeys.LayerKey(p.Path, adapter), p.Parameter)).ToList();
        }

        /// <summary>Number of parameters adapter <paramref name="name"/> adds.</summary>
        public long AdapterParameterCount(string name) => AdapterParameters(name).Sum(p => p.numel());

        /// <summary>
        /// The one builder of ΔW [out, in] (scaling included) for adapter <paramref name="name"/>, in the
        /// adapter's dtype; float16/bfloat16 adapters on the CPU are computed in float32.
        /// </summary>
        public abstract Tensor GetDeltaWeight(string name);

        /// <summary>Creates and registers the adapter's parameters, each in a container child keyed by the adapter name (as PEFT).</summary>
        protected abstract void CreateAdapterParameters(string name, IAdapterOptions options, ScalarType dtype, Device device);
        /// <summary>Unregisters and disposes the adapter's parameters.</summary>
        protected abstract void RemoveAdapterParameters(string name);
        /// <summary>The adapter's scaled contribution [M, out] to the base output, for x [M, in] (already in the adapter's dtype, dropout applied).</summary>
        protected abstract Tensor AdapterForward(string name, Tensor x);

        /// <summary>
        /// The weight after merging adapter <paramref name="name"/> into <paramref name="weight"/> (the base weight as it
        /// stands, in the merge dtype: float32 for half-precision bases), changing nothing: W + ΔW. A method whose merge is
        /// not a sum (DoRA, Full) overrides it together with <see cref="UnmergeWeight"/> and <see cref="OnMerged"/>.
        /// </summary>
        protected virtual Tensor MergeWeight(string name, Tensor weight) => weight.add(GetDeltaWeight(name).to(weight.dtype));

        /// <summary>Called once adapter <paramref name="name"/> is merged, with the weight it was merged into: keep what the unmerge needs.</summary>
        protected virtual void OnMerged(string name, Tensor weightBefore) { }

        /// <summary>Undoes <see cref="MergeWeight"/> for adapter <paramref name="name"/>, the newest merged one: W' − ΔW.</summary>
        protected virtual Tensor UnmergeWeight(string name, Tensor weight) => weight.sub(GetDeltaWeight(name).to(weight.dtype));

        /// <summary>
        /// The base weight as it was before any adapter was merged (float32 for half-precision bases), for methods whose ΔW
        /// depends on it: the current weight with every merge undone, newest first. No copy is made while nothing is merged.
        /// </summary>
        protected Tensor UnmergedBaseWeight()
        {
            var stored = BaseWeight().detach();                     // dequantised for a quantised base
            var weight = stored.to(WidenHalf(stored.dtype));
            for (int i = _merged.Count - 1; i >= 0; i--) weight = UnmergeWeight(_merged[i], weight);
            return weight;
        }

        /// <summary>
        /// result [..., out] + adapter <paramref name="name"/>'s scaled output for x [M, in] (as <see cref="AdapterForward"/>
        /// takes it; M = the result's leading sizes), in the result's dtype. A method whose output comes in another layout overrides this to
        /// add it without first reordering it into [M, out].
        /// </summary>
        protected virtual Tensor AddAdapterOutput(Tensor result, string name, Tensor x) =>
            result.add(AdapterForward(name, x).to(result.dtype).view(result.shape));

        /// <summary>
        /// The dtype of adapter <paramref name="name"/>'s parameters. Read on every forward: subclasses answer from a
        /// parameter they hold (a dictionary lookup) instead of walking the registered names.
        /// </summary>
        protected virtual ScalarType AdapterDType(string name) => AdapterParameters(name).First().dtype;

        /// <summary>
        /// The largest rank ΔW of adapter <paramref name="name"/> can reach by its method's structure (LoRA: r), at most
        /// min(out, in).
        /// </summary>
        public long MaxDeltaRank(string name) => Math.Min(StructuralRank(name), Math.Min(OutFeatures, InFeatures));

        /// <summary>The rank bound of the method's structure, before the layer's shape caps it (default: r).</summary>
        protected virtual long StructuralRank(string name) => GetOptions(name).Rank;

        /// <summary>
        /// Numerical rank of ΔW: singular values (computed in float64) above max(out, in) · ε · σ_max, with ε
        /// the machine epsilon of the adapter's dtype, so rounding noise of a float32 ΔW is not counted.
        /// </summary>
        public long DeltaWeightRank(string name)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            return Diagnostics.RankAnalysis.Analyse(GetDeltaWeight(name)).NumericalRank;   // the one rank rule
        }

        /// <summary>
        /// Adds ΔW of <paramref name="names"/> (default: the active adapters not yet merged) to the base
        /// weight. Half-precision weights are merged in float32 and rounded once; float32/float64 stay as they are. With
        /// <paramref name="safe"/>, the sum is checked for NaN/Inf before the weight is touched.
        /// </summary>
        public void Merge(bool safe = false, IEnumerable<string>? names = null)
        {
            var toMerge = (names ?? _active).Where(n => !_merged.Contains(n)).ToList();
            foreach (var n in toMerge) GetOptions(n);
            using var _ = no_grad();
            foreach (var n in toMerge)
            {
                using var scope = NewDisposeScope();
                var weight = BaseWeight();                              // dequantised for a quantised base
                var before = weight.to(WidenHalf(weight.dtype), copy: true);
                var merged = MergeWeight(n, before);
                // Checked after rounding to the weight's own dtype: a float32 sum that is finite can still overflow
                // float16 (max 65504) or bfloat16 when stored.
                if (safe && !merged.to(weight.dtype).isfinite().all().item<bool>())
                    throw new GraloraException("NonFiniteMerge", GraloraErrorKind.InvalidData,
                        $"Merging adapter '{n}' would put NaN or Inf into the base weight (stored as {weight.dtype}); the adapter seems broken, or its values overflow {weight.dtype}. The weight was not changed.", n);
                Store(merged, weight);
                OnMerged(n, before);
                _merged.Add(n);
            }
        }

        /// <summary>Subtracts every merged adapter's ΔW, newest first, restoring the base weight within rounding.</summary>
        public void Unmerge()
        {
            using var _ = no_grad();
            while (_merged.Count > 0)
            {
                string n = _merged[^1];
                using var scope = NewDisposeScope();
                var weight = BaseWeight();
                var restored = UnmergeWeight(n, weight.to(WidenHalf(weight.dtype)));
                _merged.RemoveAt(_merged.Count - 1);
                Store(restored, weight);
            }
        }

        /// <summary>
        /// The base weight [out, in] as <see cref="Merge"/> would leave it after merging <paramref name="names"/> (in that
        /// order), without changing the layer: a new tensor in the weight's dtype. Exports use it, so an exported
        /// checkpoint holds exactly what a merge holds (a float64 weight keeps float64 precision).
        /// </summary>
        public Tensor MergedWeight(IEnumerable<string> names)
        {
            var list = names.ToList();
            foreach (var n in list) GetOptions(n);
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var weight = BaseWeight();
            var merged = weight.detach().clone();
            var work = WidenHalf(weight.dtype);
            foreach (var n in list) merged = MergeWeight(n, merged.to(work)).to(weight.dtype);   // rounded per adapter, as Merge's copy_ does
            return merged.MoveToOuterDisposeScope();
        }

        // Writes a merged weight back (a quantised base re-quantises; the rounding that adds is kept).
        void Store(Tensor merged, Tensor before) => LastRequantization = FrozenLinear.Store(_base, merged, before);

        /// <summary>
        /// The scaled update one adapter adds to the base output for input x [..., in] (dropout applied in
        /// training), in the adapter's dtype: x·ΔWᵀ computed without building ΔW. For diagnostics and benchmarks.
        /// </summary>
        public Tensor AdapterUpdate(string name, Tensor x)
        {
            GetOptions(name);
            using var scope = torch.NewDisposeScope();
            var flat = PrepareInput(name, x.reshape(-1, InFeatures));
            var lead = x.shape.Take(x.shape.Length - 1).Append(OutFeatures).ToArray();
            return AdapterForward(name, flat).view(lead).MoveToOuterDisposeScope();
        }

        Tensor PrepareInput(string name, Tensor flat)
        {
            var input = flat.to(AdapterDType(name));
            double p = _options[name].Dropout;
            return p > 0 && training ? nn.functional.dropout(input, p, true) : input;
        }

        /// <summary>base(x) plus, for each active adapter, its scaled output for dropout(x); result in x's dtype.</summary>
        public override Tensor forward(Tensor x)
        {
            if (AdaptersDisabled || Merged) return _base.forward(x);
            // Intermediates die with this scope, as they would in Python when the function returns: autograd keeps
            // its own references to what backward needs, so only the caller's step scope would otherwise pin them
            // (the regroup copies, the [k, M, out/k] block outputs, the unscaled update) until the step ends.
            using var scope = torch.NewDisposeScope();
            var result = _base.forward(x);
            if (_active.Count > 0)
            {
                var flat = x.reshape(-1, InFeatures);                                     // [M, in]
                foreach (var n in _active) result = AddAdapterOutput(result, n, PrepareInput(n, flat));
            }
            return result.to(x.dtype).MoveToOuterDisposeScope();
        }

        /// <summary>Validated lookup helper for subclasses.</summary>
        protected GraloraException UnknownAdapter(string name) =>
            new("AdapterNotFound", GraloraErrorKind.NotFound,
                $"Adapter '{name}' does not exist on this layer; it has: {(_adapters.Count == 0 ? "none" : string.Join(", ", _adapters))}.", name);

        // float16/bfloat16 become float32 (adapter weights, merge sums); wider types keep their precision.
        internal static ScalarType WidenHalf(ScalarType dtype) =>
            dtype == ScalarType.Float16 || dtype == ScalarType.BFloat16 ? ScalarType.Float32 : dtype;

        /// <summary>The dtype ΔW is computed in: float32 for float16/bfloat16 on the CPU (as PEFT), else the adapter's.</summary>
        protected static ScalarType DeltaComputeType(Tensor adapterWeight) =>
            adapterWeight.device_type == DeviceType.CPU && (adapterWeight.dtype == ScalarType.Float16 || adapterWeight.dtype == ScalarType.BFloat16)
                ? ScalarType.Float32 : adapterWeight.dtype;

        /// <summary>Unregisters and disposes one adapter parameter, if present.</summary>
        protected static void RemoveParameter(ParameterDict dict, string key)
        {
            if (!dict.TryGetValue(key, out var p)) return;
            dict.Remove(key);
            p.Dispose();
        }

        /// <summary>Kaiming-uniform bound for a = √5 (PyTorch's Linear default): 1/√fan_in.</summary>
        protected static double KaimingBound(long fanIn) => 1.0 / Math.Sqrt(fanIn);
    }
}
