using System;
using System.Management.Automation;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;

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
        public double LearningRate { get; set; } = TrainingSettings.Default.LearningRate;

        /// <summary><para type="description">Examples per batch (default 8).</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int BatchSize { get; set; } = TrainingSettings.Default.BatchSize;

        /// <summary><para type="description">Longest example in tokens (default 1024).</para></summary>
        [Parameter, ValidateRange(2, int.MaxValue)]
        public int MaxLength { get; set; } = TrainingSettings.Default.MaxLength;

        /// <summary><para type="description">Seed of the data order, the split and every run's initialisation (default 42).</para></summary>
        [Parameter]
        public int Seed { get; set; } = TrainingSettings.Default.Seed;
        #endregion

        /// <summary>The data and training settings every trial shares (data format, length, validation, batches, learning rate, seed).</summary>
        protected TrainingSettings Settings => new()
        {
            Format = DatasetInput.ParseFormat(Format), MaxLength = MaxLength, BatchSize = BatchSize, LearningRate = LearningRate, Seed = Seed,
            ValidationDataset = ValidationDataset is null ? null : ResolvePath(ValidationDataset),
            ValidationSplit = ValidationDataset is null ? ValidationSplit : 0,
        };

        /// <summary>The data of every trial, as Core prepares it (<see cref="AdapterTrials.PrepareData"/>; <paramref name="purpose"/> names what the validation data is for).</summary>
        protected TrialData PrepareData(string purpose) => AdapterTrials.PrepareData(Model, OpenDataset().Source, Settings, purpose);

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
