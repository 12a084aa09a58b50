using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace GraLoRA.Data
{
    /// <summary>The labels of a classification dataset, in index order; a record's label becomes its index.</summary>
    /// <remarks>Labels compare as text: numbers are written invariantly (e.g. 1, 2.5), booleans as "true"/"false".</remarks>
    public sealed class ClassLabelSet
    {
        readonly Dictionary<string, int> _index;

        /// <summary>A label set in the given order.</summary>
        /// <exception cref="GraloraException"><c>InvalidClassLabels</c> (InvalidArgument) when it is empty or repeats a label.</exception>
        public ClassLabelSet(IEnumerable<string> labels)
        {
            ArgumentNullException.ThrowIfNull(labels);
            Labels = labels.ToArray();
            if (Labels.Count == 0)
                throw new GraloraException("InvalidClassLabels", GraloraErrorKind.InvalidArgument, "The label set is empty: give at least two labels.");
            _index = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < Labels.Count; i++)
                if (Labels[i] == null || !_index.TryAdd(Labels[i], i))
                    throw new GraloraException("InvalidClassLabels", GraloraErrorKind.InvalidArgument,
                        Labels[i] == null ? "The label set contains null: every label must be text." : $"The label set lists '{Labels[i]}' twice: give each label once.", Labels[i]);
        }

        /// <summary>The labels; a label's index is its class id.</summary>
        public IReadOnlyList<string> Labels { get; }

        /// <summary>Number of classes.</summary>
        public int Count => Labels.Count;

        /// <summary>The class id of <paramref name="label"/>, or null when it is not in the set.</summary>
        public int? IndexOf(string label) => _index.TryGetValue(label, out int i) ? i : null;

        /// <summary>
        /// The distinct labels of <paramref name="records"/> (field <c>label</c>), sorted: numerically when every label is
        /// an integer, else ordinally (culture-independent).
        /// </summary>
        /// <exception cref="GraloraException"><c>InvalidDatasetRecord</c> when a record has no label.</exception>
        public static ClassLabelSet FromRecords(IEnumerable<DataRecord> records)
        {
            ArgumentNullException.ThrowIfNull(records);
            var distinct = new HashSet<string>(StringComparer.Ordinal);
            foreach (var r in records) distinct.Add(LabelOf(r));
            bool allIntegers = distinct.All(s => long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _));
            var sorted = allIntegers
                ? distinct.OrderBy(s => long.Parse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture))
                : distinct.OrderBy(s => s, StringComparer.Ordinal);
            return new ClassLabelSet(sorted);
        }

        /// <summary>The class id of <paramref name="record"/>'s label.</summary>
        /// <exception cref="GraloraException"><c>UnknownClassLabel</c> (InvalidData) naming the record and the label when it is not in the set.</exception>
        public int IndexOf(DataRecord record)
        {
            string label = LabelOf(record);
            return IndexOf(label) ?? throw DataErrors.Record(record,
                $"label '{label}' is not one of the {Count} training labels ({string.Join(", ", Labels.Take(20).Select(l => "'" + l + "'"))}{(Count > 20 ? ", ..." : "")}); fix the label or add it to the label set.",
                "UnknownClassLabel");
        }

        /// <summary>The text of a record's <c>label</c> field.</summary>
        internal static string LabelOf(DataRecord record) => record["label"] switch
        {
            null => throw DataErrors.Record(record, "field 'label' is missing (classification records need text and label).", "DatasetFieldMissing"),
            bool b => b ? "true" : "false",
            object v => DataRecord.FormatValue(v),
        };
    }
}
