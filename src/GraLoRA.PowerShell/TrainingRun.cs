using System;
using System.Collections.Generic;
using GraLoRA.Models;
using GraLoRA.Training;

namespace GraLoRA.PowerShell
{
    /// <summary>
    /// What Start-GraLoRATraining outputs: the trained model (so the pipeline continues into Merge-GraLoRAAdapter,
    /// Export-BaseModel... which take -Model by property name) and how the run went.
    /// </summary>
    public sealed class TrainingRun
    {
        /// <summary>The model, with the trained adapter active.</summary>
        public BaseModel Model { get; init; } = null!;
        /// <summary>The adapter trained.</summary>
        public string Adapter { get; init; } = "";
        /// <summary>Optimizer steps done (counting those of the checkpoint resumed from).</summary>
        public int Steps { get; init; }
        /// <summary>Optimizer steps the run was to take.</summary>
        public int TotalSteps { get; init; }
        /// <summary>Training loss of the last step.</summary>
        public double? FinalLoss { get; init; }
        /// <summary>Loss on the validation data at the last evaluation (null without validation data).</summary>
        public double? ValidationLoss { get; init; }
        /// <summary>Lowest validation loss of the run.</summary>
        public double? BestValidationLoss { get; init; }
        /// <summary>The step of <see cref="BestValidationLoss"/>.</summary>
        public int? BestStep { get; init; }
        /// <summary>exp(<see cref="ValidationLoss"/>); null without validation data.</summary>
        public double? Perplexity { get; init; }
        /// <summary>The output folder (checkpoints, metrics.jsonl, runs/, training.png), or null.</summary>
        public string? OutputPath { get; init; }
        /// <summary>The newest checkpoint folder written, or null.</summary>
        public string? LastCheckpoint { get; init; }
        /// <summary>The checkpoint of the best validation loss, or null.</summary>
        public string? BestCheckpoint { get; init; }
        /// <summary>training.png, or null.</summary>
        public string? Chart { get; init; }
        /// <summary>Whether the run was stopped (Ctrl+C) before its last step; a resumable checkpoint was saved when there is an output folder.</summary>
        public bool Cancelled { get; init; }
        /// <summary>Whether early stopping ended the run.</summary>
        public bool StoppedEarly { get; init; }
        /// <summary>Wall-clock time of this call's training.</summary>
        public TimeSpan Elapsed { get; init; }
        /// <summary>Training examples (before packing).</summary>
        public int TrainExamples { get; init; }
        /// <summary>Validation examples (0 without validation data).</summary>
        public int ValidationExamples { get; init; }
        /// <summary>The record format used.</summary>
        public string Format { get; init; } = "";
        /// <summary>Steps of this run whose update was skipped because their loss or gradients were not finite (each also a warning).</summary>
        public int SkippedSteps { get; init; }
        /// <summary>Every progress report (logging steps and evaluations), oldest first.</summary>
        public IReadOnlyList<TrainingProgress> History { get; init; } = Array.Empty<TrainingProgress>();

        /// <inheritdoc />
        public override string ToString() => $"{Adapter}: {Steps}/{TotalSteps} steps, loss {FinalLoss:0.####}";
    }

    /// <summary>What Invoke-GraLoRAEvaluation outputs: loss and perplexity, and exact match when asked.</summary>
    public sealed class EvaluationRun
    {
        /// <summary>The dataset evaluated (path, or InputObject).</summary>
        public string Dataset { get; init; } = "";
        /// <summary>The record format used.</summary>
        public string Format { get; init; } = "";
        /// <summary>Examples the loss was computed over.</summary>
        public int Examples { get; init; }
        /// <summary>Mean next-token cross-entropy over the predicted (label) tokens.</summary>
        public double Loss { get; init; }
        /// <summary>exp(<see cref="Loss"/>).</summary>
        public double Perplexity { get; init; }
        /// <summary>Tokens predicted.</summary>
        public long Tokens { get; init; }
        /// <summary>Share of examples whose predicted label is right (classification data), else null.</summary>
        public double? Accuracy { get; init; }
        /// <summary>Macro-averaged F1 over the labels (classification data), else null.</summary>
        public double? MacroF1 { get; init; }
        /// <summary>Matthews correlation coefficient (classification data), else null.</summary>
        public double? MatthewsCorrelation { get; init; }
        /// <summary>Every classification metric with the confusion matrix and label names (classification data), else null.</summary>
        public GraLoRA.Training.ClassificationMetrics? Classification { get; init; }
        /// <summary>Fraction of exactly matching greedy answers (null without -ExactMatch).</summary>
        public double? ExactMatch { get; init; }
        /// <summary>Answers that matched (null without -ExactMatch).</summary>
        public int? Correct { get; init; }
        /// <summary>Answers generated (null without -ExactMatch).</summary>
        public int? Total { get; init; }
        /// <summary>Each generated answer beside the reference (empty without -ExactMatch).</summary>
        public IReadOnlyList<ExactMatchSample> Samples { get; init; } = Array.Empty<ExactMatchSample>();

        /// <inheritdoc />
        public override string ToString() => $"loss {Loss:0.####}, perplexity {Perplexity:0.###}" + (Classification is { } c ? $", {c}" : "") + (ExactMatch is { } em ? $", exact match {em:P1}" : "");
    }
}
