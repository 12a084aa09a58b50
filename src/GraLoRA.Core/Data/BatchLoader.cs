using System;
using System.Collections.Generic;

namespace GraLoRA.Data
{
    /// <summary>
    /// Serves the batches of each epoch from a list of examples: reproducibly shuffled from (seed, epoch), optionally
    /// grouped by length, right-padded by a <see cref="DataCollator"/>.
    /// </summary>
    /// <remarks>
    /// Epoch e's order is <see cref="DataShuffle.Permutation"/>(count, <see cref="DataShuffle.EpochSeed"/>(seed, e)) (the
    /// identity without shuffling). Without length grouping, consecutive runs of BatchSize examples of that order form the
    /// batches. With it, see <see cref="BatchOptions.GroupByLength"/>; the batches are then shuffled with the same
    /// Random, continuing after the permutation. Every example appears exactly once per epoch (except in a dropped last
    /// batch).
    /// </remarks>
    public sealed class BatchLoader : IBatchSource
    {
        readonly IReadOnlyList<TrainingExample> _examples;

        /// <summary>Creates a loader over <paramref name="examples"/>.</summary>
        /// <exception cref="GraloraException"><c>InvalidDataOptions</c> for a batch size or group multiplier below 1, or no examples.</exception>
        public BatchLoader(IReadOnlyList<TrainingExample> examples, int padTokenId, BatchOptions? options = null)
        {
            _examples = examples ?? throw new ArgumentNullException(nameof(examples));
            Options = options ?? new BatchOptions();
            if (Options.BatchSize < 1)
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument, $"BatchSize {Options.BatchSize} must be at least 1.", Options.BatchSize);
            if (Options.GroupSizeMultiplier < 1)
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument, $"GroupSizeMultiplier {Options.GroupSizeMultiplier} must be at least 1 (e.g. 50).", Options.GroupSizeMultiplier);
            if (examples.Count == 0)
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument, "There are no examples to batch.");
            Collator = new DataCollator(padTokenId, Options.PadToMultipleOf);
        }

        /// <summary>The options.</summary>
        public BatchOptions Options { get; }

        /// <summary>The collator that pads the batches.</summary>
        public DataCollator Collator { get; }

        /// <summary>The examples batched.</summary>
        public IReadOnlyList<TrainingExample> Examples => _examples;

        /// <summary>Batches in every epoch: ceil(count / BatchSize), or floor with <see cref="BatchOptions.DropLast"/> (at least 1).</summary>
        public int BatchesPerEpoch
        {
            get
            {
                int n = _examples.Count, b = Options.BatchSize;
                return Options.DropLast && n >= b ? n / b : (n + b - 1) / b;
            }
        }

        /// <summary>The example indices of each batch of epoch <paramref name="epoch"/>, in order.</summary>
        public List<int[]> BatchIndices(int epoch)
        {
            int n = _examples.Count, size = Options.BatchSize;
            var random = new Random(DataShuffle.EpochSeed(Options.Seed, epoch));
            var order = new int[n];
            for (int i = 0; i < n; i++) order[i] = i;
            if (Options.Shuffle) DataShuffle.Shuffle(order, random);

            var batches = new List<int[]>();
            if (!Options.GroupByLength)
            {
                for (int s = 0; s < n; s += size) batches.Add(order.AsSpan(s, Math.Min(size, n - s)).ToArray());
            }
            else
            {
                int group = size * Options.GroupSizeMultiplier;
                for (int g = 0; g < n; g += group)
                {
                    int[] chunk = order.AsSpan(g, Math.Min(group, n - g)).ToArray();
                    // Stable: equal lengths keep the shuffled order.
                    var keyed = new (int Length, int Rank, int Index)[chunk.Length];
                    for (int k = 0; k < chunk.Length; k++) keyed[k] = (_examples[chunk[k]].Length, k, chunk[k]);
                    Array.Sort(keyed, (a, b) => a.Length != b.Length ? b.Length.CompareTo(a.Length) : a.Rank.CompareTo(b.Rank));
                    for (int s = 0; s < keyed.Length; s += size)
                    {
                        var batch = new int[Math.Min(size, keyed.Length - s)];
                        for (int k = 0; k < batch.Length; k++) batch[k] = keyed[s + k].Index;
                        batches.Add(batch);
                    }
                }
                if (Options.Shuffle) DataShuffle.Shuffle(batches, random);
            }
            if (Options.DropLast && n >= size)
                batches.RemoveAll(b => b.Length < size);
            return batches;
        }

        /// <summary>The padded batches of epoch <paramref name="epoch"/> (0-based), produced lazily.</summary>
        public IEnumerable<DataBatch> Epoch(int epoch)
        {
            foreach (int[] indices in BatchIndices(epoch))
            {
                var rows = new TrainingExample[indices.Length];
                for (int r = 0; r < rows.Length; r++) rows[r] = _examples[indices[r]];
                yield return Collator.Collate(rows, indices);
            }
        }
    }
}
