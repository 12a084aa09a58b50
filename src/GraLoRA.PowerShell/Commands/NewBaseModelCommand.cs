using System.IO;
using System.Management.Automation;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Creates a tiny random decoder (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 text or Phi-3) or encoder (BERT, RoBERTa) and saves it as a real Hugging Face folder with its tokenizer.</para>
    /// <para type="description">For trying the pipeline without downloads and for tests: the folder loads exactly like a downloaded checkpoint. Decoders get a byte-level tokenizer and a chat template; encoders a WordPiece tokenizer (printable ASCII characters plus the -Words given; -KeyValueHeads, -TieWordEmbeddings, -DType and -MaxShardSize do not apply) and, with -Labels, transformers' classification head (…ForSequenceClassification). Emits the folder, which pipes into Import-BaseModel.</para>
    /// </summary>
    /// <example><code>New-BaseModel ./models/tiny-bert -Architecture bert -Labels ham,spam -Words free,money,meeting</code><para>Writes a tiny random BertForSequenceClassification with a two-label head and a WordPiece vocabulary that knows three whole words.</para></example>
    /// <example><code>New-BaseModel ./models/tiny -Architecture qwen2 -Seed 1</code><para>Writes a tiny random Qwen2 checkpoint (config, safetensors weights and a byte-level tokenizer) for tests and experiments, and outputs its folder.</para></example>
    /// <example><code>New-BaseModel ./models/tiny-phi3 -Architecture phi3 | Import-BaseModel</code><para>A tiny Phi-3 (fused qkv_proj and gate_up_proj): adapters added without -TargetModule go on qkv_proj, as PEFT's default for phi3.</para></example>
    /// <example><code>New-BaseModel ./models/tiny-llama | Import-BaseModel</code><para>Creates a tiny Llama and loads it.</para></example>
    [Cmdlet(VerbsCommon.New, "BaseModel", SupportsShouldProcess = true)]
    [OutputType(typeof(DirectoryInfo))]
    public sealed class NewBaseModelCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">Folder to create (must not exist or be empty, unless -Force).</para></summary>
        [Parameter(Mandatory = true, Position = 0)]
        public string Path { get; set; } = "";

        /// <summary><para type="description">Replace an existing non-empty folder at -Path (without -Force that is an OutputExists error).</para></summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary><para type="description">model_type of the new model.</para></summary>
        [Parameter]
        [ValidateSet("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3", "bert", "roberta")]
        public string Architecture { get; set; } = "llama";

        /// <summary><para type="description">hidden_size (default 64).</para></summary>
        [Parameter, ValidateRange(2, 65536)]
        public int HiddenSize { get; set; } = 64;

        /// <summary><para type="description">intermediate_size (default 128).</para></summary>
        [Parameter, ValidateRange(1, 262144)]
        public int IntermediateSize { get; set; } = 128;

        /// <summary><para type="description">num_hidden_layers (default 2).</para></summary>
        [Parameter, ValidateRange(1, 1024)]
        public int Layers { get; set; } = 2;

        /// <summary><para type="description">num_attention_heads (default 4).</para></summary>
        [Parameter, ValidateRange(1, 1024)]
        public int Heads { get; set; } = 4;

        /// <summary><para type="description">num_key_value_heads (default 2: grouped-query attention).</para></summary>
        [Parameter, ValidateRange(1, 1024)]
        public int KeyValueHeads { get; set; } = 2;

        /// <summary><para type="description">Tie the output head to the embeddings.</para></summary>
        [Parameter]
        public SwitchParameter TieWordEmbeddings { get; set; }

        /// <summary><para type="description">dtype the weights are stored in.</para></summary>
        [Parameter]
        [ValidateSet("float32", "bfloat16", "float16")]
        public string DType { get; set; } = "float32";

        /// <summary><para type="description">Seed of the random weights (same seed, same model).</para></summary>
        [Parameter]
        public long Seed { get; set; }

        /// <summary><para type="description">Split the weights into shards of at most this many bytes (default: one file).</para></summary>
        [Parameter, ValidateRange(1, long.MaxValue)]
        public long MaxShardSize { get; set; } = CheckpointWriter.DefaultMaxShardBytes;

        /// <summary><para type="description">Encoders: label names of a classification head (the model is then …ForSequenceClassification).</para></summary>
        [Parameter]
        public string[]? Labels { get; set; }

        /// <summary><para type="description">Encoders: whole words for the WordPiece vocabulary (e.g. a corpus's frequent words).</para></summary>
        [Parameter]
        public string[]? Words { get; set; }

        /// <summary><para type="description">Encoders: longest input in tokens (default 128).</para></summary>
        [Parameter, ValidateRange(2, 65536)]
        public int MaxLength { get; set; } = 128;
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void EndProcessing() => Invoke(() =>
        {
            string target = ResolvePath(Path);
            if (!ShouldProcess(target, $"Create a random {Architecture} model")) return;
            if (Architecture is "bert" or "roberta")
            {
                WriteObject(new DirectoryInfo(TinyEncoderFactory.Save(target, new TinyEncoderOptions
                {
                    Architecture = Architecture, HiddenSize = HiddenSize, IntermediateSize = IntermediateSize, Layers = Layers, Heads = Heads,
                    Seed = Seed, Labels = Labels, Words = Words ?? System.Array.Empty<string>(), MaxLength = MaxLength,
                }, Force)));
                return;
            }
            if (Labels is not null || Words is not null)
                throw new GraloraException("EncoderOnlyParameter", GraloraErrorKind.InvalidArgument,
                    $"-Labels and -Words apply to encoders (bert, roberta), not to {Architecture}: drop them, or train a decoder on text + label data to give it a head.", Architecture);
            var options = new TinyModelOptions
            {
                Architecture = Architecture, HiddenSize = HiddenSize, IntermediateSize = IntermediateSize, Layers = Layers,
                Heads = Heads, KeyValueHeads = KeyValueHeads, TieWordEmbeddings = TieWordEmbeddings, DType = DType, Seed = Seed,
                MaxShardBytes = MaxShardSize,
            };
            WriteObject(new DirectoryInfo(TinyModelFactory.SaveWithTokenizer(target, options, Force)));
        });
        #endregion
    }
}
