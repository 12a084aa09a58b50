using System.IO;
using System.Management.Automation;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Writes a model as a Hugging Face checkpoint folder, or as one GGUF file for llama.cpp and Ollama, with its active adapters merged in.</para>
    /// <para type="description">-Format safetensors (default) writes config.json (torch_dtype updated), model.safetensors (or shards above -MaxShardSize with model.safetensors.index.json) with transformers' key names and no adapter tensors, and copies generation_config.json and the tokenizer files from the model's folder. Active, unmerged adapters are folded in one tensor at a time (W + ΔW), so the model itself is not changed. The folder must not exist or be empty, or -Force must be given (else OutputExists); it appears only when complete, replacing an existing one in one swap. Outputs the folder written, or with -PassThru the model instead, so the pipeline can go on (e.g. to Invoke-GraLoRAGeneration).</para>
    /// <para type="description">-Format gguf writes one GGUF v3 file (Path is the file, which must not exist or be empty unless -Force) that llama.cpp, Ollama and LM Studio load: llama.cpp's tensor names and hyperparameter keys for llama, mistral, qwen2 and qwen3, the tokenizer (byte-level BPE: vocabulary, merges, token types, special ids, BOS/EOS insertion, chat template), in -DType float32, float16, bfloat16 or q8_0 (norms and biases stay float32). Architectures, tokenizers and settings llama.cpp would run differently are refused by name (GgufUnsupportedArchitecture, GgufUnsupportedTokenizer, GgufUnsupportedSetting). To serve an adapter on its own with llama.cpp --lora or Ollama's ADAPTER, export the base model without adapters and write the adapter with ConvertTo-LoRAAdapter -Format gguf.</para>
    /// </summary>
    /// <example><code>$model | Export-BaseModel ./merged-nf4 -Quantize nf4 -DType bfloat16</code><para>Writes the model with its active adapters merged in and its decoder layers quantised to NF4, as transformers saves a "-bnb-4bit" model (Import-BaseModel, and transformers with bitsandbytes, load it); a warning reports the rounding.</para></example>
    /// <example><code>$model | Export-BaseModel ./merged -DType bfloat16</code><para>Writes the model, with its active adapters merged in, as a bfloat16 Hugging Face checkpoint that transformers and this module can load.</para></example>
    /// <example><code>$model | Export-BaseModel ./merged -Force</code><para>Writes the model again over an earlier export: the old folder is replaced only once the new one is complete.</para></example>
    /// <example><code>$model | Export-BaseModel ./tiny-q8.gguf -Format gguf -DType q8_0</code><para>Writes the model, its active adapters merged in, as a q8_0 GGUF file: `llama-cli -m ./tiny-q8.gguf` or an Ollama Modelfile's FROM line takes it.</para></example>
    [Cmdlet(VerbsData.Export, "BaseModel", SupportsShouldProcess = true)]
    [OutputType(typeof(DirectoryInfo))]
    [OutputType(typeof(FileInfo))]
    [OutputType(typeof(BaseModel))]
    public sealed class ExportBaseModelCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Folder to create (must not exist or be empty, unless -Force); with -Format gguf, the .gguf file to create.</para></summary>
        [Parameter(Mandatory = true, Position = 0)]
        public string Path { get; set; } = "";

        /// <summary><para type="description">Replace an existing non-empty folder (or, with -Format gguf, file) at -Path (without -Force that is an OutputExists error).</para></summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary><para type="description">safetensors (default): a Hugging Face checkpoint folder. gguf: one GGUF file for llama.cpp, Ollama and LM Studio.</para></summary>
        [Parameter]
        [ValidateSet("safetensors", "gguf")]
        public string Format { get; set; } = "safetensors";

        /// <summary><para type="description">dtype to store the weights in (default: the model's own). q8_0 (8-bit blocks) only with -Format gguf.</para></summary>
        [Parameter]
        [ValidateSet("float32", "bfloat16", "float16", "q8_0")]
        public string? DType { get; set; }

        /// <summary><para type="description">Split the weights into shards of at most this many bytes (default 5 GB); safetensors only.</para></summary>
        [Parameter, ValidateRange(1, long.MaxValue)]
        public long MaxShardSize { get; set; } = CheckpointWriter.DefaultMaxShardBytes;

        /// <summary><para type="description">Write the decoder layers' linear weights (active adapters merged in) quantised, as transformers saves a bitsandbytes model: nf4 (4-bit NormalFloat, blocks of 64) or int8 (row-wise absmax); config.json gets the quantization_config, the other tensors are stored as -DType. A warning reports the rounding. Without it a quantised model exports dequantised, in -DType (default: its compute dtype), with a warning. safetensors only.</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(Completion.QuantizationSchemeCompleter))]
        public string? Quantize { get; set; }

        /// <summary><para type="description">With -Quantize nf4: also quantise the per-block absmax values (bitsandbytes' double quantisation).</para></summary>
        [Parameter]
        public SwitchParameter DoubleQuant { get; set; }

        /// <summary><para type="description">Output the model instead of the folder.</para></summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            string target = ResolvePath(Path);
            bool gguf = Format == "gguf";
            if (gguf && MyInvocation.BoundParameters.ContainsKey(nameof(MaxShardSize)))
                throw new GraloraException("NotForGguf", GraloraErrorKind.InvalidArgument, "-MaxShardSize splits safetensors checkpoints; a GGUF export is one file: drop -MaxShardSize.", MaxShardSize);
            if (!gguf && DType == "q8_0")
                throw new GraloraException("NotForSafetensors", GraloraErrorKind.InvalidArgument, "-DType q8_0 is a GGUF storage type: add -Format gguf, or use float32, bfloat16 or float16 for a checkpoint folder.", DType);
            if (gguf && Quantize is not null)
                throw new GraloraException("NotForGguf", GraloraErrorKind.InvalidArgument, "-Quantize writes a bitsandbytes checkpoint folder; GGUF has its own storage types (-DType q8_0): drop -Quantize, or drop -Format gguf.", Quantize);
            var quantize = GraLoRA.Quantization.QuantizationOptions.From(Quantize, DoubleQuant);
            FileSystemInfo? written = null;
            if (ShouldProcess(target, $"Export model '{Model.Name}' as {Format}"))
            {
                if (quantize is null && GraLoRA.Quantization.QuantizationNotes.DequantizedExportWarning(Model) is { } note) WriteWarning(note);
                if (gguf) written = new FileInfo(Model.ExportGguf(target, DType, Force));
                else if (quantize is null) written = new DirectoryInfo(Model.Export(target, DType, MaxShardSize, Force));
                else
                {
                    var rounding = Model.ExportQuantized(target, quantize, DType, MaxShardSize, Force);
                    if (rounding.Count > 0) WriteWarning(GraLoRA.Quantization.QuantizationNotes.ExportWarning(rounding, quantize.Scheme));
                    written = new DirectoryInfo(target);
                }
            }
            if (PassThru) WriteObject(Model);
            else if (written is not null) WriteObject(written);
        });
        #endregion

    }
}
