using System.Management.Automation;
using GraLoRA.PowerShell.Completion;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Deletes adapters from a model; layers left without adapters become plain linear layers again.</para>
    /// <para type="description">Every name is checked before anything is removed (AdapterNotFound names the adapters there are). A merged adapter must be unmerged first (Split-GraLoRAAdapter). Outputs nothing, or the model with -PassThru.</para>
    /// </summary>
    /// <example><code>$model | Remove-GraLoRAAdapter baseline</code><para>Removes the adapter named baseline and its weights from the model.</para></example>
    [Cmdlet(VerbsCommon.Remove, "GraLoRAAdapter", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(BaseModel))]
    public sealed class RemoveGraLoRAAdapterCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">The adapters to remove.</para></summary>
        [Parameter(Mandatory = true, Position = 0)]
        [ArgumentCompleter(typeof(AdapterNameCompleter))]
        public string[] Name { get; set; } = null!;

        /// <summary><para type="description">Output the model.</para></summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            foreach (var name in Name) Model.Adapters.Config(name);
            foreach (var name in Name)
                if (ShouldProcess($"adapter '{name}' of model '{Model.Name}'", "Remove")) Model.Adapters.Remove(name);
            if (PassThru) WriteObject(Model);
        });
        #endregion
    }
}
