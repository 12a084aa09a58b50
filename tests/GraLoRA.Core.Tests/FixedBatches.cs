using System.Collections.Generic;
using GraLoRA.Data;

namespace GraLoRA.Tests
{
    /// <summary>A batch source for tests: the same batches, in the same order, every epoch.</summary>
    internal sealed class FixedBatches : IBatchSource
    {
        readonly IReadOnlyList<DataBatch> _batches;
        public FixedBatches(IReadOnlyList<DataBatch> batches) => _batches = batches;
        public int BatchesPerEpoch => _batches.Count;
        public IEnumerable<DataBatch> Epoch(int epoch) => _batches;
    }
}
