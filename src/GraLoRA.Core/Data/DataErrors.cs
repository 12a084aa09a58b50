using System;
using System.IO;

namespace GraLoRA.Data
{
    /// <summary>The exceptions of the data pipeline, each naming the file and the line or row, and the fix.</summary>
    internal static class DataErrors
    {
        public static string Location(string source, long position, RecordPositionKind kind)
        {
            string name = DisplayName(source);
            return kind switch
            {
                RecordPositionKind.Line => $"'{name}' line {position}",
                RecordPositionKind.Index => $"'{name}' index {position}",
                RecordPositionKind.Row => $"'{name}' row {position}",
                _ => $"'{name}' record {position}",
            };
        }

        /// <summary>The file name of a path (what messages show), or the text itself for in-memory sources.</summary>
        public static string DisplayName(string source)
        {
            string name = Path.GetFileName(source);
            return string.IsNullOrEmpty(name) ? source : name;
        }

        /// <summary><c>InvalidDatasetRecord</c>: a record that cannot be used, at <paramref name="record"/>'s location.</summary>
        public static GraloraException Record(DataRecord record, string problem, string errorId = "InvalidDatasetRecord") =>
            new(errorId, GraloraErrorKind.InvalidData, $"{record.Location}: {problem}", record.Source);

        /// <summary>A malformed place in a file (a line that is not JSON, an unterminated quote...).</summary>
        public static GraloraException At(string source, long position, RecordPositionKind kind, string problem, Exception? inner = null) =>
            new("InvalidDatasetRecord", GraloraErrorKind.InvalidData, $"{Location(source, position, kind)}: {problem}", source, inner);

        public static GraloraException Empty(string source, string what) =>
            new("DatasetEmpty", GraloraErrorKind.InvalidData,
                $"Dataset '{DisplayName(source)}' is empty: {what}. Add at least one record ({source}).", source);

        public static GraloraException Unreadable(string source, string problem, Exception? inner = null) =>
            new("DatasetUnreadable", GraloraErrorKind.InvalidData, $"Dataset '{DisplayName(source)}' cannot be read: {problem} ({source}).", source, inner);

        public static GraloraException IO(string source, Exception inner) =>
            new("DatasetUnreadable", GraloraErrorKind.IOFailure, $"Dataset '{DisplayName(source)}' cannot be read: {inner.Message} ({source}).", source, inner);
    }
}
