using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Models;
using static System.FormattableString;

namespace GraLoRA.Quantization
{
    /// <summary>The warnings that go with merging into, and exporting, quantised weights (one wording for cmdlets and scripts).</summary>
    public static class QuantizationNotes
    {
        /// <summary>After a merge into a quantised base: how large the re-quantisation rounding is next to the update.</summary>
        public static string MergeWarning(IReadOnlyList<LayerRequantization> rounding)
        {
            var worst = rounding.OrderByDescending(r => r.RelativeError).First();
            return Invariant($"The base is quantised: {rounding.Count} merged layer(s) were re-quantised. The rounding is on average {rounding.Average(r => r.RelativeError):P0} of the update ΔW (worst: {worst.Module}, {worst.RelativeError:P0}, largest error {worst.MaxAbsError:G3}), so the merged model differs from base + adapter. To keep the adapter exact, keep it separate (Save-GraLoRAAdapter), or export a bfloat16/float16 checkpoint with the adapter folded in (Export-BaseModel -DType bfloat16, without merging first).");
        }

        /// <summary>After a quantised export: the rounding relative to each weight.</summary>
        public static string ExportWarning(IReadOnlyList<LayerRequantization> rounding, QuantizationScheme scheme) =>
            Invariant($"{rounding.Count} weight(s) written as {QuantizationOptions.Name(scheme)}: the rounding is on average {rounding.Average(r => r.RelativeError):P1} of each weight's norm (largest single error {rounding.Max(r => r.MaxAbsError):G3}). Adapters merged into a quantised checkpoint lose the part of their update smaller than the quantisation step; keep the adapter separate (Save-GraLoRAAdapter) to keep it exact.");

        /// <summary>Before a full-precision export of a model whose base is quantised (null when it is not).</summary>
        public static string? DequantizedExportWarning(BaseModel model) => model.Quantization is not { } held ? null
            : $"Model '{model.Name}' holds its base quantised ({QuantizationOptions.Name(held)}): the checkpoint gets the dequantised weights (with the active adapters folded in), which carry the base's quantisation error. For a full-precision result, load the original checkpoint without -Quantize, import the adapter (Import-GraLoRAAdapter) and export that; to keep it quantised, add -Quantize.";
    }
}
