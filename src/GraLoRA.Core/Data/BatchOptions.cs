namespace GraLoRA.Data
{
    /// <summary>How a <see cref="BatchLoader"/> orders and groups examples into batches.</summary>
    public sealed record BatchOptions
    {
        /// <summary>Examples per batch (default 8).</summary>
        public int BatchSize { get; init; } = 8;

        /// <summary>Shuffle every epoch (default true; the order of epoch e is determined by (<see cref="Seed"/>, e)).</summary>
        public bool Shuffle { get; init; } = true;

        /// <summary>Seed of the per-epoch shuffles (default 42); see <see cref="DataShuffle.EpochSeed"/>.</summary>
        public int Seed { get; init; } = 42;

        /// <summary>
        /// Put examples of similar length together, for less padding: the epoch's order is cut into groups of
        /// <see cref="GroupSizeMultiplier"/> × <see cref="BatchSize"/> examples, each group is sorted by length
        /// (longest first), cut into batches, and then the batches are shuffled (when <see cref="Shuffle"/> is on).
        /// </summary>
        public bool GroupByLength { get; init; }

        /// <summary>Batches per length group (default 50), see <see cref="GroupByLength"/>.</summary>
        public int GroupSizeMultiplier { get; init; } = 50;

        /// <summary>Drop the last batch of an epoch when it is smaller than <see cref="BatchSize"/> (default false).</summary>
        public bool DropLast { get; init; }

        /// <summary>Round each batch's sequence length up to a multiple of this (null: the longest row).</summary>
        public int? PadToMultipleOf { get; init; }
    }
}
