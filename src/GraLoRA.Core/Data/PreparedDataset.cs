using System.Collections.Generic;

namespace GraLoRA.Data
{
    /// <summary>Tokenised training (and validation) examples, ready for batching; what <see cref="TrainingData.Prepare"/> returns.</summary>
    public sealed class PreparedDataset
    {
        internal PreparedDataset(DatasetFormat format, List<TrainingExample> train, List<TrainingExample> validation, ClassLabelSet? classLabels,
            int padTokenId, DataPreparationStats trainStats, DataPreparationStats validationStats)
        {
            Format = format;
            Train = train;
            Validation = validation;
            ClassLabels = classLabels;
            PadTokenId = padTokenId;
            TrainStats = trainStats;
            ValidationStats = validationStats;
        }

        /// <summary>The record format used.</summary>
        public DatasetFormat Format { get; }
        /// <summary>Training examples (packed when packing was asked).</summary>
        public IReadOnlyList<TrainingExample> Train { get; }
        /// <summary>Validation examples (never packed); empty when there is no validation data.</summary>
        public IReadOnlyList<TrainingExample> Validation { get; }
        /// <summary>The classification label set, or null for language-modelling formats.</summary>
        public ClassLabelSet? ClassLabels { get; }
        /// <summary>The pad id batches use (<see cref="DataCollator.PadIdOf"/>).</summary>
        public int PadTokenId { get; }
        /// <summary>What happened to the training records.</summary>
        public DataPreparationStats TrainStats { get; }
        /// <summary>What happened to the validation records.</summary>
        public DataPreparationStats ValidationStats { get; }

        /// <summary>A loader over the training examples.</summary>
        public BatchLoader CreateTrainLoader(BatchOptions? options = null) => new(Train, PadTokenId, options);

        /// <summary>
        /// A loader over the validation examples, in their order (shuffling off, nothing dropped, whatever
        /// <paramref name="options"/> says about those). Fails when there are no validation examples.
        /// </summary>
        public BatchLoader CreateValidationLoader(BatchOptions? options = null) =>
            new(Validation, PadTokenId, (options ?? new BatchOptions()) with { Shuffle = false, DropLast = false });
    }

    /// <summary>Counts from preparing one split.</summary>
    /// <param name="Records">Records read into this split.</param>
    /// <param name="Examples">Examples kept (before packing).</param>
    /// <param name="Truncated">Examples cut to MaxLength.</param>
    /// <param name="DroppedWithoutTargets">Examples dropped because no token was left with a label.</param>
    /// <param name="PackedSequences">Sequences after packing (0 when not packed).</param>
    public sealed record DataPreparationStats(int Records, int Examples, int Truncated, int DroppedWithoutTargets, int PackedSequences);
}
