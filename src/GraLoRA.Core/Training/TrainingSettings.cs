using GraLoRA.Data;

namespace GraLoRA.Training
{
    /// <summary>
    /// Every setting of a fine-tuning job as the front ends offer it — Start-GraLoRATraining's parameters and the F#
    /// TrainSettings carry these names (tests compare the lists) — with the defaults of the Core options they map onto
    /// (taken from them; those that are the type's default are left implicit, and a test checks that
    /// <see cref="Default"/> maps onto the options' own defaults).
    /// <see cref="TrainingJob.Prepare"/> turns them into <see cref="TrainingOptions"/>, <see cref="DataOptions"/> and
    /// <see cref="BatchOptions"/> in one place.
    /// </summary>
    public sealed record TrainingSettings
    {
        static readonly TrainingOptions OptimizerDefaults = new();
        static readonly DataOptions DataDefaults = new();
        static readonly BatchOptions BatchDefaults = new();

        /// <summary>The defaults.</summary>
        public static TrainingSettings Default { get; } = new();

        // ---- data ----
        /// <summary>The record format; null: detected from the first record.</summary>
        public DatasetFormat? Format { get; init; }
        /// <summary>A validation data file (full path; same format as the training data).</summary>
        public string? ValidationDataset { get; init; }
        /// <summary>Fraction of the training records held out for validation instead of <see cref="ValidationDataset"/> (0: none).</summary>
        public double ValidationSplit { get; init; }
        /// <summary>Longest example in tokens; also the length of packed sequences.</summary>
        public int MaxLength { get; init; } = DataDefaults.MaxLength;
        /// <summary>Concatenate examples into sequences of up to <see cref="MaxLength"/> tokens.</summary>
        public bool Packing { get; init; }
        /// <summary>Learn prompts and user turns too (default: only the responses).</summary>
        public bool TrainOnPrompt { get; init; }
        /// <summary>Examples per batch.</summary>
        public int BatchSize { get; init; } = BatchDefaults.BatchSize;
        /// <summary>Batch examples of similar length together.</summary>
        public bool GroupByLength { get; init; }

        // ---- optimisation ----
        /// <summary>Peak learning rate.</summary>
        public double LearningRate { get; init; } = OptimizerDefaults.LearningRate;
        /// <summary>Passes over the training data (ignored with <see cref="MaxSteps"/>).</summary>
        public int Epochs { get; init; } = OptimizerDefaults.Epochs;
        /// <summary>Optimizer steps to run instead of <see cref="Epochs"/>.</summary>
        public int? MaxSteps { get; init; }
        /// <summary>Micro-batches per optimizer step.</summary>
        public int GradientAccumulation { get; init; } = OptimizerDefaults.GradientAccumulationSteps;
        /// <summary>Learning rate after warmup.</summary>
        public LearningRateSchedule Schedule { get; init; } = OptimizerDefaults.Schedule;
        /// <summary>Steps of linear warmup (overrides <see cref="WarmupRatio"/>).</summary>
        public int WarmupSteps { get; init; }
        /// <summary>Gradient-norm clipping threshold (0: off).</summary>
        public double MaxGradNorm { get; init; } = OptimizerDefaults.MaxGradNorm;
        /// <summary>Warmup as a fraction of all steps.</summary>
        public double WarmupRatio { get; init; }
        /// <summary>Seed of the data order, the validation split, packing and training randomness.</summary>
        public int Seed { get; init; } = DataDefaults.Seed;
        /// <summary>AdamW weight decay (never on biases and norms).</summary>
        public double WeightDecay { get; init; }

        // ---- output and control ----
        /// <summary>Folder for checkpoints, metrics.jsonl, TensorBoard events and training.png (full path; null: nothing is written).</summary>
        public string? OutputPath { get; init; }
        /// <summary>
        /// Start afresh in an <see cref="OutputPath"/> that already holds files (an earlier run's), replacing them (the
        /// cmdlets' -Force, <see cref="IO.OutputTarget"/>); false makes such a folder an OutputExists error. Not with resuming.
        /// </summary>
        public bool OverwriteOutput { get; init; }
        /// <summary>Checkpoints kept (the newest and the best always).</summary>
        public int SaveTotalLimit { get; init; } = OptimizerDefaults.SaveTotalLimit;
        /// <summary>Save a checkpoint every this many steps (null: at the end only).</summary>
        public int? SaveSteps { get; init; }
        /// <summary>Evaluate every this many steps (null: at the end only).</summary>
        public int? EvalSteps { get; init; }
        /// <summary>Stop after this many evaluations without a better validation loss (null: never).</summary>
        public int? EarlyStoppingPatience { get; init; }
        /// <summary>Recompute each decoder layer's activations in backward.</summary>
        public bool GradientCheckpointing { get; init; }
        /// <summary>What a NaN or infinite loss or gradient does: skip the step, or stop.</summary>
        public NonFiniteAction OnNonFinite { get; init; }
        /// <summary>Report progress (and log a metrics line) every this many steps.</summary>
        public int LoggingSteps { get; init; } = OptimizerDefaults.LoggingSteps;

        // ---- the job ----
        /// <summary>The adapter to train; null: the model's current adapter (<see cref="Adapters.AdapterHost.Current"/>).</summary>
        public string? Adapter { get; init; }
        /// <summary>Continue from the latest checkpoint in <see cref="OutputPath"/>.</summary>
        public bool Resume { get; init; }
        /// <summary>Continue from this checkpoint folder (or training folder: its latest checkpoint); full path.</summary>
        public string? ResumeFrom { get; init; }

        /// <summary>The optimisation and output settings as the Trainer's options, writing to <paramref name="outputDirectory"/>.</summary>
        public TrainingOptions ToTrainingOptions(string? outputDirectory) => new()
        {
            LearningRate = LearningRate, Epochs = Epochs, MaxSteps = MaxSteps, GradientAccumulationSteps = GradientAccumulation,
            WarmupSteps = WarmupSteps, WarmupRatio = WarmupRatio, Schedule = Schedule, WeightDecay = WeightDecay, MaxGradNorm = MaxGradNorm,
            Seed = Seed, LoggingSteps = LoggingSteps, EvalSteps = EvalSteps, SaveSteps = SaveSteps, SaveTotalLimit = SaveTotalLimit,
            EarlyStoppingPatience = EarlyStoppingPatience, OutputDirectory = outputDirectory, OverwriteOutputDirectory = OverwriteOutput, GradientCheckpointing = GradientCheckpointing,
            OnNonFinite = OnNonFinite,
        };

        /// <summary>The data settings as the data pipeline's options.</summary>
        public DataOptions ToDataOptions() => new()
        {
            Format = Format, MaxLength = MaxLength, TrainOnPrompt = TrainOnPrompt, Packing = Packing, ValidationFraction = ValidationSplit, Seed = Seed,
        };

        /// <summary>The batching settings as the loaders' options.</summary>
        public BatchOptions ToBatchOptions() => new() { BatchSize = BatchSize, GroupByLength = GroupByLength, Seed = Seed };
    }
}
