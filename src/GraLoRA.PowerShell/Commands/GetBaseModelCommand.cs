using System.Linq;
using System.Management.Automation;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Describes a loaded model: name, folder, architecture, parameters, dtype, device, tokenizer, adapters and classification head.</para>
    /// <para type="description">Outputs one BaseModelInfo per model, shown as a list: the model's name and folder, architecture, parameter count (adapters included), dtype and device, the tokenizer's vocabulary size, the names of its adapters and of the active ones, and the labels of its classification head (0 without one). The model itself is not changed.</para>
    /// </summary>
    /// <example><code>Import-BaseModel ./models/tiny | Get-BaseModel</code><para>Loads a model and shows what it is.</para></example>
    /// <example><code>$m = Import-BaseModel ./models/tiny | Add-GraLoRAAdapter -Rank 16 -InformationAction Ignore
    /// (Get-BaseModel -Model $m).ActiveAdapters</code><para>Lists the adapters that are active (here: default).</para></example>
    [Cmdlet(VerbsCommon.Get, "BaseModel")]
    [OutputType(typeof(BaseModelInfo))]
    public sealed class GetBaseModelCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() => WriteObject(BaseModelInfo.Of(Model)));
        #endregion
    }
}
