using System;
using TorchSharp;

namespace GraLoRA.Data
{
    /// <summary>
    /// A padded batch as plain row-major arrays of shape [<see cref="BatchSize"/>, <see cref="SequenceLength"/>]
    /// (element [r, t] at r × SequenceLength + t), ready to become int64 tensors (<see cref="ToTensors"/>).
    /// </summary>
    /// <remarks>
    /// Rows are padded on the right with the pad id; padded positions have attention mask 0, label −100, position 0
    /// and segment 0. Labels are aligned with the inputs (see <see cref="TrainingExample"/>): shift them in the loss.
    /// </remarks>
    public sealed class DataBatch
    {
        internal DataBatch(int batchSize, int sequenceLength, long[] inputIds, long[] labels, long[] attentionMask, long[] positionIds,
            long[]? segmentIds, long[]? classLabels, int[] exampleIndices, long[]? tokenTypeIds = null)
        {
            TokenTypeIds = tokenTypeIds;
            BatchSize = batchSize;
            SequenceLength = sequenceLength;
            InputIds = inputIds;
            Labels = labels;
            AttentionMask = attentionMask;
            PositionIds = positionIds;
            SegmentIds = segmentIds;
            ClassLabels = classLabels;
            ExampleIndices = exampleIndices;
        }

        /// <summary>Number of rows.</summary>
        public int BatchSize { get; }
        /// <summary>Number of columns: the longest row (rounded up to the collator's multiple).</summary>
        public int SequenceLength { get; }
        /// <summary>Token ids, padding = the pad id.</summary>
        public long[] InputIds { get; }
        /// <summary>Labels aligned with <see cref="InputIds"/>; −100 where there is no loss, padding included.</summary>
        public long[] Labels { get; }
        /// <summary>1 for real tokens, 0 for padding.</summary>
        public long[] AttentionMask { get; }
        /// <summary>Position of each token within its sample: 0, 1, 2 … per row, restarting at each packed sample; 0 for padding.</summary>
        public long[] PositionIds { get; }
        /// <summary>
        /// When any row is packed: the sample of each token (1, 2, 3 … within the row; an unpacked row is all 1), 0 for
        /// padding; a token may attend to earlier tokens of the same segment only. Null when no row is packed (the
        /// ordinary causal mask plus <see cref="AttentionMask"/> suffices).
        /// </summary>
        public long[]? SegmentIds { get; }
        /// <summary>Token type ids (0 first text, 1 second; 0 for padding) when any row is a sentence pair; else null.</summary>
        public long[]? TokenTypeIds { get; }
        /// <summary>Class ids, one per row, for classification batches; else null.</summary>
        public long[]? ClassLabels { get; }
        /// <summary>Which examples (indices into the loader's list) the rows are, in row order.</summary>
        public int[] ExampleIndices { get; }

        /// <summary>The [BatchSize, SequenceLength] shape.</summary>
        public long[] Shape => new long[] { BatchSize, SequenceLength };

        /// <summary>Number of real (non-padding) tokens.</summary>
        public int TokenCount
        {
            get
            {
                int n = 0;
                foreach (long m in AttentionMask) n += (int)m;
                return n;
            }
        }

        /// <summary>Number of positions whose label is not −100 (before any shift).</summary>
        public int TargetCount
        {
            get
            {
                int n = 0;
                foreach (long l in Labels) if (l != TrainingExample.IgnoreIndex) n++;
                return n;
            }
        }

        /// <summary>The batch as int64 tensors on <paramref name="device"/> (null: CPU). Dispose the result.</summary>
        public DataBatchTensors ToTensors(torch.Device? device = null)
        {
            TorchRuntime.EnsureInitialized();
            torch.Tensor Make(long[] data, long[] shape)
            {
                using var cpu = torch.tensor(data, shape, torch.int64);
                return device == null || device.type == DeviceType.CPU ? cpu.clone() : cpu.to(device);
            }
            long[] shape = Shape;
            return new DataBatchTensors(
                Make(InputIds, shape), Make(Labels, shape), Make(AttentionMask, shape), Make(PositionIds, shape),
                SegmentIds == null ? null : Make(SegmentIds, shape),
                ClassLabels == null ? null : Make(ClassLabels, new long[] { BatchSize }));
        }
    }

    /// <summary>A <see cref="DataBatch"/> as int64 tensors of shape [batch, sequence] (class labels: [batch]).</summary>
    public sealed class DataBatchTensors : IDisposable
    {
        internal DataBatchTensors(torch.Tensor inputIds, torch.Tensor labels, torch.Tensor attentionMask, torch.Tensor positionIds,
            torch.Tensor? segmentIds, torch.Tensor? classLabels)
        {
            InputIds = inputIds;
            Labels = labels;
            AttentionMask = attentionMask;
            PositionIds = positionIds;
            SegmentIds = segmentIds;
            ClassLabels = classLabels;
        }

        /// <summary>Token ids.</summary>
        public torch.Tensor InputIds { get; }
        /// <summary>Labels (−100: no loss).</summary>
        public torch.Tensor Labels { get; }
        /// <summary>1 for tokens, 0 for padding.</summary>
        public torch.Tensor AttentionMask { get; }
        /// <summary>Positions within each sample.</summary>
        public torch.Tensor PositionIds { get; }
        /// <summary>Segment ids of packed batches, else null.</summary>
        public torch.Tensor? SegmentIds { get; }
        /// <summary>Class ids of classification batches, else null.</summary>
        public torch.Tensor? ClassLabels { get; }

        /// <summary>Disposes every tensor.</summary>
        public void Dispose()
        {
            InputIds.Dispose();
            Labels.Dispose();
            AttentionMask.Dispose();
            PositionIds.Dispose();
            SegmentIds?.Dispose();
            ClassLabels?.Dispose();
        }
    }
}
