using System;
using System.Linq;
using System.Management.Automation;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Measures a model (with its active adapters) on a dataset: loss and perplexity, and with -ExactMatch the share of greedy answers equal to the references.</para>
    /// <para type="description">Prepares the data as Start-GraLoRATraining does (same format detection, label masks and -MaxLength; only responses count unless the format is Text), then computes the mean next-token cross-entropy over every labelled token in file order, and perplexity = exp(loss). With -ExactMatch it also generates a greedy answer for each record's prompt (prompt/completion, alpaca or chat data: the last assistant turn is the answer) and compares it with the reference, whitespace at the ends ignored. -Limit evaluates only the first N records (examples). Outputs one EvaluationRun.</para>
    /// </summary>
    /// <example><code>$model | Invoke-GraLoRAEvaluation ./data/test.jsonl</code><para>Reports loss and perplexity of the model with its active adapters on the test data.</para></example>
    /// <example><code>$model | Invoke-GraLoRAEvaluation ./data/test.jsonl -ExactMatch -Limit 50</code><para>Evaluates only the first 50 records, also generating a greedy answer for each and reporting the share equal to the references.</para></example>
    [Cmdlet(VerbsLifecycle.Invoke, "GraLoRAEvaluation", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(EvaluationRun))]
    public sealed class InvokeGraLoRAEvaluationCommand : DatasetCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or any object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Longest example in tokens (default 1024); longer ones are cut at the end.</para></summary>
        [Parameter]
        public int MaxLength { get; set; } = 1024;

        /// <summary><para type="description">Examples per forward pass (default 8).</para></summary>
        [Parameter]
        public int BatchSize { get; set; } = 8;

        /// <summary><para type="description">Also generate greedy answers and count exact matches.</para></summary>
        [Parameter]
        public SwitchParameter ExactMatch { get; set; }

        /// <summary><para type="description">Evaluate only the first N records.</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int Limit { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            var tokenizer = DatasetInput.Tokenizer(Model, "Evaluation");
            var (name, source) = OpenDataset();
            var data = TrainingData.Prepare(tokenizer, source, null, new DataOptions { Format = DatasetInput.ParseFormat(Format), MaxLength = MaxLength, ClassLabels = Model.ClassLabels });
            // In record order (examples left without labels are dropped, as in training); -Limit keeps the first N.
            var examples = Bound(nameof(Limit)) ? data.Train.Take(Limit).ToList() : data.Train;
            var loader = new BatchLoader(examples, data.PadTokenId, new BatchOptions { BatchSize = BatchSize, Shuffle = false });
            var loss = Trainer.Evaluate(Model, loader);

            ExactMatchResult? match = null;
            if (ExactMatch)
            {
                WriteVerbose($"Generating {(Bound(nameof(Limit)) ? Math.Min(Limit, data.TrainStats.Records) : data.TrainStats.Records)} greedy answer(s) for exact match...");
                match = Training.ExactMatch.Evaluate(Model, source, data.Format, Bound(nameof(Limit)) ? Limit : null);
            }
            WriteObject(new EvaluationRun
            {
                Dataset = name, Format = data.Format.ToString(), Examples = examples.Count, Loss = loss.Loss, Perplexity = loss.Perplexity,
                Tokens = loss.Tokens, Accuracy = loss.Accuracy, Classification = loss.Classification,
                MacroF1 = loss.Classification?.MacroF1, MatthewsCorrelation = loss.Classification?.MatthewsCorrelation, ExactMatch = match?.Accuracy, Correct = match?.Correct, Total = match?.Total,
                Samples = match?.Samples ?? Array.Empty<ExactMatchSample>(),
            });
        });
        #endregion

        bool Bound(string name) => MyInvocation.BoundParameters.ContainsKey(name);
    }
}
