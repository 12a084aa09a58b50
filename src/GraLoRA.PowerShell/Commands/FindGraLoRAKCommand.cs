using System;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Diagnostics;
using GraLoRA.Models;
using GraLoRA.Training;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Chooses GraLoRA's k by measurement: short training runs over k values and hybrid splits on a step budget, recommending the lowest validation loss.</para>
    /// <para type="description">The paper leaves k to sweeping (its rule of thumb r/k² ≈ 8 is what -K Auto picks). For the total -Rank, the candidates are every power-of-two k dividing r with k² ≤ r (or the -K values given) and, for k ≥ 2, a hybrid split with half the rank as plain LoRA (Hybrid GraLoRA, suggested for r ≤ 16; leave out with -NoHybrid). All candidates have the same parameter count. Each gets a fresh adapter on -TargetModule (default all-linear), trained for an equal share of -StepBudget steps with the same seed and learning rate, and is scored on the validation data (-ValidationDataset, or -ValidationSplit of the data, default 0.1); the temporary adapter is removed, so the model is left as it was. Outputs one KTrial per candidate (Rank, K, HybridRank, Parameters, Steps, TrainLoss, ValidationLoss, Recommended) and writes the recommendation to the information stream. Short runs rank candidates by early progress, which can differ from the order after full training.</para>
    /// </summary>
    /// <example><code>$model | Find-GraLoRAK ./data/train.jsonl -Rank 32 -StepBudget 300</code><para>Tries k 1, 2, 4 and the hybrid splits k 2 + hybrid 16 and k 4 + hybrid 16, 60 steps each, and marks the one with the lowest validation loss.</para></example>
    /// <example><code>$best = $model | Find-GraLoRAK ./data/train.jsonl -Rank 64 -K 2,4,8 -NoHybrid | Where-Object Recommended; $model | Add-GraLoRAAdapter -Rank 64 -K $best.K</code><para>Sweeps three k values and adds an adapter with the recommended one.</para></example>
    [Cmdlet(VerbsCommon.Find, "GraLoRAK", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(KTrial))]
    public sealed class FindGraLoRAKCommand : DatasetCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or any object with a Model property). Modules it already adapts with LoRA cannot take the trial adapters.</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">A validation data file (default: -ValidationSplit of the training data).</para></summary>
        [Parameter]
        public string? ValidationDataset { get; set; }

        /// <summary><para type="description">Fraction of the training records held out for validation when no -ValidationDataset is given (default 0.1).</para></summary>
        [Parameter]
        public double ValidationSplit { get; set; } = 0.1;

        /// <summary><para type="description">Total rank of every candidate (default 32).</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int Rank { get; set; } = AdapterDefaults.GraloraRank;

        /// <summary><para type="description">The k values to try (default: powers of two dividing r with k² ≤ r).</para></summary>
        [Parameter]
        public int[]? K { get; set; }

        /// <summary><para type="description">Try only pure GraLoRA, no hybrid splits.</para></summary>
        [Parameter]
        public SwitchParameter NoHybrid { get; set; }

        /// <summary><para type="description">Optimizer steps for the whole sweep (default 200), shared equally by the candidates.</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int StepBudget { get; set; } = 200;

        /// <summary><para type="description">Modules the trial adapters adapt (default all-linear).</para></summary>
        [Parameter]
        public string[]? TargetModule { get; set; }

        /// <summary><para type="description">Scale numerator alpha of the trial adapters (default 2 × rank).</para></summary>
        [Parameter]
        public double Alpha { get; set; }

        /// <summary><para type="description">Peak learning rate of each run (default 2e-4).</para></summary>
        [Parameter]
        public double LearningRate { get; set; } = 2e-4;

        /// <summary><para type="description">Examples per batch (default 8).</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int BatchSize { get; set; } = 8;

        /// <summary><para type="description">Longest example in tokens (default 1024).</para></summary>
        [Parameter, ValidateRange(2, int.MaxValue)]
        public int MaxLength { get; set; } = 1024;

        /// <summary><para type="description">Seed of the data order, the split and every run's initialisation (default 42).</para></summary>
        [Parameter]
        public int Seed { get; set; } = 42;
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            var tokenizer = DatasetInput.Tokenizer(Model, "Find-GraLoRAK");
            var (name, source) = OpenDataset();
            var validationSource = ValidationDataset is null ? null : DatasetInput.FromPath(ResolvePath(ValidationDataset));
            var data = TrainingData.Prepare(tokenizer, source, validationSource, new DataOptions
            {
                Format = DatasetInput.ParseFormat(Format), MaxLength = MaxLength, Seed = Seed, ValidationFraction = validationSource is null ? ValidationSplit : 0,
            });
            if (data.Validation.Count == 0)
                throw new GraloraException("NoValidationData", GraloraErrorKind.InvalidData,
                    "Find-GraLoRAK scores candidates by validation loss, and no validation example is left: give -ValidationDataset or a larger -ValidationSplit (e.g. 0.1).", name);
            var batchOptions = new BatchOptions { BatchSize = BatchSize, Seed = Seed };
            var options = new KSearchOptions
            {
                Rank = Rank, StepBudget = StepBudget, Ks = K, IncludeHybrid = !NoHybrid,
                Adapter = new AdapterConfig
                {
                    TargetModules = TargetModule ?? new[] { AdapterConfig.AllLinear },
                    Alpha = MyInvocation.BoundParameters.ContainsKey(nameof(Alpha)) ? Alpha : 2.0 * Rank,
                },
                Training = new TrainingOptions { LearningRate = LearningRate, Seed = Seed },
            };
            int total = KSearch.Candidates(options).Count, done = 0;
            var trials = KSearch.Run(Model, data.CreateTrainLoader(batchOptions), data.CreateValidationLoader(batchOptions), options,
                new Reporter(t =>
                {
                    done++;
                    WriteProgress(new ProgressRecord(1, "Find-GraLoRAK", string.Format(CultureInfo.InvariantCulture, "{0}/{1}: k {2}, hybrid {3}: validation loss {4:0.0000}", done, total, t.K, t.HybridRank, t.ValidationLoss))
                        { PercentComplete = 100 * done / total });
                }));
            WriteProgress(new ProgressRecord(1, "Find-GraLoRAK", "done") { RecordType = ProgressRecordType.Completed });
            if (trials.FirstOrDefault(t => t.Recommended) is { } best)
                WriteInformation(new HostInformationMessage
                {
                    Message = string.Format(CultureInfo.InvariantCulture, "Recommended for r {0}: k {1}{2} (validation loss {3:0.0000}; rule of thumb r/k² ≈ 8 gives k {4})",
                        Rank, best.K, best.HybridRank > 0 ? $" with hybrid rank {best.HybridRank}" : "", best.ValidationLoss, AdapterConfig.AutoK(Rank)),
                }, new[] { "PSHOST" });
            foreach (var t in trials) WriteObject(t);
        });
        #endregion

        sealed class Reporter : IProgress<KTrial>
        {
            readonly Action<KTrial> _report;
            public Reporter(Action<KTrial> report) => _report = report;
            public void Report(KTrial value) => _report(value);
        }
    }
}
