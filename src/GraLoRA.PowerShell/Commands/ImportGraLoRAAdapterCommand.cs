using System.Management.Automation;
using GraLoRA.Adapters;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Loads an adapter folder saved by PEFT (save_pretrained) or by Save-GraLoRAAdapter onto a model, as the active adapter.</para>
    /// <para type="description">Reads adapter_config.json (peft_type GRALORA or LORA) and adapter_model.safetensors; every tensor must match the model's modules in name and shape, else nothing is added and the error names the key. Outputs the model.</para>
    /// </summary>
    /// <example><code>$model | Import-GraLoRAAdapter ./adapters/math -Name math</code><para>Loads an adapter saved by PEFT or Save-GraLoRAAdapter onto the model as the active adapter math.</para></example>
    [Cmdlet(VerbsData.Import, "GraLoRAAdapter", SupportsShouldProcess = true)]
    [OutputType(typeof(BaseModel))]
    public sealed class ImportGraLoRAAdapterCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">The adapter folder.</para></summary>
        [Parameter(Mandatory = true, Position = 0)]
        public string Path { get; set; } = "";

        /// <summary><para type="description">Name to give the adapter on this model (default 'default').</para></summary>
        [Parameter]
        public string Name { get; set; } = AdapterConfig.DefaultName;
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            string folder = ResolvePath(Path);
            if (!ShouldProcess($"model '{Model.Name}'", $"Load adapter '{Name}' from '{folder}'"))
            {
                WriteObject(Model); // -WhatIf: the model passes on unchanged
                return;
            }
            var config = Model.LoadAdapter(folder, Name);
            WriteVerbose($"Loaded {config.Method} adapter '{Name}' from '{folder}': r {config.EffectiveRank}"
                         + (config.Method == AdapterMethod.GraLoRA ? $", k {config.EffectiveK}" : "")
                         + $", {Model.Adapters.Targets(Name).Count} module(s)");
            WriteObject(Model);
        });
        #endregion
    }
}
