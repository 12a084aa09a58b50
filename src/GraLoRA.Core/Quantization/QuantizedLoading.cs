using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.IO;
using GraLoRA.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Quantization
{
    /// <summary>
    /// How a decoder loads quantised: either its full-precision weights are quantised one tensor at a time as they are
    /// read (<see cref="OnLoad"/>), or a checkpoint saved quantised by bitsandbytes is read as it is (<see cref="Stored"/>).
    /// </summary>
    internal sealed record QuantizationPlan(QuantizationOptions? OnLoad, BnbQuantizationConfig? Stored, ScalarType ComputeDType)
    {
        public QuantizationScheme Scheme => OnLoad?.Scheme ?? Stored!.Scheme;

        /// <summary>
        /// The plan for a checkpoint with config <paramref name="config"/> when <paramref name="requested"/> quantisation
        /// (or none) is asked: a quantised checkpoint is read as stored (asking for another scheme, or for settings its own
        /// quant state fixes, is refused); a full-precision one is quantised when asked. Compute dtype: the asked dtype,
        /// else the checkpoint's bnb_4bit_compute_dtype (stored) or the model's dtype (on load).
        /// </summary>
        public static QuantizationPlan? Resolve(DecoderConfig config, QuantizationOptions? requested, ScalarType? askedDType, ScalarType modelDType, string folder)
        {
            requested?.Validate();
            var stored = config.Quantization;
            if (stored is null) return requested is null ? null : new QuantizationPlan(requested, null, modelDType);
            if (requested is not null && (requested.Scheme != stored.Scheme || requested.DoubleQuant || requested.BlockSize != QuantizationOptions.DefaultBlockSize))
                throw new GraloraException("QuantizationMismatch", GraloraErrorKind.InvalidArgument,
                    $"'{folder}' is already quantised ({QuantizationOptions.Name(stored.Scheme)}, bitsandbytes): it loads as stored, with its own block size and double quantisation. " +
                    (requested.Scheme != stored.Scheme ? $"Re-quantising it as {QuantizationOptions.Name(requested.Scheme)} would compound two roundings: load the full-precision checkpoint instead, or drop -Quantize." : "Drop -DoubleQuant/-BlockSize."),
                    folder);
            return new QuantizationPlan(null, stored, askedDType ?? stored.ComputeDType);
        }
    }

    /// <summary>Fills a decoder's quantised layers from a checkpoint, one weight at a time.</summary>
    internal static class QuantizedLoading
    {
        /// <summary>
        /// The quantised layers of <paramref name="root"/> by full module name, each once (TorchSharp also lists a module
        /// under the private field that holds it, e.g. an adapter layer's "_base" beside "base_layer": the first name wins).
        /// </summary>
        public static IEnumerable<(string Name, QuantizedLinear Layer)> Layers(nn.Module root) =>
            root.named_modules().Where(m => m.module is QuantizedLinear).GroupBy(m => m.module).Select(g => (g.First().name, (QuantizedLinear)g.Key));

        /// <summary>Puts plain Linear layers back where a stored checkpoint's llm_int8_skip_modules leaves modules unquantised (sharing the bias already made).</summary>
        public static void KeepSkippedPlain(DecoderForCausalLM model, BnbQuantizationConfig stored)
        {
            foreach (var (name, owner, slot) in new AdapterHost(model, DecoderForCausalLM.OutputHeadName).SlotsOf().ToList())
                if (owner.GetSlot(slot) is QuantizedLinear q && stored.Skips(name))
                {
                    owner.SetSlot(slot, nn.Linear(new Parameter(empty(q.OutFeatures, q.InFeatures, dtype: model.DType, device: model.Device)), q.Bias));
                    q.Dispose();
                }
        }

        /// <summary>
        /// Quantises (or reads, for a stored checkpoint) the weight of every quantised layer of <paramref name="model"/>
        /// from <paramref name="files"/>. Peak memory: the layers filled so far plus one tensor being converted.
        /// </summary>
        public static void Load(DecoderForCausalLM model, QuantizationPlan plan, IReadOnlyList<string> files, string folder)
        {
            var index = new Dictionary<string, (string File, long DataStart, SafetensorsEntry Entry)>(StringComparer.Ordinal);
            foreach (var file in files)
            {
                var (entries, _, dataStart) = Safetensors.ReadHeader(file);
                foreach (var e in entries.Values) index[e.Name] = (file, dataStart, e);
            }
            var streams = new Dictionary<string, FileStream>(StringComparer.Ordinal);
            try
            {
                Tensor Read(string key)
                {
                    var (file, dataStart, entry) = index[key];
                    if (!streams.TryGetValue(file, out var stream))
                        streams[file] = stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                    return Safetensors.ReadTensor(stream, dataStart, entry);
                }
                var device = model.Device;
                using var _ = no_grad();
                foreach (var (name, layer) in Layers(model).ToList())
                {
                    string weightKey = name + ".weight";
                    if (plan.OnLoad is { } options)
                    {
                        if (!index.TryGetValue(weightKey, out var found))
                            throw new GraloraException("TensorMissing", GraloraErrorKind.InvalidData, $"Model folder '{folder}' lacks tensor(s): {weightKey}.", weightKey);
                        CheckFullPrecision(found.Entry, layer, found.File);
                        using var scope = NewDisposeScope();
                        var weight = Read(weightKey).to(model.DType, device);                     // cast first, as transformers quantises the loaded dtype
                        layer.Load(QuantizedWeight.Quantize(weight, options));
                    }
                    else
                    {
                        string prefix = name + ".";
                        var keys = index.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && k != prefix + "bias")
                            .ToDictionary(k => k[prefix.Length..], k => index[k].Entry, StringComparer.Ordinal);
                        if (keys.TryGetValue("weight", out var stored) && Safetensors.TypeOf(stored.DType) is var t && is_floating_point(t))
                            throw new GraloraException("TensorNotQuantized", GraloraErrorKind.InvalidData,
                                $"'{weightKey}' in '{folder}' is stored in full precision ({stored.DType}), but the config's quantization_config quantises this module: list it in llm_int8_skip_modules, or load a consistent checkpoint.", weightKey);
                        layer.Load(BnbTensors.Read(name, keys, e => Read(e.Name), plan.Scheme, layer.OutFeatures, layer.InFeatures, device));
                    }
                }
            }
            finally
            {
                foreach (var s in streams.Values) s.Dispose();
            }
        }

        /// <summary>A weight to quantise while loading must be a full-precision matrix of the layer's shape.</summary>
        static void CheckFullPrecision(SafetensorsEntry entry, QuantizedLinear layer, string file)
        {
            if (!is_floating_point(Safetensors.TypeOf(entry.DType)))
                throw new GraloraException("QuantizedTensorUnexpected", GraloraErrorKind.InvalidData,
                    $"Tensor '{entry.Name}' in '{file}' is stored as {entry.DType}, not as floating point: the checkpoint seems quantised, but its config.json has no quantization_config. {QuantizationOptions.NotImplemented}", entry.Name);
            if (entry.Shape.Length != 2 || entry.Shape[0] != layer.OutFeatures || entry.Shape[1] != layer.InFeatures)
                throw new GraloraException("TensorShapeMismatch", GraloraErrorKind.InvalidData,
                    $"Tensor '{entry.Name}' in '{file}' has shape [{string.Join(", ", entry.Shape)}] but the config needs [{layer.OutFeatures}, {layer.InFeatures}].", entry.Name);
        }
    }
}
