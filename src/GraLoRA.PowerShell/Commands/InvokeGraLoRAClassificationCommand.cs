using System.Collections.Generic;
using System.Management.Automation;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Classifies texts (or sentence pairs) with a model's classification head and active adapters: the label and every label's probability per input.</para>
    /// <para type="description">Works with encoders loaded with -Task SequenceClassification (BERT, RoBERTa) and with any model trained on text + label data (its head travels with the adapter). Texts come from -Text or the pipeline, strings or objects with Text (and TextPair) properties such as Import-Csv rows; they are classified -BatchSize at a time, each cut to -MaxLength tokens, and one ClassificationPrediction per input comes out, in order.</para>
    /// </summary>
    /// <example><code>'Win a FREE prize now', 'Minutes of the meeting' | Invoke-GraLoRAClassification -Model $model</code><para>Classifies two texts; each result has Label, Score and Probabilities.</para></example>
    /// <example><code>Import-Csv ./pairs.csv | Invoke-GraLoRAClassification -Model $model | Where-Object Score -lt 0.6</code><para>Classifies sentence pairs from a CSV with text and textpair columns and keeps the uncertain predictions.</para></example>
    [Cmdlet(VerbsLifecycle.Invoke, "GraLoRAClassification")]
    [OutputType(typeof(ClassificationPrediction))]
    public sealed class InvokeGraLoRAClassificationCommand : GraloraCmdlet
    {
        readonly List<string> _texts = new();
        readonly List<string?> _pairs = new();

        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">The texts to classify.</para></summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [AllowEmptyString]
        public string[] Text { get; set; } = null!;

        /// <summary><para type="description">Second texts of sentence pairs, one per text (e.g. hypothesis after premise).</para></summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        [Alias("text_pair")]
        public string[]? TextPair { get; set; }

        /// <summary><para type="description">Inputs per forward pass (default 16).</para></summary>
        [Parameter, ValidateRange(1, 4096)]
        public int BatchSize { get; set; } = 16;

        /// <summary><para type="description">Longest input in tokens (default 512); longer ones are cut at the end.</para></summary>
        [Parameter, ValidateRange(2, 1_000_000)]
        public int MaxLength { get; set; } = 512;
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            if (TextPair is not null && TextPair.Length != Text.Length)
                throw new GraloraException("TextPairCountMismatch", GraloraErrorKind.InvalidArgument,
                    $"{Text.Length} text(s) but {TextPair.Length} -TextPair value(s): give one pair text per text.", TextPair.Length);
            for (int i = 0; i < Text.Length; i++)
            {
                _texts.Add(Text[i]);
                _pairs.Add(TextPair?[i]);
            }
            if (_texts.Count >= BatchSize) Flush();
        });

        /// <inheritdoc />
        protected override void EndProcessing() => Invoke(Flush);
        #endregion

        void Flush()
        {
            if (_texts.Count == 0) return;
            bool anyPair = _pairs.Exists(p => p is not null);
            foreach (var prediction in Model.Classify(_texts, anyPair ? _pairs : null, BatchSize, MaxLength)) WriteObject(prediction);
            _texts.Clear();
            _pairs.Clear();
        }
    }
}
