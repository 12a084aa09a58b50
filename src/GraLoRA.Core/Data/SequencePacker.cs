using System;
using System.Collections.Generic;

namespace GraLoRA.Data
{
    /// <summary>
    /// Packs short examples into sequences of up to a maximum length, for fewer padding tokens.
    /// </summary>
    /// <remarks>
    /// Greedy and order-preserving ("next fit"): examples are appended to the current sequence while they fit, and a new
    /// sequence starts when the next one does not. Examples are never split (each is at most the maximum length, as
    /// truncation guarantees). Each packed example carries <see cref="TrainingExample.PositionIds"/> restarting at 0 for
    /// every sample and <see cref="TrainingExample.SegmentIds"/> 1, 2, 3 … per sample (0 is left for padding), so the
    /// model can build a block-diagonal causal mask. The label of each sample's first token is −100, so no sample's
    /// first token is predicted from the previous sample.
    /// </remarks>
    public static class SequencePacker
    {
        /// <summary>Packs <paramref name="examples"/> in their order into sequences of at most <paramref name="maxLength"/> tokens.</summary>
        /// <exception cref="GraloraException"><c>InvalidDataOptions</c> for classification examples, already packed ones, or one longer than <paramref name="maxLength"/>.</exception>
        public static List<TrainingExample> Pack(IReadOnlyList<TrainingExample> examples, int maxLength)
        {
            ArgumentNullException.ThrowIfNull(examples);
            if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength));
            var packed = new List<TrainingExample>();
            var current = new List<TrainingExample>();
            int length = 0;
            foreach (var e in examples)
            {
                if (e.ClassLabel != null || e.IsPacked)
                    throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument,
                        e.IsPacked ? "Examples are already packed." : "Classification examples cannot be packed: turn Packing off.");
                if (e.Length > maxLength)
                    throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument,
                        $"An example of {e.Length} tokens does not fit in packed sequences of {maxLength}: truncate to the same MaxLength first.", e.Length);
                if (e.Length == 0) continue;
                if (length + e.Length > maxLength)
                {
                    packed.Add(Concatenate(current, length));
                    current.Clear();
                    length = 0;
                }
                current.Add(e);
                length += e.Length;
            }
            if (current.Count > 0) packed.Add(Concatenate(current, length));
            return packed;
        }

        static TrainingExample Concatenate(List<TrainingExample> samples, int length)
        {
            var ids = new int[length];
            var labels = new int[length];
            var positions = new int[length];
            var segments = new int[length];
            int offset = 0;
            for (int s = 0; s < samples.Count; s++)
            {
                var e = samples[s];
                e.InputIds.CopyTo(ids, offset);
                e.Labels.CopyTo(labels, offset);
                labels[offset] = TrainingExample.IgnoreIndex;
                for (int t = 0; t < e.Length; t++)
                {
                    positions[offset + t] = t;
                    segments[offset + t] = s + 1;
                }
                offset += e.Length;
            }
            return new TrainingExample(ids, labels, null, positions, segments);
        }
    }
}
