using System;
using System.Collections.Generic;
using GraLoRA.Text;

namespace GraLoRA.Data
{
    /// <summary>Pads examples on the right into a <see cref="DataBatch"/>.</summary>
    public sealed class DataCollator
    {
        /// <summary>Creates a collator.</summary>
        /// <param name="padTokenId">Id written into padded positions (see <see cref="PadIdOf"/>).</param>
        /// <param name="padToMultipleOf">Round the batch's sequence length up to a multiple of this (null or 1: the longest row).</param>
        public DataCollator(int padTokenId, int? padToMultipleOf = null)
        {
            if (padToMultipleOf is < 1)
                throw new GraloraException("InvalidDataOptions", GraloraErrorKind.InvalidArgument, $"PadToMultipleOf {padToMultipleOf} must be at least 1 (e.g. 8).", padToMultipleOf);
            PadTokenId = padTokenId;
            PadToMultipleOf = padToMultipleOf;
        }

        /// <summary>The id of padded positions.</summary>
        public int PadTokenId { get; }

        /// <summary>The multiple the sequence length is rounded up to, or null.</summary>
        public int? PadToMultipleOf { get; }

        /// <summary>The pad id for a tokenizer: <see cref="HfTokenizer.PadTokenId"/>, else its first EOS id, else 0.</summary>
        public static int PadIdOf(HfTokenizer tokenizer)
        {
            ArgumentNullException.ThrowIfNull(tokenizer);
            return tokenizer.PadTokenId ?? (tokenizer.EosTokenIds.Count > 0 ? tokenizer.EosTokenIds[0] : 0);
        }

        /// <summary>Pads <paramref name="examples"/> into one batch (row r = examples[r]).</summary>
        /// <param name="examples">The rows; all classification examples or none.</param>
        /// <param name="exampleIndices">What <see cref="DataBatch.ExampleIndices"/> reports (null: 0, 1, 2 …).</param>
        public DataBatch Collate(IReadOnlyList<TrainingExample> examples, IReadOnlyList<int>? exampleIndices = null)
        {
            ArgumentNullException.ThrowIfNull(examples);
            if (examples.Count == 0) throw new ArgumentException("A batch needs at least one example.", nameof(examples));
            int rows = examples.Count, columns = 1;
            bool anyPacked = false, anyClass = false, allClass = true, anyTypes = false;
            foreach (var e in examples)
            {
                columns = Math.Max(columns, e.Length);
                anyPacked |= e.IsPacked;
                anyTypes |= e.TokenTypeIds != null;
                anyClass |= e.ClassLabel != null;
                allClass &= e.ClassLabel != null;
            }
            if (anyClass && !allClass)
                throw new ArgumentException("A batch mixes classification and language-modelling examples.", nameof(examples));
            if (PadToMultipleOf is int m && m > 1) columns = (columns + m - 1) / m * m;

            var ids = new long[rows * columns];
            var labels = new long[rows * columns];
            var mask = new long[rows * columns];
            var positions = new long[rows * columns];
            var segments = anyPacked ? new long[rows * columns] : null;
            var classes = allClass ? new long[rows] : null;
            var types = anyTypes ? new long[rows * columns] : null;
            Array.Fill(ids, PadTokenId);
            Array.Fill(labels, TrainingExample.IgnoreIndex);
            for (int r = 0; r < rows; r++)
            {
                var e = examples[r];
                int o = r * columns;
                for (int t = 0; t < e.Length; t++)
                {
                    ids[o + t] = e.InputIds[t];
                    labels[o + t] = e.Labels[t];
                    mask[o + t] = 1;
                    positions[o + t] = e.PositionIds?[t] ?? t;
                    if (segments != null) segments[o + t] = e.SegmentIds?[t] ?? 1;
                    if (types != null) types[o + t] = e.TokenTypeIds?[t] ?? 0;
                }
                if (classes != null) classes[r] = e.ClassLabel!.Value;
            }
            var indices = new int[rows];
            for (int r = 0; r < rows; r++) indices[r] = exampleIndices?[r] ?? r;
            return new DataBatch(rows, columns, ids, labels, mask, positions, segments, classes, indices, types);
        }
    }
}
