using System;
using System.Management.Automation;
using GraLoRA.Data;
using GraLoRA.Models;

namespace GraLoRA.PowerShell
{
    /// <summary>
    /// Base of the cmdlets that train short trials of temporary adapters on one model and score them on validation data
    /// (Find-GraLoRAK, Compare-GraLoRAMethod): the model, data, validation and training parameters declared once, and one
    /// way to prepare the data.
    /// </summary>
    public abstract class AdapterTrialCmdlet : DatasetCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or any object with a Model property). Modules it already adapts with another method cannot take the trial adapters.</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">A validation data file (default: -ValidationSplit of the training data).</para></summary>
        [Parameter]
        public string? ValidationDataset { get; set; }

        /// <summary><para type="description">Fraction of the training records held out for validation when no -ValidationDataset is given (default 0.1).</para></summary>
        [Parameter]
        public double ValidationSplit { get; set; } = 0.1;

        /// <summary><para type="description">Modules the trial adapters adapt (default all-linear).</para></summary>
        [Parameter]
        public string[]? TargetModule { get; set; }

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

        /// <summary>The data, tokenized for the model, with a validation part (NoValidationData when none is left: <paramref name="why"/> says what it is for).</summary>
        protected PreparedDataset PrepareData(string cmdlet, string why)
        {
            var tokenizer = DatasetInput.Tokenizer(Model, cmdlet);
            var (name, source) = OpenDataset();
            var validationSource = ValidationDataset is null ? null : DatasetInput.FromPath(ResolvePath(ValidationDataset));
            var data = TrainingData.Prepare(tokenizer, source, validationSource, new DataOptions
            {
                Format = DatasetInput.ParseFormat(Format), MaxLength = MaxLength, Seed = Seed, ValidationFraction = validationSource is null ? ValidationSplit : 0,
            });
            if (data.Validation.Count == 0)
                throw new GraloraException("NoValidationData", GraloraErrorKind.InvalidData,
                    $"{cmdlet} {why}, and no validation example is left: give -ValidationDataset or a larger -ValidationSplit (e.g. 0.1).", name);
            return data;
        }

        /// <summary>The batch settings of every trial.</summary>
        protected BatchOptions Batches => new() { BatchSize = BatchSize, Seed = Seed };

        /// <summary>An <see cref="IProgress{T}"/> that calls an action on the reporting thread (the pipeline thread).</summary>
        protected sealed class Reporter<T> : IProgress<T>
        {
            readonly Action<T> _report;
            /// <summary>Reports to <paramref name="report"/>.</summary>
            public Reporter(Action<T> report) => _report = report;
            /// <inheritdoc />
            public void Report(T value) => _report(value);
        }
    }
}
