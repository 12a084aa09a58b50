using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using GraLoRA.Data;
using GraLoRA.Distributed;
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
        /// <summary>What a job trains and where, settled (and every option checked) before any data is read.</summary>
        /// <param name="Adapter">The adapter trained (the named one, else the current one).</param>
        /// <param name="OutputPath">Where checkpoints go (full path), or null for nowhere.</param>
        /// <param name="ResumeFrom">The checkpoint (or training folder) the run continues from, or null for a fresh run.</param>
        /// <param name="Trainer">The trainer, set up with the checked options.</param>
        public sealed record Target(string Adapter, string? OutputPath, string? ResumeFrom, Trainer Trainer);

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
        /// <summary>Rows of one optimizer micro-step over all ranks: <see cref="TrainingSettings.BatchSize"/> × the number of ranks (1 in one process).</summary>
        public int GlobalBatchSize { get; private init; }
        /// <summary>Optimizer steps the run is to take.</summary>
        public int TotalSteps => Trainer.TotalSteps(TrainLoader);

        static GraloraException Invalid(string name, string rule) =>
            new("InvalidTrainingOption", GraloraErrorKind.InvalidArgument, $"{name}: {rule}.", name);

        /// <summary>
        /// The checks and choices of <see cref="Prepare"/> that need no data: the adapter (<see cref="TrainingSettings.Adapter"/>,
        /// else the current one), the tokenizer's presence, the output folder (when resuming from a checkpoint without
        /// one: beside that checkpoint, see <see cref="TrainingCheckpoints.OutputFor"/>) and the options (checked), for
        /// <paramref name="world"/>'s ranks when data-parallel. Also what a front end checks before it starts ranks that
        /// prepare their own data. Throws GraloraException (AdapterNotFound, NoActiveAdapter, AmbiguousAdapter,
        /// TokenizerNotFound, InvalidTrainingOption).
        /// </summary>
        public static Target Check(BaseModel model, TrainingSettings settings, DataParallel? world = null)
        {
            ArgumentNullException.ThrowIfNull(model);
            ArgumentNullException.ThrowIfNull(settings);
            string adapter = model.Adapters.Current(settings.Adapter);
            CheckData(model, settings);
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
            return new Target(adapter, output, resumeFrom, new Trainer(model, adapter, settings.ToTrainingOptions(output) with { Distributed = world }));
        }

        /// <summary>
        /// The output-folder rule (<see cref="IO.OutputTarget"/>: an existing non-empty folder only with OverwriteOutput,
        /// never together with resuming) checked for <paramref name="target"/> without touching the folder: what a front end
        /// asks before it starts ranks, each of which would apply the rule itself only once started.
        /// </summary>
        public static void CheckOutput(Target target, TrainingSettings settings)
        {
            ArgumentNullException.ThrowIfNull(target);
            ArgumentNullException.ThrowIfNull(settings);
            if (target.OutputPath is { } output) Trainer.CheckOutput(output, target.ResumeFrom, settings.OverwriteOutput);
        }

        /// <summary>
        /// Sets up training of <paramref name="model"/> on <paramref name="train"/> with <paramref name="settings"/>: first
        /// <see cref="Check"/>, then the data. Throws GraloraException (those of <see cref="Check"/>, any data error);
        /// <paramref name="cancellation"/> stops the data preparation (chat-template rendering) with
        /// OperationCanceledException. With <paramref name="world"/> (data-parallel, see <see cref="DataParallel.FromEnvironment"/>)
        /// the loaders build global batches of <see cref="TrainingSettings.BatchSize"/> × ranks rows, and each rank trains on its share.
        /// </summary>
        public static TrainingJob Prepare(BaseModel model, DatasetSource train, TrainingSettings settings, CancellationToken cancellation = default, DataParallel? world = null)
        {
            ArgumentNullException.ThrowIfNull(train);
            var (adapter, _, resumeFrom, trainer) = Check(model, settings, world);
            var data = PrepareData(model, train, settings, cancellation);
            string? task = null;
            if (data.Format == DatasetFormat.Classification)
            {
                model.PrepareClassification(adapter, data.ClassLabels!.Labels);
                task = $"Classification over {data.ClassLabels.Count} labels ({string.Join(", ", data.ClassLabels.Labels)}): head '{model.Transformer.ClassificationHead}' trains in full with adapter '{adapter}'";
            }
            int globalBatch = settings.BatchSize * (world?.WorldSize ?? 1);
            var batches = settings.ToBatchOptions() with { BatchSize = globalBatch };
            var trainLoader = data.CreateTrainLoader(batches);
            var validationLoader = data.Validation.Count > 0 ? data.CreateValidationLoader(batches) : null;
            var warnings = new List<string>();
            if ((settings.ValidationDataset is not null || settings.ValidationSplit > 0) && validationLoader is null)
                warnings.Add("No validation example is left (every one was dropped or the split was empty): training without validation.");
            return new TrainingJob
            {
                Model = model, Adapter = adapter, Trainer = trainer, Data = data, TrainLoader = trainLoader, ValidationLoader = validationLoader,
                ResumeFrom = resumeFrom, Task = task, Warnings = warnings, GlobalBatchSize = globalBatch,
            };
        }

        /// <summary>
        /// The data of <paramref name="settings"/> (format, length, split or validation file, seed) read and tokenized for
        /// <paramref name="model"/> as training reads it, with the class labels the model already has. Used by
        /// <see cref="Prepare"/> and by the short trials that train several temporary adapters on the same data
        /// (Find-GraLoRAK, Compare-GraLoRAMethod). Throws TokenizerNotFound, InvalidTrainingOption, any data error.
        /// </summary>
        public static PreparedDataset PrepareData(BaseModel model, DatasetSource train, TrainingSettings settings, CancellationToken cancellation = default)
        {
            ArgumentNullException.ThrowIfNull(model);
            ArgumentNullException.ThrowIfNull(train);
            ArgumentNullException.ThrowIfNull(settings);
            var tokenizer = CheckData(model, settings);
            var validation = settings.ValidationDataset is null ? null : DatasetSource.FromFile(settings.ValidationDataset);
            return TrainingData.Prepare(tokenizer, train, validation, settings.ToDataOptions() with { ClassLabels = model.NamedClassLabels }, cancellation);
        }

        // The checks that need no data: the tokenizer, and one source of validation data.
        static Text.HfTokenizer CheckData(BaseModel model, TrainingSettings settings)
        {
            var tokenizer = model.Tokenizer ?? throw new GraloraException("TokenizerNotFound", GraloraErrorKind.NotFound,
                $"Training needs the model's tokenizer, and '{model.Path}' has no tokenizer.json.", model.Path);
            if (settings.ValidationDataset is not null && settings.ValidationSplit > 0)
                throw Invalid(nameof(settings.ValidationSplit), "give either a validation dataset (ValidationDataset) or a validation split (ValidationSplit), not both");
            return tokenizer;
        }

        /// <summary>Trains (see <see cref="Trainer.Train"/>): progress on every logging step, stopping at the next step boundary once cancelled.</summary>
        public TrainingResult Run(IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default) =>
            Trainer.Train(TrainLoader, ValidationLoader, progress, cancellation, ResumeFrom);
    }
}
