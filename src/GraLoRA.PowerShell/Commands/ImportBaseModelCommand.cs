using System.Management.Automation;
using GraLoRA.PowerShell.Completion;
using System.Threading;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Loads a Hugging Face decoder (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 text, Phi-3) or encoder (BERT, RoBERTa) from a folder or from the Hugging Face Hub.</para>
    /// <para type="description">Reads config.json, model.safetensors (or shards with model.safetensors.index.json), generation_config.json and tokenizer.json/tokenizer_config.json. Weights stream in one tensor at a time, converted to -DType (default: the checkpoint's own) on -Device; with -Quantize nf4|int8 the decoder layers' linear weights are quantised as they stream (QLoRA-style), and a checkpoint saved quantised by bitsandbytes loads as stored. With -Name, the repository is downloaded into the standard Hugging Face cache (HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE are honoured) and loaded from there. -Task SequenceClassification loads transformers' classification model (BertForSequenceClassification, RobertaForSequenceClassification; a decoder gets a fresh "score" head): the checkpoint's head when it has one of the asked size, else a fresh one; -NumLabels and -Labels set its size and label names.</para>
    /// </summary>
    /// <example><code>$bert = Import-BaseModel ./models/bert-base-uncased -Task SequenceClassification -Labels negative,positive</code><para>Loads a BERT checkpoint as BertForSequenceClassification with a fresh two-label head named negative and positive, ready for Start-GraLoRATraining on text + label data.</para></example>
    /// <example><code>$model = Import-BaseModel ./models/Qwen2.5-0.5B -DType bfloat16</code><para>Loads a local Hugging Face folder, converting the weights to bfloat16.</para></example>
    /// <example><code>$model = Import-BaseModel ./models/Qwen2.5-0.5B -Quantize nf4 -DType bfloat16</code><para>Loads the decoder with its layers' linear weights in 4-bit NF4 (quantised one tensor at a time while reading, so the full-precision model is never in memory) computing in bfloat16: QLoRA-style training with GraLoRA adapters on top.</para></example>
    /// <example><code>$model = Import-BaseModel ./models/Qwen2.5-0.5B -Device auto</code><para>Downloads the repository into the Hugging Face cache (or uses the cached copy) and loads it on the GPU when CUDA is usable, else on the CPU.</para></example>
    [Cmdlet(VerbsData.Import, "BaseModel", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(BaseModel))]
    public sealed class ImportBaseModelCommand : GraloraCmdlet
    {
        const string PathSet = "Path";
        const string HubSet = "Hub";
        CancellationTokenSource? _cancel;

        #region Parameters
        /// <summary><para type="description">A local model folder.</para></summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("FullName", "PSPath")]
        public string Path { get; set; } = "";

        /// <summary><para type="description">A Hugging Face repository id, e.g. Qwen/Qwen2.5-0.5B.</para></summary>
        [Parameter(Mandatory = true, ParameterSetName = HubSet)]
        public string Name { get; set; } = "";

        /// <summary><para type="description">Branch, tag or commit of the repository (default main).</para></summary>
        [Parameter(ParameterSetName = HubSet)]
        public string? Revision { get; set; }

        /// <summary><para type="description">float32, bfloat16 or float16 (default: the checkpoint's own torch_dtype).</para></summary>
        [Parameter]
        [ValidateSet("float32", "bfloat16", "float16")]
        public string? DType { get; set; }

        /// <summary><para type="description">cpu (default), cuda, cuda:N or auto.</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(DeviceCompleter))]
        public string Device { get; set; } = "cpu";

        /// <summary><para type="description">Auto (default: what config.json names), Base (the bare model) or SequenceClassification (with a classification head).</para></summary>
        // A string, not the Core enum: a value-type field of a Core type would load Core before the module's load context is set up.
        [Parameter]
        [ValidateSet("Auto", "Base", "SequenceClassification")]
        public string Task { get; set; } = "Auto";

        /// <summary><para type="description">Number of labels of the classification head (default: the config's id2label, or 2).</para></summary>
        [Parameter, ValidateRange(2, int.MaxValue)]
        public int NumLabels { get; set; }

        /// <summary><para type="description">Label names in class-id order, e.g. ham,spam (replaces the config's id2label; implies -Task SequenceClassification for a bare checkpoint).</para></summary>
        [Parameter]
        public string[]? Labels { get; set; }

        /// <summary><para type="description">Quantise the decoder layers' linear weights while loading, one tensor at a time: nf4 (bitsandbytes' 4-bit NormalFloat, blocks of 64) or int8 (row-wise absmax). -DType is then the compute dtype; embeddings, norms and the output head stay in it. A checkpoint saved quantised by bitsandbytes (quantization_config in config.json) loads quantised without this parameter. See docs/quantization.md.</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(Completion.QuantizationSchemeCompleter))]
        public string? Quantize { get; set; }

        /// <summary><para type="description">With -Quantize nf4: also quantise the per-block absmax values to 8 bits in blocks of 256 (bitsandbytes' double quantisation, about 0.37 bit per weight less).</para></summary>
        [Parameter]
        public SwitchParameter DoubleQuant { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            var options = new BaseModelLoadOptions
            {
                DType = DType, Device = Device, Labels = Labels,
                NumLabels = MyInvocation.BoundParameters.ContainsKey(nameof(NumLabels)) ? NumLabels : null,
                Task = ParseTask(),
                Quantize = GraLoRA.Quantization.QuantizationOptions.From(Quantize, DoubleQuant),
            };
            if (ParameterSetName == HubSet)
            {
                _cancel = new CancellationTokenSource();
                try
                {
                    WriteObject(BaseModel.LoadFromHub(Name, Revision, options, message => WriteVerbose(message), _cancel.Token));
                }
                finally
                {
                    _cancel.Dispose();
                    _cancel = null;
                }
            }
            else
            {
                string folder = ResolvePath(Path);
                WriteVerbose($"Loading '{folder}'");
                WriteObject(BaseModel.Load(folder, options));
            }
        });

        /// <inheritdoc />
        protected override void StopProcessing() => _cancel?.Cancel();
        #endregion


        EncoderTask ParseTask()
        {
            var task = (EncoderTask)System.Enum.Parse(typeof(EncoderTask), Task, ignoreCase: true);
            bool labelsGiven = Labels is not null || MyInvocation.BoundParameters.ContainsKey(nameof(NumLabels));
            return task == EncoderTask.Auto && labelsGiven ? EncoderTask.SequenceClassification : task;
        }
    }
}
