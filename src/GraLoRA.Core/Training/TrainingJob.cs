using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using GraLoRA.Data;
using GraLoRA.Models;

namespace GraLoRA.Training
{
    /// <summary>
    /// Everything between "a model, settings and a dataset" and a running <see cref="Trainer"/>, in one place for every
    /// front end: which adapter (the current-adapter rule), the checks between settings, the tokenizer, where checkpoints
    /// go when resuming, the data pipeline, the classification head for text + label data, and the loaders.
    /// <see cref="Prepare"/> checks the settings and the adapter before any data is read.
    /// </summary>
    public sealed class TrainingJob
    {
        TrainingJob() { }

        /// <summary>The model trained.</summary>
        public BaseModel Model { get; private init; } = null!;
        /// <summary>The adapter trained.</summary>
        public string Adapter { get; private init; } = null!;
        /// <summary>The trainer, set up with the job's options (its <see cref="Trainer.Warning"/> can be set before <see cref="Run"/>).</summary>
        public Trainer Trainer { get; private init; } = null!;
        /// <summary>The prepared examples, their format and statistics.</summary>
        public PreparedDataset Data { get; private init; } = null!;
        /// <summary>Batches of the training examples.</summary>
        public BatchLoader TrainLoader { get; private init; } = null!;
        /// <summary>Batches of the validation examples, or null without any.</summary>
        public BatchLoader? ValidationLoader { get; private init; }
        /// <summary>The checkpoint (or training folder) the run continues from, or null for a fresh run.</summary>
        public string? ResumeFrom { get; private init; }
        /// <summary>What text + label data made of the model (the head that trains with the adapter), or null for language-modelling data.</summary>
        public string? Task { get; private init; }
        /// <summary>What the front end should warn about (e.g. validation asked for, but no example left).</summary>
        public IReadOnlyList<string> Warnings { get; private init; } = Array.Empty<string>();
        /// <summary>Optimizer steps the run is to take.</summary>
        public int TotalSteps => Trainer.TotalSteps(TrainLoader);

        static GraloraException Invalid(string name, string rule) =>
            new("InvalidTrainingOption", GraloraErrorKind.InvalidArgument, $"{name}: {rule}.", name);

        /// <summary>
        /// Sets up training of <paramref name="model"/> on <paramref name="train"/> with <paramref name="settings"/>: the
        /// adapter (<see cref="TrainingSettings.Adapter"/>, else the current one), the tokenizer, the output folder (when
        /// resuming from a checkpoint without one: beside that checkpoint, see <see cref="TrainingCheckpoints.OutputFor"/>),
        /// the options (checked), then the data. Throws GraloraException (AdapterNotFound, NoActiveAdapter,
        /// AmbiguousAdapter, TokenizerNotFound, InvalidTrainingOption, any data error); <paramref name="cancellation"/> stops the data
        /// preparation (chat-template rendering) with OperationCanceledException.
        /// </summary>
        public static TrainingJob Prepare(BaseModel model, DatasetSource train, TrainingSettings settings, CancellationToken cancellation = default)
        {
            ArgumentNullException.ThrowIfNull(model);
            ArgumentNullException.ThrowIfNull(train);
            ArgumentNullException.ThrowIfNull(settings);
            string adapter = model.Adapters.Current(settings.Adapter);
            var tokenizer = model.Tokenizer ?? throw new GraloraException("TokenizerNotFound", GraloraErrorKind.NotFound,
                $"Training needs the model's tokenizer, and '{model.Path}' has no tokenizer.json.", model.Path);
            if (settings.ValidationDataset is not null && settings.ValidationSplit > 0)
                throw Invalid(nameof(settings.ValidationSplit), "give either a validation dataset (ValidationDataset) or a validation split (ValidationSplit), not both");
            if (settings.Resume && settings.ResumeFrom is not null)
                throw Invalid(nameof(settings.ResumeFrom), "give either Resume (the latest checkpoint in OutputPath) or ResumeFrom <checkpoint>, not both");

            string? output = settings.OutputPath is null ? null : Path.GetFullPath(settings.OutputPath);
            string? resumeFrom = null;
            if (settings.Resume)
                resumeFrom = output ?? throw Invalid(nameof(settings.Resume), "Resume continues from the latest checkpoint in OutputPath: give OutputPath (or ResumeFrom <checkpoint folder>)");
            else if (settings.ResumeFrom is not null)
            {
                resumeFrom = Path.GetFullPath(settings.ResumeFrom);
                output ??= TrainingCheckpoints.OutputFor(resumeFrom);
            }
            // Checks every option (and the adapter) before the data is read.
            var trainer = new Trainer(model, adapter, settings.ToTrainingOptions(output));

            var validation = settings.ValidationDataset is null ? null : DatasetSource.FromFile(settings.ValidationDataset);
            var data = TrainingData.Prepare(tokenizer, train, validation, settings.ToDataOptions() with { ClassLabels = model.NamedClassLabels }, cancellation);
            string? task = null;
            if (data.Format == DatasetFormat.Classification)
            {
                model.PrepareClassification(adapter, data.ClassLabels!.Labels);
                task = $"Classification over {data.ClassLabels.Count} labels ({string.Join(", ", data.ClassLabels.Labels)}): head '{model.Transformer.ClassificationHead}' trains in full with adapter '{adapter}'";
            }
            var batches = settings.ToBatchOptions();
            var trainLoader = data.CreateTrainLoader(batches);
            var validationLoader = data.Validation.Count > 0 ? data.CreateValidationLoader(batches) : null;
            var warnings = new List<string>();
            if ((validation is not null || settings.ValidationSplit > 0) && validationLoader is null)
                warnings.Add("No validation example is left (every one was dropped or the split was empty): training without validation.");
            return new TrainingJob
            {
                Model = model, Adapter = adapter, Trainer = trainer, Data = data, TrainLoader = trainLoader, ValidationLoader = validationLoader,
                ResumeFrom = resumeFrom, Task = task, Warnings = warnings,
            };
        }

        /// <summary>Trains (see <see cref="Trainer.Train"/>): progress on every logging step, stopping at the next step boundary once cancelled.</summary>
        public TrainingResult Run(IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default) =>
            Trainer.Train(TrainLoader, ValidationLoader, progress, cancellation, ResumeFrom);
    }
}
