using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace GraLoRA.Training
{
    /// <summary>
    /// One micro-batch, right-padded, row-major [Rows, Columns]: token ids, labels (−100 = no loss), attention mask,
    /// and for packed sequences position ids and segment ids.
    /// </summary>
    public sealed record TrainingBatch(long[] InputIds, long[] Labels, long[] AttentionMask, int Rows, int Columns,
                                       long[]? PositionIds = null, long[]? SegmentIds = null)
    {
        /// <summary>Label value that contributes no loss.</summary>
        public const long IgnoreIndex = -100;

        /// <summary>Tokens that are predicted (a label at column ≥ 1 that is not ignored: the causal shift drops column 0).</summary>
        public long PredictedTokens
        {
            get
            {
                long n = 0;
                for (int r = 0; r < Rows; r++)
                    for (int c = 1; c < Columns; c++)
                        if (Labels[r * Columns + c] != IgnoreIndex) n++;
                return n;
            }
        }

        internal Tensor Tensor(long[] values, Device device) => tensor(values, new long[] { Rows, Columns }, device: device);
    }

    /// <summary>A source of micro-batches whose order is a function of the epoch (so a run can resume mid-epoch).</summary>
    public interface ITrainingData
    {
        /// <summary>Micro-batches in one epoch.</summary>
        int BatchesPerEpoch { get; }
        /// <summary>The micro-batches of <paramref name="epoch"/>, in order; the same epoch always gives the same order.</summary>
        IEnumerable<TrainingBatch> Batches(int epoch);
    }

    /// <summary>Fixed batches, reshuffled per epoch from a seed (or kept in order).</summary>
    public sealed class BatchList : ITrainingData
    {
        readonly IReadOnlyList<TrainingBatch> _batches;
        readonly long? _seed;

        /// <summary>Wraps <paramref name="batches"/>; with <paramref name="shuffleSeed"/>, each epoch uses its own permutation.</summary>
        public BatchList(IReadOnlyList<TrainingBatch> batches, long? shuffleSeed = null)
        {
            if (batches.Count == 0) throw new GraloraException("EmptyDataset", GraloraErrorKind.InvalidArgument, "The training data has no batches.");
            _batches = batches;
            _seed = shuffleSeed;
        }

        /// <inheritdoc />
        public int BatchesPerEpoch => _batches.Count;

        /// <inheritdoc />
        public IEnumerable<TrainingBatch> Batches(int epoch)
        {
            if (_seed is null) return _batches;
            var order = Enumerable.Range(0, _batches.Count).ToArray();
            new Random(unchecked((int)(_seed.Value * 1_000_003L + epoch))).Shuffle(order);   // deterministic across processes (HashCode is not)
            return order.Select(i => _batches[i]);
        }
    }
}
