using System.Management.Automation;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Unmerges every merged adapter: subtracts ΔW from the base weights again (undoes Merge-GraLoRAAdapter without -Unload).</para>
    /// <para type="description">Outputs the model.</para>
    /// </summary>
    /// <example><code>$model | Merge-GraLoRAAdapter | Invoke-GraLoRAGeneration 'Hello'
    /// $model | Split-GraLoRAAdapter</code><para>Generates with merged weights (faster), then separates the adapters again so they can be trained or saved.</para></example>
    [Cmdlet(VerbsCommon.Split, "GraLoRAAdapter", SupportsShouldProcess = true)]
    [OutputType(typeof(BaseModel))]
    public sealed class SplitGraLoRAAdapterCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            if (ShouldProcess($"model '{Model.Name}'", "Subtract the merged adapters from the base weights")) Model.Adapters.Unmerge();
            WriteObject(Model);
        });
        #endregion
    }
}
