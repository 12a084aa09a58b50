using System;

namespace GraLoRA.Data
{
    /// <summary>
    /// One tokenised training sequence. <see cref="Labels"/> is aligned with <see cref="InputIds"/> (transformers'
    /// convention): the loss at position t compares the model's prediction made from positions 0..t−1 with
    /// <c>Labels[t]</c>, so the trainer shifts by one (logits[:, :-1] against labels[:, 1:]); <see cref="IgnoreIndex"/>
    /// marks positions without loss.
    /// </summary>
    public sealed class TrainingExample
    {
        /// <summary>The label of positions that do not count in the loss (PyTorch's cross-entropy ignore_index).</summary>
        public const int IgnoreIndex = -100;

        /// <summary>Creates an example; <paramref name="labels"/> (and the ids of a packed example) must be as long as <paramref name="inputIds"/>.</summary>
        public TrainingExample(int[] inputIds, int[] labels, int? classLabel = null, int[]? positionIds = null, int[]? segmentIds = null, int[]? tokenTypeIds = null)
        {
            InputIds = inputIds ?? throw new ArgumentNullException(nameof(inputIds));
            Labels = labels ?? throw new ArgumentNullException(nameof(labels));
            if (labels.Length != inputIds.Length)
                throw new ArgumentException($"Labels ({labels.Length}) and input ids ({inputIds.Length}) differ in length.", nameof(labels));
            if (positionIds != null && positionIds.Length != inputIds.Length)
                throw new ArgumentException($"Position ids ({positionIds.Length}) and input ids ({inputIds.Length}) differ in length.", nameof(positionIds));
            if (segmentIds != null && segmentIds.Length != inputIds.Length)
                throw new ArgumentException($"Segment ids ({segmentIds.Length}) and input ids ({inputIds.Length}) differ in length.", nameof(segmentIds));
            if ((positionIds == null) != (segmentIds == null))
                throw new ArgumentException("A packed example needs both position ids and segment ids.", nameof(segmentIds));
            if (tokenTypeIds != null && tokenTypeIds.Length != inputIds.Length)
                throw new ArgumentException($"Token type ids ({tokenTypeIds.Length}) and input ids ({inputIds.Length}) differ in length.", nameof(tokenTypeIds));
            ClassLabel = classLabel;
            TokenTypeIds = tokenTypeIds;
            PositionIds = positionIds;
            SegmentIds = segmentIds;
        }

        /// <summary>Token ids.</summary>
        public int[] InputIds { get; }

        /// <summary>Target ids, aligned with <see cref="InputIds"/>; <see cref="IgnoreIndex"/> (−100) where there is no loss.</summary>
        public int[] Labels { get; }

        /// <summary>The class index of a classification example (into the label set), else null.</summary>
        public int? ClassLabel { get; }

        /// <summary>For sentence pairs: the token type of each token (0 first text, 1 second), as the tokenizer assigns them; null otherwise.</summary>
        public int[]? TokenTypeIds { get; }

        /// <summary>For packed examples: each token's position within its own sample (restarting at 0); null otherwise.</summary>
        public int[]? PositionIds { get; }

        /// <summary>For packed examples: which sample each token belongs to (1, 2, 3 …); null otherwise.</summary>
        public int[]? SegmentIds { get; }

        /// <summary>Whether this example concatenates samples (<see cref="PositionIds"/> and <see cref="SegmentIds"/> are set).</summary>
        public bool IsPacked => SegmentIds != null;

        /// <summary>Number of tokens.</summary>
        public int Length => InputIds.Length;

        /// <summary>Number of positions with a label (not <see cref="IgnoreIndex"/>).</summary>
        public int TargetCount
        {
            get
            {
                int n = 0;
                foreach (int l in Labels) if (l != IgnoreIndex) n++;
                return n;
            }
        }
    }
}
