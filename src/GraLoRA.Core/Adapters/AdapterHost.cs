using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// The rounding quantising added to module <paramref name="Module"/>'s weight W': the largest entry of Q(W') − W', and
    /// its norm relative to the update ΔW after a merge (W' = W + ΔW; 1 means as large as the update itself), or to W'
    /// itself in a quantised export (see <see cref="Requantization"/>).
    /// </summary>
    public sealed record LayerRequantization(string Module, double MaxAbsError, double RelativeError);

    /// <summary>
    /// One adapter as <see cref="AdapterHost.List"/> reports it. K: GraLoRA's k or RaSA's rasa_k (null otherwise);
    /// MoraType: MoRA's type; Parameters: trainable parameters, a RaSA pool counted once.
    /// </summary>
    public sealed record AdapterInfo(string Name, AdapterMethod Method, int Rank, int? K, int HybridRank, double Alpha,
        IReadOnlyList<string> Targets, long Parameters, bool Active, bool Merged, bool Disabled, int? MoraType = null);

    /// <summary>
    /// The adapters of one model (PEFT's BaseTuner/PeftModel): injects named adapters into the model's linear slots,
    /// keeps their configs, switches which are active, merges, unloads, and maps their tensors to and from PEFT's
    /// checkpoint keys ("base_model.model.&lt;module&gt;.gralora_A", …).
    /// </summary>
    public sealed partial class AdapterHost
    {
        /// <summary>PEFT's prefix of every saved key of a module (<see cref="PeftKeys.ModelPrefix"/>).</summary>
        public const string KeyPrefix = PeftKeys.ModelPrefix;

        readonly nn.Module _root;
        readonly string _outputHead;
        readonly IReadOnlyList<string> _defaultTargets;
        readonly List<string> _names = new();
        readonly Dictionary<string, AdapterConfig> _configs = new(StringComparer.Ordinal);
        readonly Dictionary<string, List<string>> _targets = new(StringComparer.Ordinal);
        readonly List<string> _active = new();

        /// <summary>
        /// Manages adapters on <paramref name="root"/>; <paramref name="outputHead"/> is excluded from all-linear;
        /// <paramref name="defaultTargets"/> replaces a config without target modules (PEFT's per-architecture mapping;
        /// null: <see cref="AdapterDefaults.TargetModules"/>).
        /// </summary>
        public AdapterHost(nn.Module root, string outputHead, IReadOnlyList<string>? defaultTargets = null)
        {
            _root = root;
            _outputHead = outputHead;
            _defaultTargets = defaultTargets ?? AdapterDefaults.TargetModules;
        }

        /// <summary>
        /// Whether linear slot <paramref name="slot"/> (a full module name) belongs to module to save <paramref name="module"/>:
        /// it is that module or lies inside it (e.g. classifier.dense of a RoBERTa head), matched by name or suffix as PEFT does.
        /// </summary>
        static bool BelongsTo(string slot, string module) =>
            slot == module || slot.EndsWith("." + module, StringComparison.Ordinal)
            || slot.StartsWith(module + ".", StringComparison.Ordinal) || slot.Contains("." + module + ".", StringComparison.Ordinal);

        /// <summary>Adapter names, in the order added.</summary>
        public IReadOnlyList<string> Names => _names;
        /// <summary>The active adapters.</summary>
        public IReadOnlyList<string> Active => _active;
        /// <summary>True after <see cref="Disable"/>: the model computes as its base.</summary>
        public bool Disabled { get; private set; }
        /// <summary>The config of adapter <paramref name="name"/>.</summary>
        public AdapterConfig Config(string name) => _configs.TryGetValue(name, out var c) ? c : throw Unknown(name);
        /// <summary>Full names of the modules adapter <paramref name="name"/> adapts.</summary>
        public IReadOnlyList<string> Targets(string name) => _targets.TryGetValue(name, out var t) ? t : throw Unknown(name);

        sealed record PlannedLayer(string Name, ILinearSlots Owner, string Slot, nn.Module<Tensor, Tensor> Base, IAdapterOptions Options);

        /// <summary>
        /// The one rule for "which adapter do you mean" in an operation on a single adapter (saving, training): the
        /// adapter <paramref name="name"/> when given (it must exist: AdapterNotFound), else the only active adapter, else
        /// the only adapter. The model having none is NoActiveAdapter; several, not exactly one of them active, is
        /// AmbiguousAdapter. Every front end (cmdlets, F#) asks here.
        /// </summary>
        public string Current(string? name = null)
        {
            if (name is not null) return _configs.ContainsKey(name) ? name : throw Unknown(name);
            if (_active.Count == 1) return _active[0];
            if (_names.Count == 1) return _names[0];
            if (_names.Count == 0)
                throw new GraloraException("NoActiveAdapter", GraloraErrorKind.InvalidOperation,
                    "The model has no adapter: add one first (Add-GraLoRAAdapter, Adapter.add).", null);
            throw new GraloraException("AmbiguousAdapter", GraloraErrorKind.InvalidOperation,
                $"The model has adapters {string.Join(", ", _names)}, {(_active.Count == 0 ? "none" : string.Join(" and ", _active))} active: name the one you mean (-Adapter / -Name, or the F# Adapter setting).",
                string.Join(", ", _active.Count == 0 ? _names : _active));
        }

        GraloraException Unknown(string name) => new("AdapterNotFound", GraloraErrorKind.NotFound,
            $"No adapter named '{name}'; the model has: {(_names.Count == 0 ? "none" : string.Join(", ", _names))}.", name);

        /// <summary>Every replaceable linear slot: (full module name, owner, slot name).</summary>
        public IEnumerable<(string Name, ILinearSlots Owner, string Slot)> SlotsOf()
        {
            var owners = new List<(string, nn.Module)> { ("", _root) };
            owners.AddRange(_root.named_modules().Select(m => (m.name, m.module)));
            foreach (var (prefix, module) in owners)
                if (module is ILinearSlots slots)
                    foreach (var slot in slots.LinearSlotNames)
                        yield return (prefix.Length == 0 ? slot : prefix + "." + slot, slots, slot);
        }

        /// <summary>Adapter layers currently in the model, by full module name.</summary>
        public IEnumerable<(string Name, AdapterLayerBase Layer)> Layers() =>
            SlotsOf().Select(s => (s.Name, Module: s.Owner.GetSlot(s.Slot))).Where(s => s.Module is AdapterLayerBase).Select(s => (s.Name, (AdapterLayerBase)s.Module));

        IEnumerable<(string Name, ModulesToSaveLinear Wrapper)> SavedModules() =>
            SlotsOf().Select(s => (s.Name, Module: s.Owner.GetSlot(s.Slot))).Where(s => s.Module is ModulesToSaveLinear).Select(s => (s.Name, (ModulesToSaveLinear)s.Module));

        // The frozen layer a slot's adapters wrap (or would wrap): a Linear or a quantised layer.
        static nn.Module<Tensor, Tensor>? BaseLinear(nn.Module<Tensor, Tensor> module) => module switch
        {
            AdapterLayerBase a => a.BaseLayer,
            _ when FrozenLinear.Is(module) => module,
            _ => null,
        };

        /// <summary>
        /// Adds adapter <paramref name="name"/> to every module <paramref name="config"/> targets and makes it the only
        /// active (and so the only trainable) adapter; the base is frozen. Everything is checked first (names, matches,
        /// shapes, methods), so a failure leaves the model unchanged. Returns the adapted module names.
        /// </summary>
        public IReadOnlyList<string> Add(string name, AdapterConfig config)
        {
            if (string.IsNullOrWhiteSpace(name) || name.Contains('.'))
                throw new GraloraException("InvalidAdapterName", GraloraErrorKind.InvalidArgument,
                    $"Adapter name '{name}' is not usable: give a non-empty name without dots, such as 'default'.", name);
            if (_configs.ContainsKey(name))
                throw new GraloraException("AdapterExists", GraloraErrorKind.InvalidOperation,
                    $"The model already has an adapter named '{name}': remove it first (Remove-GraLoRAAdapter) or choose another -Name.", name);
            if (config.TargetModules is null && config.TargetModulesRegex is null)
                config = config with { TargetModules = _defaultTargets };
            config = config.Resolved();                               // Auto k per module rank, written out as it is saved
            config.Validate();
            var slots = SlotsOf().ToList();
            var plan = new List<PlannedLayer>();
            foreach (var (full, owner, slot) in slots)
            {
                if (!TargetMatching.IsTarget(config, full, _outputHead)) continue;
                var current = owner.GetSlot(slot);
                if (current is ModulesToSaveLinear)
                    throw new GraloraException("TargetIsSavedModule", GraloraErrorKind.InvalidArgument,
                        $"Module '{full}' is a module to save of another adapter and cannot also be adapted: exclude it (-ExcludeModule).", full);
                if (current is AdapterLayerBase existing && existing.Method != config.Method)
                    throw new GraloraException("AdapterMethodMismatch", GraloraErrorKind.InvalidArgument,
                        $"Module '{full}' already holds {existing.Method} adapters; one module cannot mix methods. Target other modules or remove those adapters.", full);
                if (current is AdapterLayerBase { Merged: true })
                    throw new GraloraException("AdapterMerged", GraloraErrorKind.InvalidOperation,
                        $"Module '{full}' has a merged adapter: unmerge (Split-GraLoRAAdapter) before adding another.", full);
                var baseLinear = BaseLinear(current) ?? throw new GraloraException("UnsupportedTarget", GraloraErrorKind.InvalidArgument,
                    $"Module '{full}' is a {current.GetType().Name}, not a linear layer.", full);
                if (baseLinear is not Linear && config.Method == AdapterMethod.Full)
                    throw new GraloraException("QuantizationUnsupported", GraloraErrorKind.InvalidArgument,
                        $"Module '{full}' is quantised, and full fine-tuning trains the full-precision weight itself, which a quantised base does not hold (the adapter methods — LoRA, GraLoRA, DoRA, MoRA, RaSA — train over it). Use one of those, or import the model without -Quantize.", full);
                plan.Add(new PlannedLayer(full, owner, slot, baseLinear, config.OptionsFor(full)));
            }
            if (plan.Count == 0)
            {
                var available = slots.Select(s => s.Name.Split('.').Last()).Distinct();
                string asked = config.TargetModulesRegex ?? string.Join(", ", config.TargetModules!);
                throw new GraloraException("NoTargetModules", GraloraErrorKind.InvalidArgument,
                    $"Target modules '{asked}' match no linear layer of this model (after exclusions and layer filters). Its linear layers are named: {string.Join(", ", available)}.", asked);
            }
            var pools = config.Method == AdapterMethod.RaSA ? PlanRasaPools(plan.Select(p => (p.Name, p.Base)).ToList()) : null;
            if (pools is not null)
                plan = plan.Select(p => p with { Options = ((RasaOptions)p.Options) with { SharedLayers = pools[RasaSharedPool.ModuleType(p.Name)!].Layers } }).ToList();
            foreach (var p in plan) p.Options.Validate(FrozenLinear.InFeatures(p.Base), FrozenLinear.OutFeatures(p.Base), p.Name);
            var saveTargets = new List<(string Name, ILinearSlots Owner, string Slot, Linear Base)>();
            foreach (var m in config.ModulesToSave ?? Array.Empty<string>())
            {
                var matches = slots.Where(s => BelongsTo(s.Name, m)).ToList();
                if (matches.Count == 0)
                    throw new GraloraException("ModuleToSaveNotFound", GraloraErrorKind.InvalidArgument,
                        $"ModulesToSave names '{m}', which is not a linear layer of this model (modules to save must be linear layers such as lm_head).", m);
                foreach (var (full, owner, slot) in matches)
                {
                    var current = owner.GetSlot(slot);
                    var baseLinear = current is ModulesToSaveLinear w ? w.Original : current as Linear
                        ?? throw SavedModuleRefused(full, current);
                    saveTargets.Add((full, owner, slot, baseLinear));
                }
            }

            // Everything checked: now change the model.
            if (pools is not null) AddRasaPools(name, config, pools);
            foreach (var (full, owner, slot, baseLinear, options) in plan)
            {
                if (owner.GetSlot(slot) is AdapterLayerBase layer) layer.AddAdapter(name, options);
                else
                {
                    var wrapper = NewLayer(config.Method, baseLinear, full);
                    wrapper.AddAdapter(name, options);
                    owner.SetSlot(slot, wrapper);
                }
            }
            foreach (var (full, owner, slot, baseLinear) in saveTargets)
            {
                if (owner.GetSlot(slot) is not ModulesToSaveLinear wrapper)
                {
                    wrapper = new ModulesToSaveLinear(baseLinear);
                    owner.SetSlot(slot, wrapper);
                }
                wrapper.AddCopy(name);
            }
            _names.Add(name);
            _configs[name] = config;
            _targets[name] = plan.Select(p => p.Name).ToList();
            if (Disabled)                                             // new layers follow the model's disabled state
                foreach (var (_, layer) in Layers()) layer.DisableAdapters();
            SetActive(new[] { name });
            return _targets[name];
        }

        // A quantised base takes every method but Full (refused before anything changes, in Add).
        AdapterLayerBase NewLayer(AdapterMethod method, nn.Module<Tensor, Tensor> baseLayer, string fullName) => method switch
        {
            AdapterMethod.GraLoRA => new GraloraLinear(baseLayer),
            AdapterMethod.LoRA => new LoraLinear(baseLayer),
            AdapterMethod.DoRA => new DoraLinear(baseLayer),
            AdapterMethod.MoRA => new MoraLinear(baseLayer),
            AdapterMethod.RaSA => new RasaLinear(baseLayer, RasaPool(), RasaSharedPool.ModuleType(fullName)!),
            _ => new FullLinear((Linear)baseLayer),
        };

        /// <summary>
        /// Makes linear module <paramref name="module"/> (e.g. a classification head added after the adapter) a module to
        /// save of adapter <paramref name="name"/>: it gets its own trainable copy, saved with the adapter.
        /// </summary>
        public void AddModuleToSave(string name, string module)
        {
            var config = Config(name);
            if (config.ModulesToSave?.Contains(module) == true) return;
            var matches = SlotsOf().Where(s => BelongsTo(s.Name, module)).ToList();
            if (matches.Count == 0)
                throw new GraloraException("ModuleToSaveNotFound", GraloraErrorKind.InvalidArgument,
                    $"'{module}' is not a linear layer of this model (modules to save must be linear layers such as lm_head or score).", module);
            foreach (var (full, owner, slot) in matches)
            {
                var current = owner.GetSlot(slot);
                if (current is not (Linear or ModulesToSaveLinear)) throw SavedModuleRefused(full, current);
                if (current is not ModulesToSaveLinear wrapper)
                {
                    wrapper = new ModulesToSaveLinear((Linear)current);
                    owner.SetSlot(slot, wrapper);
                }
                wrapper.AddCopy(name);
            }
            _configs[name] = config with { ModulesToSave = (config.ModulesToSave ?? Array.Empty<string>()).Append(module).ToArray() };
            ApplyTrainability();
        }

        // A module to save trains a full copy: it must be a plain Linear (a quantised layer has no weight to train).
        static GraloraException SavedModuleRefused(string full, nn.Module<Tensor, Tensor> current) => current is Quantization.QuantizedLinear
            ? new("UnsupportedTarget", GraloraErrorKind.InvalidArgument,
                $"Module to save '{full}' is quantised: a module to save trains a full-precision copy of its weight, which a quantised layer does not have. Adapt it instead (-TargetModule), or load the model without -Quantize.", full)
            : new("UnsupportedTarget", GraloraErrorKind.InvalidArgument, $"Module to save '{full}' already holds adapters.", full);

        /// <summary>Makes exactly <paramref name="names"/> active (their outputs add up); only they and their modules to save train.</summary>
        public void SetActive(IEnumerable<string> names)
        {
            var list = names.Distinct().ToList();
            foreach (var n in list) Config(n);
            _active.Clear();
            _active.AddRange(list);
            ApplyTrainability();
        }

        // PEFT's _mark_only_adapters_as_trainable: freeze the base, then thaw active adapters and the chosen biases.
        void ApplyTrainability()
        {
            foreach (var p in _root.parameters()) p.requires_grad = false;
            foreach (var (_, layer) in Layers())
                layer.SetActiveAdapters(_active.Where(layer.AdapterNames.Contains));
            foreach (var name in _active)
                foreach (var (_, a, b) in RasaPoolParameters(name))
                    a.requires_grad = b.requires_grad = true;
            foreach (var (_, wrapper) in SavedModules()) wrapper.SetActive(Disabled ? null : _active);
            foreach (var name in _active)
            {
                string bias = _configs[name].Bias;
                if (bias == "all")
                    foreach (var (n, p) in _root.named_parameters())
                        if (n == "bias" || n.EndsWith(".bias", StringComparison.Ordinal)) p.requires_grad = true;
                if (bias == _configs[name].OnlyBias)
                    foreach (var (_, layer) in Layers())
                        if (layer.BaseBias is { } b) b.requires_grad = true;
            }
        }

        /// <summary>The model computes as its base (adapters kept, merged ones unmerged).</summary>
        public void Disable()
        {
            foreach (var (_, layer) in Layers()) layer.DisableAdapters();
            Disabled = true;
            ApplyTrainability();
        }

        /// <summary>Undoes <see cref="Disable"/>.</summary>
        public void Enable()
        {
            foreach (var (_, layer) in Layers()) layer.EnableAdapters();
            Disabled = false;
            ApplyTrainability();
        }

        /// <summary>Deletes adapter <paramref name="name"/> everywhere; a layer left without adapters gives its slot back to the plain Linear.</summary>
        public void Remove(string name)
        {
            Config(name);
            var layers = Layers().Where(l => l.Layer.AdapterNames.Contains(name)).ToList();
            foreach (var (full, layer) in layers)
                if (layer.MergedAdapters.Contains(name))
                    throw new GraloraException("AdapterMerged", GraloraErrorKind.InvalidOperation,
                        $"Adapter '{name}' is merged into '{full}': unmerge it (Split-GraLoRAAdapter) before removing it.", name);
            foreach (var (owner, slot, module) in SlotsOf().Select(s => (s.Owner, s.Slot, s.Owner.GetSlot(s.Slot))).ToList())
            {
                if (module is AdapterLayerBase layer && layer.AdapterNames.Contains(name))
                {
                    layer.RemoveAdapter(name);
                    if (layer.AdapterNames.Count == 0) owner.SetSlot(slot, layer.BaseLayer);
                }
                else if (module is ModulesToSaveLinear wrapper && wrapper.AdapterNames.Contains(name))
                {
                    wrapper.RemoveCopy(name);
                    if (wrapper.AdapterNames.Count == 0) owner.SetSlot(slot, wrapper.Original);
                }
            }
            ReleaseRasaPool(name);
            _names.Remove(name);
            _configs.Remove(name);
            _targets.Remove(name);
            _active.Remove(name);
            ApplyTrainability();
        }

        /// <summary>Adds ΔW of <paramref name="names"/> (default: the active adapters) into the base weights; <paramref name="safe"/> checks for non-finite values first.</summary>
        /// <remarks>
        /// A quantised base is dequantised, merged and re-quantised (as PEFT merges into bitsandbytes layers): the result
        /// lists, per such layer, the rounding that re-quantising added (empty for full-precision bases).
        /// </remarks>
        public IReadOnlyList<LayerRequantization> Merge(IEnumerable<string>? names = null, bool safe = false)
        {
            var list = (names ?? _active).ToList();
            foreach (var n in list) Config(n);
            if (Disabled)
                throw new GraloraException("AdaptersDisabled", GraloraErrorKind.InvalidOperation, "Adapters are disabled: enable them before merging.");
            var rounding = new List<LayerRequantization>();
            foreach (var (full, layer) in Layers())
            {
                var here = list.Where(layer.AdapterNames.Contains).Where(n => !layer.MergedAdapters.Contains(n)).ToList();
                if (here.Count == 0) continue;
                layer.Merge(safe, here);
                if (layer.LastRequantization is { } r) rounding.Add(new LayerRequantization(full, r.MaxAbs, r.RelativeError));
            }
            return rounding;
        }

        /// <summary>Subtracts every merged ΔW again.</summary>
        public void Unmerge()
        {
            foreach (var (_, layer) in Layers()) if (layer.Merged) layer.Unmerge();
        }

        /// <summary>
        /// PEFT's merge_and_unload: merges <paramref name="names"/> (default: active; none when <paramref name="merge"/>
        /// is false), then puts the plain layers back (active modules to save replace their originals) and forgets every adapter.
        /// </summary>
        public IReadOnlyList<LayerRequantization> Unload(bool merge = true, IEnumerable<string>? names = null, bool safe = false)
        {
            var rounding = merge ? Merge(names, safe) : Array.Empty<LayerRequantization>();
            foreach (var (owner, slot, module) in SlotsOf().Select(s => (s.Owner, s.Slot, s.Owner.GetSlot(s.Slot))).ToList())
            {
                if (module is AdapterLayerBase layer)
                {
                    owner.SetSlot(slot, layer.BaseLayer);
                    foreach (var n in layer.AdapterNames.ToList()) { if (!layer.MergedAdapters.Contains(n)) layer.RemoveAdapter(n); }
                }
                else if (module is ModulesToSaveLinear wrapper)
                {
                    var keep = merge && wrapper.ActiveAdapter is { } a ? wrapper.Copy(a) : wrapper.Original;
                    owner.SetSlot(slot, keep);
                }
            }
            foreach (var n in _names) ReleaseRasaPool(n);
            _names.Clear();
            _configs.Clear();
            _targets.Clear();
            _active.Clear();
            Disabled = false;
            foreach (var p in _root.parameters()) p.requires_grad = false;
            return rounding;
        }

        /// <summary>
        /// The parameters adapter <paramref name="name"/>'s ΔW is computed from: every adapted layer's own and, for RaSA,
        /// its shared pool once (not its modules to save or biases).
        /// </summary>
        public IEnumerable<Parameter> DeltaParameters(string name) =>
            Layers().Where(l => l.Layer.AdapterNames.Contains(name)).SelectMany(l => l.Layer.AdapterParameters(name))
                .Concat(RasaPoolParameters(name).SelectMany(p => new[] { p.A, p.B }));

        /// <summary>One row per adapter.</summary>
        public IReadOnlyList<AdapterInfo> List() => _names.Select(n =>
        {
            var c = _configs[n];
            var layers = Layers().Where(l => l.Layer.AdapterNames.Contains(n)).ToList();
            long count = DeltaParameters(n).Sum(p => p.numel())                                    // RaSA's pool once, not per layer
                         + SavedModules().Where(s => s.Wrapper.AdapterNames.Contains(n)).Sum(s => s.Wrapper.Copy(n).parameters().Sum(p => p.numel()));
            int? k = c.Method switch { AdapterMethod.GraLoRA => c.EffectiveK, AdapterMethod.RaSA => c.EffectiveRasaK, _ => null };
            return new AdapterInfo(n, c.Method, c.EffectiveRank, k, c.HybridRank, c.EffectiveAlpha,
                _targets[n], count, _active.Contains(n), layers.Any(l => l.Layer.MergedAdapters.Contains(n)), Disabled,
                c.Method == AdapterMethod.MoRA ? c.EffectiveMoraType : null);
        }).ToList();

        /// <summary>Trainable and total parameter counts (shared tensors counted once).</summary>
        public (long Trainable, long Total) ParameterCounts()
        {
            var unique = _root.parameters().GroupBy(p => p.Handle).Select(g => g.First()).ToList();
            return (unique.Where(p => p.requires_grad).Sum(p => p.numel()), unique.Sum(p => p.numel()));
        }
    }
}
