using System.Collections;
using System.Collections.Specialized;
using System.Management.Automation;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Makes a training configuration: an ordered hashtable of Start-GraLoRATraining's optimisation, data and output settings.</para>
    /// <para type="description">Takes the same optimisation, data and output parameters as Start-GraLoRATraining (all but -Model, the training data, -Adapter and resuming) and outputs an ordered hashtable holding only the ones given, keyed by parameter name, in a fixed order; switches become $true or $false. Pass it to Start-GraLoRATraining -Config, where parameters given explicitly win over it. Being a hashtable, it round-trips through JSON (ConvertTo-Json, ConvertFrom-Json -AsHashtable) and PowerShell data files (Import-PowerShellDataFile); unknown keys in a loaded configuration are an error (InvalidTrainingConfig).</para>
    /// </summary>
    /// <example><code>$config = New-GraLoRATrainingConfig -LearningRate 1e-3 -MaxSteps 200 -BatchSize 4 -OutputPath ./out
    /// $model | Start-GraLoRATraining ./data/train.jsonl -Config $config</code><para>Trains with the settings of the configuration.</para></example>
    /// <example><code>New-GraLoRATrainingConfig -LearningRate 1e-3 -MaxSteps 200 | ConvertTo-Json | Set-Content run.json
    /// $model | Start-GraLoRATraining ./data/train.jsonl -Config (Get-Content run.json -Raw | ConvertFrom-Json -AsHashtable) -MaxSteps 20</code><para>Saves a configuration as JSON, then trains from it with -MaxSteps overriding its value.</para></example>
    [Cmdlet(VerbsCommon.New, "GraLoRATrainingConfig")]
    [OutputType(typeof(OrderedDictionary))]
    public sealed class NewGraLoRATrainingConfigCommand : GraloraCmdlet
    {
        /// <summary>The settings a configuration may hold, in the order they are written: Start-GraLoRATraining's parameter names.</summary>
        internal static readonly string[] Keys =
        {
            nameof(Format),
            nameof(ValidationDataset),
            nameof(ValidationSplit),
            nameof(MaxLength),
            nameof(Packing),
            nameof(TrainOnPrompt),
            nameof(BatchSize),
            nameof(GroupByLength),
            nameof(LearningRate),
            nameof(Epochs),
            nameof(MaxSteps),
            nameof(GradientAccumulation),
            nameof(WarmupSteps),
            nameof(WarmupRatio),
            nameof(Schedule),
            nameof(WeightDecay),
            nameof(MaxGradNorm),
            nameof(Seed),
            nameof(OutputPath),
            nameof(SaveSteps),
            nameof(EvalSteps),
            nameof(SaveTotalLimit),
            nameof(EarlyStoppingPatience),
            nameof(GradientCheckpointing),
            nameof(LoggingSteps)
        };

        #region Parameters
        /// <summary><para type="description">The record format (default: detected from the first record's fields).</para></summary>
        [Parameter]
        [ValidateSet("Text", "Alpaca", "PromptCompletion", "Chat", "Classification")]
        public string? Format { get; set; }

        /// <summary><para type="description">A validation data file (same format as the training data).</para></summary>
        [Parameter]
        public string? ValidationDataset { get; set; }

        /// <summary><para type="description">Hold out this fraction of the training records for validation (instead of -ValidationDataset), e.g. 0.1.</para></summary>
        [Parameter]
        public double? ValidationSplit { get; set; }

        /// <summary><para type="description">Longest example in tokens (default 1024); longer ones are cut at the end. Also the length of packed sequences.</para></summary>
        [Parameter]
        public int? MaxLength { get; set; }

        /// <summary><para type="description">Concatenate examples into sequences of up to -MaxLength tokens (attention does not cross example boundaries).</para></summary>
        [Parameter]
        public SwitchParameter Packing { get; set; }

        /// <summary><para type="description">Learn prompts and user turns too (default: only the responses).</para></summary>
        [Parameter]
        public SwitchParameter TrainOnPrompt { get; set; }

        /// <summary><para type="description">Examples per batch (default 8).</para></summary>
        [Parameter]
        public int? BatchSize { get; set; }

        /// <summary><para type="description">Batch examples of similar length together (less padding).</para></summary>
        [Parameter]
        public SwitchParameter GroupByLength { get; set; }

        /// <summary><para type="description">Peak learning rate (default 2e-4).</para></summary>
        [Parameter]
        public double? LearningRate { get; set; }

        /// <summary><para type="description">Passes over the training data (default 1; ignored with -MaxSteps).</para></summary>
        [Parameter]
        public int? Epochs { get; set; }

        /// <summary><para type="description">Optimizer steps to run (instead of -Epochs).</para></summary>
        [Parameter]
        public int? MaxSteps { get; set; }

        /// <summary><para type="description">Batches per optimizer step (default 1).</para></summary>
        [Parameter]
        public int? GradientAccumulation { get; set; }

        /// <summary><para type="description">Steps of linear warmup from 0 (overrides -WarmupRatio).</para></summary>
        [Parameter]
        public int? WarmupSteps { get; set; }

        /// <summary><para type="description">Warmup as a fraction of all steps.</para></summary>
        [Parameter]
        public double? WarmupRatio { get; set; }

        /// <summary><para type="description">Learning rate after warmup: Constant, Linear (default, to 0) or Cosine.</para></summary>
        [Parameter]
        [ValidateSet("Constant", "Linear", "Cosine")]
        public string? Schedule { get; set; }

        /// <summary><para type="description">AdamW weight decay (default 0; never on biases and norms).</para></summary>
        [Parameter]
        public double? WeightDecay { get; set; }

        /// <summary><para type="description">Clip the gradient norm to this (default 1; 0 = off).</para></summary>
        [Parameter]
        public double? MaxGradNorm { get; set; }

        /// <summary><para type="description">Seed of the data order, the validation split, packing and training randomness (default 42).</para></summary>
        [Parameter]
        public int? Seed { get; set; }

        /// <summary><para type="description">Folder for checkpoints, metrics.jsonl, TensorBoard events (runs/) and training.png (default: nothing is written).</para></summary>
        [Parameter]
        public string? OutputPath { get; set; }

        /// <summary><para type="description">Save a checkpoint every this many steps (default: at the end only); needs -OutputPath.</para></summary>
        [Parameter]
        public int? SaveSteps { get; set; }

        /// <summary><para type="description">Evaluate on the validation data every this many steps (default: at the end only).</para></summary>
        [Parameter]
        public int? EvalSteps { get; set; }

        /// <summary><para type="description">Checkpoints kept (default 3; the newest and the best are always kept).</para></summary>
        [Parameter]
        public int? SaveTotalLimit { get; set; }

        /// <summary><para type="description">Stop after this many evaluations without a better validation loss.</para></summary>
        [Parameter]
        public int? EarlyStoppingPatience { get; set; }

        /// <summary><para type="description">Recompute each decoder layer's activations in backward: less memory for long sequences, one more forward per layer.</para></summary>
        [Parameter]
        public SwitchParameter GradientCheckpointing { get; set; }

        /// <summary><para type="description">Report progress and write a line every this many steps (default 10).</para></summary>
        [Parameter]
        public int? LoggingSteps { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void EndProcessing() => Invoke(() =>
        {
            var config = new OrderedDictionary(System.StringComparer.OrdinalIgnoreCase);
            foreach (string key in Keys)
            {
                if (!MyInvocation.BoundParameters.TryGetValue(key, out object? value)) continue;
                config[key] = value is SwitchParameter s ? s.IsPresent : value;
            }
            WriteObject(config);
        });
        #endregion
    }
}
