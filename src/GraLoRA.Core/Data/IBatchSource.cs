using System.Collections.Generic;

namespace GraLoRA.Data
{
    /// <summary>Batches whose order is a function of the epoch, so a run can resume mid-epoch (what the trainer consumes).</summary>
    public interface IBatchSource
    {
        /// <summary>Batches in one epoch.</summary>
        int BatchesPerEpoch { get; }
        /// <summary>The batches of <paramref name="epoch"/>, in order; the same epoch always gives the same order.</summary>
        IEnumerable<DataBatch> Epoch(int epoch);
    }
}
