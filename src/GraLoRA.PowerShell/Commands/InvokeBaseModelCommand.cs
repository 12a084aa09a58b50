using System.IO;
using System.Management.Automation;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Runs one forward pass of a model (with its active adapters) and returns the logits, and optionally the hidden states.</para>
    /// <para type="description">Decoders: returns a ForwardOutput (Logits as [batch][position][vocab] arrays), or with -OutFile writes a safetensors file with 'logits' and 'hidden_states.&lt;i&gt;' for comparison with other implementations. Encoders (BERT, RoBERTa): returns an EncoderForwardOutput (LastHiddenState, PoolerOutput where the model has a pooler, Logits [batch][label] for classification models, HiddenStates), or with -OutFile writes 'last_hidden_state', 'pooler_output', 'logits' and 'hidden_states.&lt;i&gt;'; -TokenTypeIds gives BERT's segment ids.</para>
    /// </summary>
    /// <example><code>$bert = Import-BaseModel ./models/bert-tiny -Task SequenceClassification -NumLabels 3
    /// $out = Invoke-BaseModel -Model $bert -InputIds (, [int[]](2, 40, 41, 3, 50, 3)) -TokenTypeIds (, [int[]](0, 0, 0, 0, 1, 1))
    /// $out.Logits[0]</code><para>Runs a sentence pair through a BERT classifier and reads the three class logits.</para></example>
    /// <example><code>$out = Invoke-BaseModel -Model $model -InputIds (, [int[]](1, 2, 3))
    /// $out.Logits[0][-1].Count
    /// $out.Dispose()</code><para>Runs one sequence of three token ids through the model and reads the vocabulary-sized logits of the last position.</para></example>
    [Cmdlet(VerbsLifecycle.Invoke, "BaseModel", DefaultParameterSetName = ObjectSet)]
    [OutputType(typeof(ForwardOutput), typeof(EncoderForwardOutput), ParameterSetName = new[] { ObjectSet })]
    [OutputType(typeof(FileInfo), ParameterSetName = new[] { FileSet })]
    public sealed class InvokeBaseModelCommand : GraloraCmdlet
    {
        const string ObjectSet = "Object";
        const string FileSet = "File";

        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Token ids, one array per sequence; all rows the same length.</para></summary>
        [Parameter(Mandatory = true, Position = 0)]
        public int[][] InputIds { get; set; } = null!;

        /// <summary><para type="description">1 for tokens, 0 for padding; same shape as InputIds.</para></summary>
        [Parameter]
        public int[][]? AttentionMask { get; set; }

        /// <summary><para type="description">Position ids; same shape as InputIds (default 0..L-1).</para></summary>
        [Parameter]
        public int[][]? PositionIds { get; set; }

        /// <summary><para type="description">Token type (segment) ids of encoders such as BERT; same shape as InputIds (default 0).</para></summary>
        [Parameter]
        public int[][]? TokenTypeIds { get; set; }

        /// <summary><para type="description">Also return the hidden states (embeddings, each layer, final norm).</para></summary>
        [Parameter]
        public SwitchParameter HiddenStates { get; set; }

        /// <summary><para type="description">Write the outputs to this safetensors file instead of returning them.</para></summary>
        [Parameter(Mandatory = true, ParameterSetName = FileSet)]
        public string OutFile { get; set; } = "";

        /// <summary><para type="description">Replace an existing non-empty file at -OutFile (without -Force that is an OutputExists error).</para></summary>
        [Parameter(ParameterSetName = FileSet)]
        public SwitchParameter Force { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            if (Model.IsEncoder)
            {
                var encoded = Model.ForwardEncoder(InputIds, AttentionMask, TokenTypeIds, PositionIds, HiddenStates);
                if (ParameterSetName == FileSet)
                    using (encoded) WriteObject(Save(encoded.Save));
                else WriteObject(encoded);
                return;
            }
            if (TokenTypeIds is not null)
                throw new GraloraException("NotAnEncoder", GraloraErrorKind.InvalidArgument,
                    $"Model '{Model.Name}' is a {Model.Architecture} decoder, which has no token types: drop -TokenTypeIds.", Model.Name);
            var output = Model.Forward(InputIds, AttentionMask, PositionIds, HiddenStates);
            if (ParameterSetName == FileSet)
                using (output) WriteObject(Save(output.Save));
            else WriteObject(output);
        });
        #endregion

        FileInfo Save(System.Action<string, bool> save)
        {
            string path = ResolvePath(OutFile);
            save(path, Force);
            return new FileInfo(path);
        }
    }
}
