using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace GraLoRA.Data
{
    /// <summary>
    /// Reads dataset files (JSONL, JSON, CSV, Parquet) and in-memory records into a stream of <see cref="DataRecord"/>s
    /// that know their file and line or row.
    /// </summary>
    /// <remarks>
    /// Records are produced lazily, but the existence of the file is checked when <see cref="Read"/> is called. A source
    /// that yields no record at all fails (<c>DatasetEmpty</c>) once enumeration reaches its end. Text files must be
    /// UTF-8 (a byte-order mark is skipped); bytes that are not UTF-8 fail as <c>DatasetUnreadable</c>.
    /// </remarks>
    public static class DatasetReader
    {
        /// <summary>The format a file's extension implies: .jsonl/.ndjson, .json, .csv/.tsv, .parquet.</summary>
        /// <exception cref="GraloraException"><c>UnknownDatasetFileFormat</c> (InvalidArgument) for any other extension.</exception>
        public static DatasetFileFormat FormatFromExtension(string path)
        {
            ArgumentNullException.ThrowIfNull(path);
            return Path.GetExtension(path).ToLowerInvariant() switch
            {
                ".jsonl" or ".ndjson" => DatasetFileFormat.Jsonl,
                ".json" => DatasetFileFormat.Json,
                ".csv" or ".tsv" => DatasetFileFormat.Csv,
                ".parquet" or ".pq" => DatasetFileFormat.Parquet,
                string ext => throw new GraloraException("UnknownDatasetFileFormat", GraloraErrorKind.InvalidArgument,
                    $"Cannot tell the format of dataset '{Path.GetFileName(path)}' from its extension '{ext}': use .jsonl, .json, .csv, .tsv or .parquet, or name the format (Jsonl, Json, Csv, Parquet).", path),
            };
        }

        /// <summary>Reads the records of a dataset file.</summary>
        /// <param name="path">The file.</param>
        /// <param name="format">Its format; null: from the extension (<see cref="FormatFromExtension"/>).</param>
        /// <exception cref="GraloraException">
        /// <c>DatasetNotFound</c> (NotFound) when the file does not exist; while enumerating: <c>DatasetEmpty</c> when it
        /// holds no record, <c>DatasetUnreadable</c> when it cannot be read or is corrupt, <c>InvalidDatasetRecord</c>
        /// for a malformed line or record (the message names file and line, index or row).
        /// </exception>
        public static IEnumerable<DataRecord> Read(string path, DatasetFileFormat? format = null)
        {
            if (string.IsNullOrWhiteSpace(path))
                throw new GraloraException("DatasetNotFound", GraloraErrorKind.InvalidArgument, "No dataset path given: pass a .jsonl, .json, .csv or .parquet file.");
            string full = Path.GetFullPath(path);
            if (!File.Exists(full))
                throw new GraloraException("DatasetNotFound", GraloraErrorKind.NotFound,
                    Directory.Exists(full)
                        ? $"Dataset '{full}' is a folder: pass one of its files (e.g. train.jsonl)."
                        : $"Dataset file '{full}' does not exist: check the path.", full);
            DatasetFileFormat f = format ?? FormatFromExtension(full);
            IEnumerable<DataRecord> records = f switch
            {
                DatasetFileFormat.Jsonl => JsonlDatasetReader.Read(full),
                DatasetFileFormat.Json => JsonDatasetReader.Read(full),
                DatasetFileFormat.Csv => CsvDatasetReader.Read(full, Path.GetExtension(full).Equals(".tsv", StringComparison.OrdinalIgnoreCase) ? '\t' : ','),
                DatasetFileFormat.Parquet => ParquetDatasetReader.Read(full),
                _ => throw new ArgumentOutOfRangeException(nameof(format)),
            };
            return Guard(records, full, DescribeEmpty(f));
        }

        /// <summary>
        /// Wraps in-memory records (e.g. objects piped from PowerShell, already converted to dictionaries) as
        /// <see cref="DataRecord"/>s numbered from 0. Values are normalised: integers to long, floating point to double,
        /// dictionaries and lists recursively.
        /// </summary>
        /// <param name="records">The records; a null entry fails with <c>InvalidDatasetRecord</c>.</param>
        /// <param name="sourceName">What errors call this data (default "input").</param>
        /// <exception cref="GraloraException">While enumerating: <c>DatasetEmpty</c> when there is no record.</exception>
        public static IEnumerable<DataRecord> FromRecords(IEnumerable<IReadOnlyDictionary<string, object?>?> records, string sourceName = "input")
        {
            ArgumentNullException.ThrowIfNull(records);
            ArgumentNullException.ThrowIfNull(sourceName);
            return Guard(Wrap(records, sourceName), sourceName, "no records were given");

            static IEnumerable<DataRecord> Wrap(IEnumerable<IReadOnlyDictionary<string, object?>?> records, string name)
            {
                long i = 0;
                foreach (var r in records)
                {
                    if (r == null)
                        throw DataErrors.At(name, i, RecordPositionKind.Record, "the record is null: pass objects with the dataset's fields.");
                    yield return new DataRecord(DataValues.NormalizeDictionary(r), name, i++, RecordPositionKind.Record);
                }
            }
        }

        static string DescribeEmpty(DatasetFileFormat f) => f switch
        {
            DatasetFileFormat.Jsonl => "it has no JSON lines",
            DatasetFileFormat.Json => "it has no records",
            DatasetFileFormat.Csv => "it has no rows below the header",
            _ => "it has no rows",
        };

        /// <summary>Turns I/O and decoding failures into <c>DatasetUnreadable</c> and no records into <c>DatasetEmpty</c>.</summary>
        static IEnumerable<DataRecord> Guard(IEnumerable<DataRecord> records, string source, string emptyReason)
        {
            IEnumerator<DataRecord> e;
            try { e = records.GetEnumerator(); }
            catch (Exception ex) when (IsReadFailure(ex)) { throw Wrap(ex, source); }
            using (e)
            {
                bool any = false;
                while (true)
                {
                    try
                    {
                        if (!e.MoveNext()) break;
                    }
                    catch (Exception ex) when (IsReadFailure(ex)) { throw Wrap(ex, source); }
                    any = true;
                    yield return e.Current;
                }
                if (!any) throw DataErrors.Empty(source, emptyReason);
            }
        }

        static bool IsReadFailure(Exception ex) => ex is IOException or UnauthorizedAccessException or DecoderFallbackException;

        static GraloraException Wrap(Exception ex, string source) => ex is DecoderFallbackException
            ? DataErrors.Unreadable(source, "it is not UTF-8 text (is it a binary file with the wrong extension?)", ex)
            : DataErrors.IO(source, ex);

        /// <summary>UTF-8 that fails on invalid bytes instead of replacing them.</summary>
        internal static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

        internal static StreamReader OpenText(string path) =>
            new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan), StrictUtf8, detectEncodingFromByteOrderMarks: false);
    }
}
