using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Data;

namespace GraLoRA.Tests
{
    /// <summary>Synthetic language-modelling batches for tests that train or measure on a tiny model.</summary>
    internal static class TestBatches
    {
        /// <summary>
        /// <paramref name="count"/> batches of <paramref name="rows"/> × <paramref name="columns"/> tokens, token t of batch i
        /// being <paramref name="token"/>(t, i), labels the tokens themselves; the last <paramref name="padding"/> positions
        /// of each batch are padding (masked, ignored by the loss).
        /// </summary>
        public static IBatchSource Tokens(int count, int rows, int columns, Func<int, int, long> token, int padding = 0)
        {
            var list = new List<DataBatch>();
            for (int i = 0; i < count; i++)
            {
                var ids = Enumerable.Range(0, rows * columns).Select(t => token(t, i)).ToArray();
                var labels = ids.ToArray();
                var mask = Enumerable.Repeat(1L, rows * columns).ToArray();
                for (int p = 1; p <= padding; p++)
                {
                    mask[^p] = 0;
                    labels[^p] = TrainingExample.IgnoreIndex;
                }
                var positions = Enumerable.Range(0, rows).SelectMany(_ => Enumerable.Range(0, columns).Select(c => (long)c)).ToArray();
                list.Add(new DataBatch(rows, columns, ids, labels, mask, positions, null, null, Enumerable.Range(0, rows).ToArray()));
            }
            return new Fixed(list);
        }

        sealed class Fixed : IBatchSource
        {
            readonly IReadOnlyList<DataBatch> _batches;
            public Fixed(IReadOnlyList<DataBatch> batches) => _batches = batches;
            public int BatchesPerEpoch => _batches.Count;
            public IEnumerable<DataBatch> Epoch(int epoch) => _batches;
        }
    }

    /// <summary>An <see cref="IProgress{T}"/> that reports synchronously, on the reporting thread (System.Progress posts to the thread pool).</summary>
    internal sealed class SyncProgress<T> : IProgress<T>
    {
        readonly Action<T> _report;
        public SyncProgress(Action<T> report) => _report = report;
        public void Report(T value) => _report(value);
    }
}
