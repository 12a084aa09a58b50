using System;
using System.Collections.Generic;
using System.Globalization;

namespace GraLoRA.Data
{
    /// <summary>How a record's position in its source is counted, for error messages.</summary>
    public enum RecordPositionKind
    {
        /// <summary>A 1-based line number of a text file (JSONL; CSV, where the header is line 1 and a record starts on its first line).</summary>
        Line,
        /// <summary>A 0-based index into a JSON top-level array (or its "data"/"train" array).</summary>
        Index,
        /// <summary>A 0-based row of a Parquet file, counted across row groups (as pandas shows it).</summary>
        Row,
        /// <summary>A 0-based position in an in-memory sequence of records (e.g. objects piped from PowerShell).</summary>
        Record,
    }

    /// <summary>
    /// One record of a dataset: its fields, as plain .NET values, and where it came from.
    /// </summary>
    /// <remarks>
    /// Field values are <c>null</c>, <see cref="string"/>, <see cref="long"/>, <see cref="double"/>, <see cref="bool"/>,
    /// a list (<see cref="IReadOnlyList{T}"/> of object?) or a nested record (<see cref="IReadOnlyDictionary{TKey, TValue}"/>
    /// of string to object?); in-memory records may hold other values, which are used through their
    /// <see cref="object.ToString"/> where text is needed. Field names compare ordinally (case-sensitive), as in
    /// Hugging Face datasets.
    /// </remarks>
    public sealed class DataRecord
    {
        /// <summary>Creates a record.</summary>
        /// <param name="fields">The record's fields.</param>
        /// <param name="source">The file it was read from (as shown in errors: its file name), or a name for in-memory data.</param>
        /// <param name="position">Its line, index, row or record number (see <paramref name="positionKind"/>).</param>
        /// <param name="positionKind">How <paramref name="position"/> is counted.</param>
        public DataRecord(IReadOnlyDictionary<string, object?> fields, string source, long position, RecordPositionKind positionKind)
        {
            Fields = fields ?? throw new ArgumentNullException(nameof(fields));
            Source = source ?? throw new ArgumentNullException(nameof(source));
            Position = position;
            PositionKind = positionKind;
        }

        /// <summary>The record's fields.</summary>
        public IReadOnlyDictionary<string, object?> Fields { get; }

        /// <summary>The full path of the file it came from, or the name given to in-memory data.</summary>
        public string Source { get; }

        /// <summary>Line (1-based), index, row or record (0-based) of the record in <see cref="Source"/>; see <see cref="PositionKind"/>.</summary>
        public long Position { get; }

        /// <summary>How <see cref="Position"/> is counted.</summary>
        public RecordPositionKind PositionKind { get; }

        /// <summary>Where the record is, for messages: e.g. <c>'train.jsonl' line 17</c>, <c>'train.parquet' row 4</c>.</summary>
        public string Location => DataErrors.Location(Source, Position, PositionKind);

        /// <summary>The value of <paramref name="name"/>, or null when the field is absent.</summary>
        public object? this[string name] => Fields.TryGetValue(name, out object? value) ? value : null;

        /// <summary>Whether the record has a field <paramref name="name"/> whose value is not null.</summary>
        public bool Has(string name) => Fields.TryGetValue(name, out object? value) && value != null;

        /// <inheritdoc/>
        public override string ToString() => Location + " {" + string.Join(", ", Fields.Keys) + "}";

        internal static string FormatValue(object? value) => value switch
        {
            null => "null",
            string s => s,
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
    }
}
