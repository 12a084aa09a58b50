using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.IO;
using static TorchSharp.torch;

namespace GraLoRA.Quantization
{
    /// <summary>
    /// Turns a checkpoint's weights into what transformers saves for a bitsandbytes-quantised model: each projection weight
    /// quantised (one at a time, while writing) into bitsandbytes' keys, everything else as it is.
    /// </summary>
    internal static class QuantizedExport
    {
        /// <summary>
        /// <paramref name="weights"/> with the tensors named in <paramref name="quantize"/> ("P.weight") replaced by their
        /// quantised form; <paramref name="report"/> receives each one's rounding (relative to the weight) as it is written.
        /// </summary>
        public static IReadOnlyList<TensorSource> Apply(IReadOnlyList<TensorSource> weights, ISet<string> quantize, QuantizationOptions options,
                                                        List<LayerRequantization> report)
        {
            var result = new List<TensorSource>();
            foreach (var source in weights)
            {
                if (!quantize.Contains(source.Name)) { result.Add(source); continue; }
                string module = source.Name[..^".weight".Length];
                QuantizedWeight? current = null;
                QuantizedWeight Current()
                {
                    if (current is not null) return current;
                    var value = source.Get();
                    try
                    {
                        current = QuantizedWeight.Quantize(value, options);
                        foreach (var t in current.Storage) t.DetachFromDisposeScope();
                        var r = Requantization.Measure(current, value, null);
                        report.Add(new LayerRequantization(module, r.MaxAbs, r.RelativeError));
                        return current;
                    }
                    finally
                    {
                        if (source.Owned) value.Dispose();
                    }
                }
                // The pieces are written in key order; the last one frees the quantised weight once it has been read.
                var pieces = BnbTensors.Layout(module, source.Shape, options).OrderBy(p => p.Key, System.StringComparer.Ordinal).ToList();
                foreach (var (key, shape, dtype, isNew, pick) in pieces)
                {
                    bool last = key == pieces[^1].Key;
                    result.Add(new TensorSource(key, shape, dtype, () =>
                    {
                        var tensor = pick(Current());
                        if (!last) return tensor;
                        var copy = isNew ? tensor : tensor.clone();
                        current!.Dispose();
                        current = null;
                        return copy;
                    }, Owned: isNew || last, KeepDType: true));
                }
            }
            return result;
        }
    }
}
