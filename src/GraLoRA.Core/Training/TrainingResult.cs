using System;
using System.Collections.Generic;

namespace GraLoRA.Training
{
    /// <summary>One progress report (every logging step, and after evaluations).</summary>
    public sealed record TrainingProgress(int Step, int TotalSteps, int Epoch, double Loss, double LearningRate, double GradNorm,
        double TokensPerSecond, TimeSpan Elapsed, TimeSpan Remaining, long MemoryBytes, double? ValidationLoss);

    /// <summary>A step whose update was skipped because its loss or gradients were not finite, and what was not finite.</summary>
    public sealed record SkippedStep(int Step, string Reason);

    /// <summary>What a run produced.</summary>
    public sealed record TrainingResult(int Steps, int TotalSteps, double? FinalLoss, double? ValidationLoss, double? BestValidationLoss, int? BestStep,
        string? OutputDirectory, string? LastCheckpoint, string? BestCheckpoint, bool Cancelled, bool StoppedEarly, TimeSpan Elapsed,
        IReadOnlyList<TrainingProgress> History, string? Chart = null, IReadOnlyList<string>? Warnings = null, IReadOnlyList<SkippedStep>? Skipped = null)
    {
        /// <summary>Steps of this run whose update was skipped because their loss or gradients were not finite.</summary>
        public int SkippedSteps => Skipped?.Count ?? 0;
    }

    /// <summary>
    /// Loss and perplexity of a model on held-out data; for classification data (Tokens then counts examples) also the
    /// accuracy and the full <see cref="ClassificationMetrics"/> (macro-F1, Matthews correlation, confusion matrix).
    /// </summary>
    public sealed record EvaluationResult(double Loss, double Perplexity, long Tokens, double? Accuracy = null, ClassificationMetrics? Classification = null);
}
