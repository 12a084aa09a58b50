using System.IO;
using System.Linq;
using System.Management.Automation;
using GraLoRA.PowerShell.Completion;
using GraLoRA.Adapters;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Saves an adapter in Hugging Face PEFT's format (adapter_config.json + adapter_model.safetensors), loadable by PeftModel.from_pretrained.</para>
    /// <para type="description">Writes PEFT's config fields (peft_type GRALORA or LORA) and PEFT's tensor keys (base_model.model.&lt;module&gt;.gralora_A, …, adapter name removed). The files are written beside the folder and swapped in at the end, so a failed save leaves no half-written folder. An existing non-empty folder is replaced only with -Force (else OutputExists). Outputs the folder written, or with -PassThru the model instead, so the pipeline can go on (e.g. to Merge-GraLoRAAdapter).</para>
    /// </summary>
    /// <example><code>$model | Start-GraLoRATraining ./d.jsonl -PassThru | Save-GraLoRAAdapter ./adapters/d -PassThru | Merge-GraLoRAAdapter | Export-BaseModel ./merged</code><para>Keeps the trained adapter on its own and exports the merged model, in one pipeline.</para></example>
    /// <example><code>$model | Save-GraLoRAAdapter ./adapters/math -Force</code><para>Saves the active adapter in PEFT format (adapter_config.json, adapter_model.safetensors), replacing an earlier save; Python loads it with PeftModel.from_pretrained.</para></example>
    [Cmdlet(VerbsData.Save, "GraLoRAAdapter", SupportsShouldProcess = true)]
    [OutputType(typeof(DirectoryInfo))]
    [OutputType(typeof(BaseModel))]
    public sealed class SaveGraLoRAAdapterCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Folder to write the adapter into.</para></summary>
        [Parameter(Mandatory = true, Position = 0)]
        public string Path { get; set; } = "";

        /// <summary><para type="description">The adapter to save (default: the current adapter: the only active one, else the only one; several → AmbiguousAdapter, none → NoActiveAdapter).</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(AdapterNameCompleter))]
        public string? Name { get; set; }

        /// <summary><para type="description">Replace an existing non-empty folder at -Path (without -Force that is an OutputExists error).</para></summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary><para type="description">Output the model instead of the folder.</para></summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            string name = Model.Adapters.Current(Name);
            string folder = ResolvePath(Path);
            DirectoryInfo? written = ShouldProcess(folder, $"Save adapter '{name}'") ? new DirectoryInfo(Model.SaveAdapter(name, folder, Force)) : null;
            if (PassThru) WriteObject(Model);
            else if (written is not null) WriteObject(written);
        });
        #endregion
    }
}
