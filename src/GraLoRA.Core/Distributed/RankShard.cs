using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Data;

namespace GraLoRA.Distributed
{
    /// <summary>
    /// One rank's share of a stream of global batches: of each batch of B rows, rank r of W takes the contiguous rows
    /// [⌊rB/W⌋, ⌊(r+1)B/W⌋), so the ranks together see every row once, in the single-process order. Rows keep the
    /// global batch's sequence length (the padding is the same as in one process). A rank whose share of a small last
    /// batch is empty gets a batch of 0 rows, so every rank steps through the same number of micro-batches; with
    /// <c>skipEmpty</c> (evaluation) those are left out.
    /// </summary>
    public sealed class RankShard : IBatchSource
    {
        readonly IBatchSource _global;
        readonly bool _skipEmpty;

        /// <summary>Rank <paramref name="rank"/> of <paramref name="worldSize"/>'s share of <paramref name="global"/>.</summary>
        public RankShard(IBatchSource global, int rank, int worldSize, bool skipEmpty = false)
        {
            if (worldSize < 1 || rank < 0 || rank >= worldSize) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} of {worldSize}");
            _global = global;
            Rank = rank;
            WorldSize = worldSize;
            _skipEmpty = skipEmpty;
        }

        /// <summary>This rank.</summary>
        public int Rank { get; }
        /// <summary>The number of ranks sharing each batch.</summary>
        public int WorldSize { get; }

        /// <inheritdoc />
        public int BatchesPerEpoch => _global.BatchesPerEpoch;

        /// <summary>Rows of the first global batch of epoch 0 (the global batch size), or 0 when there is none.</summary>
        public int GlobalBatchRows => _global.Epoch(0).FirstOrDefault()?.BatchSize ?? 0;

        /// <inheritdoc />
        public IEnumerable<DataBatch> Epoch(int epoch)
        {
            foreach (var batch in _global.Epoch(epoch))
            {
                var (from, count) = RowsOf(batch.BatchSize, Rank, WorldSize);
                if (count == 0 && _skipEmpty) continue;
                yield return Slice(batch, from, count);
            }
        }

        /// <summary>The first row and row count rank <paramref name="rank"/> of <paramref name="worldSize"/> takes of a batch of <paramref name="rows"/>.</summary>
        public static (int From, int Count) RowsOf(int rows, int rank, int worldSize)
        {
            int from = (int)((long)rows * rank / worldSize), to = (int)((long)rows * (rank + 1) / worldSize);
            return (from, to - from);
        }

        /// <summary>Rows [<paramref name="from"/>, <paramref name="from"/> + <paramref name="count"/>) of <paramref name="batch"/>.</summary>
        public static DataBatch Slice(DataBatch batch, int from, int count)
        {
            if (from == 0 && count == batch.BatchSize) return batch;
            int length = batch.SequenceLength;
            long[] Rows(long[] matrix) => matrix.AsSpan(from * length, count * length).ToArray();
            long[]? Optional(long[]? matrix) => matrix is null ? null : Rows(matrix);
            return new DataBatch(count, length, Rows(batch.InputIds), Rows(batch.Labels), Rows(batch.AttentionMask), Rows(batch.PositionIds),
                Optional(batch.SegmentIds), batch.ClassLabels?.AsSpan(from, count).ToArray(), batch.ExampleIndices.AsSpan(from, count).ToArray(),
                Optional(batch.TokenTypeIds));
        }
    }
}
