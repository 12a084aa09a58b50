using System.Management.Automation;
using GraLoRA.PowerShell.Completion;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Adds adapters' ΔW into the base weights (W += ΔW), optionally unloading the adapters (PEFT's merge_and_unload).</para>
    /// <para type="description">Merges the named adapters (default: the active ones) so the model computes the same without the adapter branch. On a quantised base (Import-BaseModel -Quantize, or a bitsandbytes checkpoint) each weight is dequantised, ΔW added and the sum re-quantised, as PEFT merges into bitsandbytes layers; a warning reports how large that rounding is next to the update. -SafeMerge checks the merged weights for non-finite values first. Without -Unload the adapters stay and Split-GraLoRAAdapter undoes the merge; with -Unload the plain layers are put back and every adapter is forgotten. Each method merges as its reference does: LoRA, GraLoRA and MoRA add ΔW; DoRA rescales W + ΔW row by row with its magnitude (PEFT's rule; the split undoes it within rounding); full fine-tuning puts its trained weights in place. The RaSA authors' code cannot merge: here a RaSA adapter merges by adding the ΔW its forward applies, so the merged model computes what the adapter did. Outputs the model.</para>
    /// </summary>
    /// <example><code>$model | Merge-GraLoRAAdapter -Unload | Export-BaseModel ./merged</code><para>Folds the active adapters into the base weights, drops the adapter layers, and writes the merged checkpoint.</para></example>
    /// <example><code>$model | Merge-GraLoRAAdapter -SafeMerge</code><para>Merges the active adapters, first checking the merged weights are finite; Split-GraLoRAAdapter undoes it.</para></example>
    [Cmdlet(VerbsData.Merge, "GraLoRAAdapter", SupportsShouldProcess = true)]
    [OutputType(typeof(BaseModel))]
    public sealed class MergeGraLoRAAdapterCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">The adapters to merge (default: the active ones).</para></summary>
        [Parameter(Position = 0)]
        [ArgumentCompleter(typeof(AdapterNameCompleter))]
        public string[]? Name { get; set; }

        /// <summary><para type="description">Check the merged weights for NaN or infinity before writing them.</para></summary>
        [Parameter]
        public SwitchParameter SafeMerge { get; set; }

        /// <summary><para type="description">Then remove the adapter layers and forget every adapter (PEFT's merge_and_unload).</para></summary>
        [Parameter]
        public SwitchParameter Unload { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            string which = Name is null ? "the active adapters" : $"adapter(s) {string.Join(", ", Name)}";
            if (ShouldProcess($"model '{Model.Name}'", Unload ? $"Merge {which} into the base weights and unload all adapters" : $"Merge {which} into the base weights"))
            {
                var rounding = Unload ? Model.Adapters.Unload(merge: true, Name, SafeMerge) : Model.Adapters.Merge(Name, SafeMerge);
                if (rounding.Count > 0) WriteWarning(GraLoRA.Quantization.QuantizationNotes.MergeWarning(rounding));
            }
            WriteObject(Model);
        });
        #endregion
    }
}
