using System.IO;
using System.Management.Automation;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Writes a model as a Hugging Face checkpoint folder, with its active adapters merged in.</para>
    /// <para type="description">Writes config.json (torch_dtype updated), model.safetensors (or shards above -MaxShardSize with model.safetensors.index.json) with transformers' key names and no adapter tensors, and copies generation_config.json and the tokenizer files from the model's folder. Active, unmerged adapters are folded in one tensor at a time (W + ΔW), so the model itself is not changed. The folder must not exist or be empty, or -Force must be given (else OutputExists); it appears only when complete, replacing an existing one in one swap. Outputs the folder written, or with -PassThru the model instead, so the pipeline can go on (e.g. to Invoke-GraLoRAGeneration).</para>
    /// </summary>
    /// <example><code>$model | Export-BaseModel ./merged -DType bfloat16</code><para>Writes the model, with its active adapters merged in, as a bfloat16 Hugging Face checkpoint that transformers and this module can load.</para></example>
    /// <example><code>$model | Export-BaseModel ./merged -Force</code><para>Writes the model again over an earlier export: the old folder is replaced only once the new one is complete.</para></example>
    [Cmdlet(VerbsData.Export, "BaseModel", SupportsShouldProcess = true)]
    [OutputType(typeof(DirectoryInfo))]
    [OutputType(typeof(BaseModel))]
    public sealed class ExportBaseModelCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Folder to create (must not exist or be empty, unless -Force).</para></summary>
        [Parameter(Mandatory = true, Position = 0)]
        public string Path { get; set; } = "";

        /// <summary><para type="description">Replace an existing non-empty folder at -Path (without -Force that is an OutputExists error).</para></summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary><para type="description">dtype to store the weights in (default: the model's own).</para></summary>
        [Parameter]
        [ValidateSet("float32", "bfloat16", "float16")]
        public string? DType { get; set; }

        /// <summary><para type="description">Split the weights into shards of at most this many bytes (default 5 GB).</para></summary>
        [Parameter, ValidateRange(1, long.MaxValue)]
        public long MaxShardSize { get; set; } = CheckpointWriter.DefaultMaxShardBytes;

        /// <summary><para type="description">Output the model instead of the folder.</para></summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            string folder = ResolvePath(Path);
            DirectoryInfo? written = ShouldProcess(folder, $"Export model '{Model.Name}'") ? new DirectoryInfo(Model.Export(folder, DType, MaxShardSize, Force)) : null;
            if (PassThru) WriteObject(Model);
            else if (written is not null) WriteObject(written);
        });
        #endregion
    }
}
