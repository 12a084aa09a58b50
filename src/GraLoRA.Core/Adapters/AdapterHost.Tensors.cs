using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.IO;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>The host's tensors: an adapter's under PEFT's keys (saved and loaded), and the merged weights an export writes.</summary>
    public sealed partial class AdapterHost
    {
        /// <summary>
        /// Adapter <paramref name="name"/>'s tensors under PEFT's checkpoint keys (adapter name removed): adapter
        /// weights, modules to save, and the biases its Bias setting trains.
        /// </summary>
        public Dictionary<string, Tensor> StateDict(string name)
        {
            var config = Config(name);
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            // Keys come from the names the slot modules register (PeftKeys): adapter layers and modules to save alike.
            foreach (var (full, owner, slot) in SlotsOf())
                if (owner.GetSlot(slot) is IAdapterTensors holder && holder.HasAdapter(name))
                    foreach (var (key, tensor) in holder.AdapterStateDict(name)) result[PeftKeys.ModuleKey(full, key)] = tensor;
            // RaSA's pool sits on PEFT's tuner (base_model), above the model: base_model.rasa_shared_A.<type>.weight.
            foreach (var (type, a, b) in RasaPoolParameters(name))
            {
                result[PeftKeys.TunerPrefix + RasaSharedPool.SharedAName + "." + type + ".weight"] = a;
                result[PeftKeys.TunerPrefix + RasaSharedPool.SharedBName + "." + type + ".weight"] = b;
            }
            string copies = "." + ModulesToSaveLinear.CopiesName + ".";
            if (config.Bias == "all")
                foreach (var (p, t) in _root.named_parameters())
                    if ((p == "bias" || p.EndsWith(".bias", StringComparison.Ordinal)) && !p.Contains(copies, StringComparison.Ordinal))
                        result[PeftKeys.ModuleKey("", p)] = t;
            if (config.Bias == config.OnlyBias)
                foreach (var (full, layer) in Layers())
                    if (layer.AdapterNames.Contains(name) && layer.BaseBias is { } b)
                        result[PeftKeys.ModuleKey(full, AdapterLayerBase.BaseLayerName + ".bias")] = b;
            return result;
        }

        /// <summary>
        /// Copies <paramref name="tensors"/> (PEFT keys) into adapter <paramref name="name"/>; every key must exist with
        /// the same shape and every adapter tensor must be given, else nothing is copied and the error names the key.
        /// </summary>
        public void LoadStateDict(string name, IReadOnlyDictionary<string, Tensor> tensors, string source)
        {
            var targets = StateDict(name);
            foreach (var (key, tensor) in tensors)
            {
                if (!targets.TryGetValue(key, out var target))
                    throw new GraloraException("UnexpectedAdapterTensor", GraloraErrorKind.InvalidData,
                        $"'{source}' has tensor '{key}', which adapter '{name}' on this model does not have: the adapter was made for another model or configuration.", key);
                if (!target.shape.SequenceEqual(tensor.shape))
                    throw new GraloraException("AdapterShapeMismatch", GraloraErrorKind.InvalidData,
                        $"'{source}': tensor '{key}' has shape [{string.Join(", ", tensor.shape)}] but this model needs [{string.Join(", ", target.shape)}]: the adapter was made for another model size or configuration.", key);
            }
            var missing = targets.Keys.Where(k => !tensors.ContainsKey(k)).ToList();
            if (missing.Count > 0)
                throw new GraloraException("AdapterTensorMissing", GraloraErrorKind.InvalidData,
                    $"'{source}' lacks tensor(s) {string.Join(", ", missing.Take(3))}{(missing.Count > 3 ? ", …" : "")} of adapter '{name}'.", missing[0]);
            // Keys sharing one tensor (MoRA's lora_A and lora_B) must carry the same values, or which one wins would be arbitrary.
            foreach (var group in targets.Where(t => tensors.ContainsKey(t.Key)).GroupBy(t => t.Value.Handle).Where(g => g.Count() > 1))
            {
                var keys = group.Select(g => g.Key).ToList();
                if (keys.Skip(1).Any(k => !tensors[k].eq(tensors[keys[0]]).all().item<bool>()))
                    throw new GraloraException("AliasedTensorsDiffer", GraloraErrorKind.InvalidData,
                        $"'{source}': {string.Join(" and ", keys)} are one matrix in this adapter (MoRA stores it twice) but differ in the file: it was not saved by MoRA's code.", keys[0]);
            }
            using var _ = no_grad();
            foreach (var (key, tensor) in tensors) targets[key].copy_(tensor);
        }

        /// <summary>
        /// The model's weights as a plain checkpoint would hold them, with every active, unmerged adapter folded in
        /// (<see cref="AdapterLayerBase.MergedWeight"/>, computed one tensor at a time while writing) and modules to save replaced by the active copy:
        /// transformers' key names, no adapter tensors. <paramref name="skip"/> drops keys (e.g. a tied head).
        /// </summary>
        /// <remarks><paramref name="adapters"/>: fold exactly these adapters (and their modules to save) instead of the active ones.</remarks>
        public IReadOnlyList<TensorSource> MergedWeights(Func<string, bool>? skip = null, IReadOnlyCollection<string>? adapters = null)
        {
            var sources = new List<TensorSource>();
            var covered = new List<string> { RasaSharedPool.SharedAName + ".", RasaSharedPool.SharedBName + "." };   // adapter tensors, folded into each layer
            void Add(string name, Tensor t, Func<Tensor>? compute = null)
            {
                if (skip?.Invoke(name) == true) return;
                sources.Add(compute is null ? new TensorSource(name, t.shape, t.dtype, () => t) : new TensorSource(name, t.shape, t.dtype, compute, Owned: true));
            }
            // A quantised weight is computed (dequantised) while writing: its shape and its compute dtype, never held whole.
            void Compute(string name, nn.Module layer, Func<Tensor> compute)
            {
                if (skip?.Invoke(name) != true)
                    sources.Add(new TensorSource(name, new[] { FrozenLinear.OutFeatures(layer), FrozenLinear.InFeatures(layer) }, FrozenLinear.DType(layer), compute, Owned: true));
            }
            foreach (var (full, layer) in Layers())
            {
                covered.Add(full + ".");
                // As the layer's forward: disabled or partly merged layers compute with the (merged) base weight alone.
                var pending = Disabled || layer.Merged ? new List<string>()
                    : (adapters is null ? layer.ActiveAdapters : layer.AdapterNames.Where(adapters.Contains)).ToList();
                if (pending.Count == 0 && layer.BaseLayer is Linear plain) Add(full + ".weight", plain.weight!);
                else Compute(full + ".weight", layer.BaseLayer, () => layer.MergedWeight(pending));   // the layer's own merge rule (dequantised)
                if (layer.BaseBias is { } bias) Add(full + ".bias", bias);
            }
            foreach (var (full, owner, slot) in SlotsOf())
                if (owner.GetSlot(slot) is Quantization.QuantizedLinear quantized)                  // no adapter: dequantised as is
                {
                    covered.Add(full + ".");
                    Compute(full + ".weight", quantized, () => quantized.DequantizedWeight());
                    if (quantized.Bias is { } bias) Add(full + ".bias", bias);
                }
            foreach (var (full, wrapper) in SavedModules())
            {
                covered.Add(full + ".");
                string? copy = Disabled ? null : adapters is null ? wrapper.ActiveAdapter : wrapper.AdapterNames.FirstOrDefault(adapters.Contains);
                var chosen = copy is null ? wrapper.Original : wrapper.Copy(copy);
                foreach (var (p, t) in chosen.named_parameters()) Add(full + "." + p, t);
            }
            foreach (var (name, t) in _root.named_parameters())
                if (!covered.Any(c => name.StartsWith(c, StringComparison.Ordinal))) Add(name, t);
            foreach (var (name, t) in _root.named_buffers())
                if (!covered.Any(c => name.StartsWith(c, StringComparison.Ordinal))) Add(name, t);
            return sources;
        }
    }
}
