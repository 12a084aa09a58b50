using System.Management.Automation;
using GraLoRA.PowerShell.Completion;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Chooses which adapters of a model are active, or disables and re-enables all of them.</para>
    /// <para type="description">-Active makes exactly the named adapters active (their outputs add up; only they train). -Disable makes the model compute as its base while keeping the adapters (merged ones are unmerged); -Enable undoes it. Outputs nothing, as Set- cmdlets do, or the model with -PassThru.</para>
    /// </summary>
    /// <example><code>$model | Set-GraLoRAAdapter -Active math, chat</code><para>Makes exactly the adapters math and chat active; their outputs add up.</para></example>
    /// <example><code>$model | Set-GraLoRAAdapter -Disable -PassThru | Invoke-GraLoRAGeneration 'Hello'
    /// $model | Set-GraLoRAAdapter -Enable</code><para>Generates with the base model alone, then turns the adapters back on.</para></example>
    [Cmdlet(VerbsCommon.Set, "GraLoRAAdapter", DefaultParameterSetName = ActiveSet, SupportsShouldProcess = true)]
    [OutputType(typeof(BaseModel))]
    public sealed class SetGraLoRAAdapterCommand : GraloraCmdlet
    {
        const string ActiveSet = "Active";
        const string DisableSet = "Disable";
        const string EnableSet = "Enable";

        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">The adapters to make active (all others become inactive).</para></summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ActiveSet)]
        [ArgumentCompleter(typeof(AdapterNameCompleter))]
        public string[] Active { get; set; } = null!;

        /// <summary><para type="description">Compute as the base model; the adapters are kept.</para></summary>
        [Parameter(Mandatory = true, ParameterSetName = DisableSet)]
        public SwitchParameter Disable { get; set; }

        /// <summary><para type="description">Undo -Disable.</para></summary>
        [Parameter(Mandatory = true, ParameterSetName = EnableSet)]
        public SwitchParameter Enable { get; set; }

        /// <summary><para type="description">Output the model.</para></summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            string target = $"adapters of model '{Model.Name}'";
            switch (ParameterSetName)
            {
                case DisableSet:
                    if (Disable && ShouldProcess(target, "Disable")) Model.Adapters.Disable();
                    break;
                case EnableSet:
                    if (Enable && ShouldProcess(target, "Enable")) Model.Adapters.Enable();
                    break;
                default:
                    if (ShouldProcess(target, $"Make active: {string.Join(", ", Active)}")) Model.Adapters.SetActive(Active);
                    break;
            }
            if (PassThru) WriteObject(Model);
        });
        #endregion
    }
}
