using System;

namespace GraLoRA.Training
{
    /// <summary>How the learning rate moves over the run (after warmup), as transformers' get_scheduler.</summary>
    public enum LearningRateSchedule
    {
        /// <summary>Stays at the peak.</summary>
        Constant,
        /// <summary>Falls linearly to 0 at the last step.</summary>
        Linear,
        /// <summary>Half a cosine from the peak to 0.</summary>
        Cosine,
    }

    /// <summary>What training does when a step's loss or gradients are NaN or infinite.</summary>
    public enum NonFiniteAction
    {
        /// <summary>Skip the optimizer update of that step (weights and optimizer state unchanged), warn, and go on.</summary>
        SkipStep,
        /// <summary>Stop the run with a GraloraException (ErrorId NonFiniteLoss or NonFiniteGradient).</summary>
        Stop,
    }

    /// <summary>Settings of a fine-tuning run (names follow transformers' TrainingArguments where one exists).</summary>
    public sealed record TrainingOptions
    {
        /// <summary>Peak learning rate.</summary>
        public double LearningRate { get; init; } = 2e-4;
        /// <summary>Passes over the training data (ignored when <see cref="MaxSteps"/> is set).</summary>
        public int Epochs { get; init; } = 1;
        /// <summary>Optimizer steps to run; null runs <see cref="Epochs"/>.</summary>
        public int? MaxSteps { get; init; }
        /// <summary>Micro-batches per optimizer step.</summary>
        public int GradientAccumulationSteps { get; init; } = 1;
        /// <summary>Warmup steps (linear from 0); overrides <see cref="WarmupRatio"/> when above 0.</summary>
        public int WarmupSteps { get; init; }
        /// <summary>Warmup as a fraction of all steps.</summary>
        public double WarmupRatio { get; init; }
        /// <summary>Schedule after warmup.</summary>
        public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Linear;
        /// <summary>AdamW decoupled weight decay (never applied to biases and norm weights).</summary>
        public double WeightDecay { get; init; }
        /// <summary>Gradient-norm clipping threshold (0 = off).</summary>
        public double MaxGradNorm { get; init; } = 1.0;
        /// <summary>AdamW β1.</summary>
        public double AdamBeta1 { get; init; } = 0.9;
        /// <summary>AdamW β2.</summary>
        public double AdamBeta2 { get; init; } = 0.999;
        /// <summary>AdamW ε.</summary>
        public double AdamEpsilon { get; init; } = 1e-8;
        /// <summary>Seed of data order, dropout and initialisation during the run.</summary>
        public long Seed { get; init; } = 42;
        /// <summary>Report (and log to metrics.jsonl) every this many steps.</summary>
        public int LoggingSteps { get; init; } = 10;
        /// <summary>Evaluate on the validation data every this many steps (null: at the end only).</summary>
        public int? EvalSteps { get; init; }
        /// <summary>Write a checkpoint every this many steps (null: at the end only); needs <see cref="OutputDirectory"/>.</summary>
        public int? SaveSteps { get; init; }
        /// <summary>Checkpoints kept (oldest deleted first; the best by validation loss is always kept).</summary>
        public int SaveTotalLimit { get; init; } = 3;
        /// <summary>Stop after this many evaluations without a better validation loss (null: never).</summary>
        public int? EarlyStoppingPatience { get; init; }
        /// <summary>Recompute each decoder layer's activations in backward (less memory for long sequences, one more forward per layer).</summary>
        public bool GradientCheckpointing { get; init; }
        /// <summary>
        /// What to do when a step's loss or a gradient is NaN or infinite (detected at that step; the warning or error
        /// names the step, the first parameter with a non-finite gradient and the batch): skip the step (default) or stop.
        /// </summary>
        public NonFiniteAction OnNonFinite { get; init; } = NonFiniteAction.SkipStep;
        /// <summary>Where checkpoints, metrics.jsonl and TensorBoard events go (null: nothing is written).</summary>
        public string? OutputDirectory { get; init; }
        /// <summary>
        /// Start afresh in an <see cref="OutputDirectory"/> that already holds files (a previous run's), deleting them first;
        /// without it such a folder is an error (<see cref="IO.OutputTarget"/>; transformers' overwrite_output_dir). Resuming
        /// continues a folder instead, so the two do not go together.
        /// </summary>
        public bool OverwriteOutputDirectory { get; init; }

        /// <summary>Checks every value (the one place they are checked); the message names the value and the fix.</summary>
        public void Validate()
        {
            static GraloraException Bad(string name, object value, string rule) =>
                new("InvalidTrainingOption", GraloraErrorKind.InvalidArgument, $"{name} = {value} is invalid: {rule}.", name);
            if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw Bad(nameof(LearningRate), LearningRate, "use a finite value > 0, e.g. 2e-4");
            if (Epochs < 1) throw Bad(nameof(Epochs), Epochs, "train for at least 1 epoch");
            if (MaxSteps is < 1) throw Bad(nameof(MaxSteps), MaxSteps, "use at least 1 step, or leave it unset to train by epochs");
            if (GradientAccumulationSteps < 1) throw Bad(nameof(GradientAccumulationSteps), GradientAccumulationSteps, "use 1 or more");
            if (WarmupSteps < 0) throw Bad(nameof(WarmupSteps), WarmupSteps, "use 0 or more");
            if (!(WarmupRatio >= 0 && WarmupRatio < 1)) throw Bad(nameof(WarmupRatio), WarmupRatio, "use a fraction in [0, 1)");
            if (!(WeightDecay >= 0)) throw Bad(nameof(WeightDecay), WeightDecay, "use 0 or more");
            if (!(MaxGradNorm >= 0)) throw Bad(nameof(MaxGradNorm), MaxGradNorm, "use 0 (off) or a positive norm");
            if (!(AdamBeta1 >= 0 && AdamBeta1 < 1)) throw Bad(nameof(AdamBeta1), AdamBeta1, "use a value in [0, 1)");
            if (!(AdamBeta2 >= 0 && AdamBeta2 < 1)) throw Bad(nameof(AdamBeta2), AdamBeta2, "use a value in [0, 1)");
            if (!(AdamEpsilon > 0)) throw Bad(nameof(AdamEpsilon), AdamEpsilon, "use a small positive value such as 1e-8");
            if (LoggingSteps < 1) throw Bad(nameof(LoggingSteps), LoggingSteps, "use 1 or more");
            if (EvalSteps is < 1) throw Bad(nameof(EvalSteps), EvalSteps, "use 1 or more, or leave it unset");
            if (SaveSteps is < 1) throw Bad(nameof(SaveSteps), SaveSteps, "use 1 or more, or leave it unset");
            if (SaveTotalLimit < 1) throw Bad(nameof(SaveTotalLimit), SaveTotalLimit, "keep at least 1 checkpoint");
            if (EarlyStoppingPatience is < 1) throw Bad(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "use 1 or more evaluations, or leave it unset");
            if (!Enum.IsDefined(OnNonFinite)) throw Bad(nameof(OnNonFinite), OnNonFinite, "use SkipStep or Stop");
            if (SaveSteps is not null && OutputDirectory is null) throw Bad(nameof(SaveSteps), SaveSteps, "checkpoints need an OutputDirectory");
        }

        /// <summary>The learning-rate multiplier before optimizer step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>.</summary>
        public double LearningRateFactor(int step, int totalSteps)
        {
            int warmup = WarmupSteps > 0 ? WarmupSteps : (int)Math.Ceiling(WarmupRatio * totalSteps);
            if (step < warmup) return (double)step / Math.Max(1, warmup);
            double progress = (double)(step - warmup) / Math.Max(1, totalSteps - warmup);
            return Schedule switch
            {
                LearningRateSchedule.Constant => 1.0,
                LearningRateSchedule.Linear => Math.Max(0.0, 1.0 - progress),
                _ => Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * progress))),
            };
        }
    }
}
