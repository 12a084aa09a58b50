using System.Linq;
using System.Management.Automation;
using GraLoRA.PowerShell.Completion;
using GraLoRA.Adapters;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Lists a model's adapters: method, rank, k, alpha, targets, parameter count, and whether each is active and merged.</para>
    /// <para type="description">Outputs one AdapterInfo per adapter, in the order they were added, or only the named ones; an unknown name is an error (AdapterNotFound).</para>
    /// </summary>
    /// <example><code>$model | Get-GraLoRAAdapter</code><para>Lists every adapter of the model with its method, rank, k, alpha, targets and parameter count.</para></example>
    /// <example><code>Get-GraLoRAAdapter -Model $model -Name default | Select-Object -ExpandProperty Targets</code><para>Shows the modules the adapter named default was injected into.</para></example>
    [Cmdlet(VerbsCommon.Get, "GraLoRAAdapter")]
    [OutputType(typeof(AdapterInfo))]
    public sealed class GetGraLoRAAdapterCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Only these adapters (default: all).</para></summary>
        [Parameter(Position = 0)]
        [ArgumentCompleter(typeof(AdapterNameCompleter))]
        public string[]? Name { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            var all = Model.Adapters.List();
            if (Name is null)
            {
                foreach (var info in all) WriteObject(info);
                return;
            }
            foreach (var name in Name)
            {
                Model.Adapters.Config(name); // AdapterNotFound, naming the adapters there are
                WriteObject(all.First(a => a.Name == name));
            }
        });
        #endregion
    }
}
