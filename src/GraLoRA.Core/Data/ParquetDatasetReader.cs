using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using Parquet;
using Parquet.Serialization;

namespace GraLoRA.Data
{
    /// <summary>
    /// Parquet through Parquet.Net's untyped deserialiser, one row group at a time: string, integer, floating point and
    /// boolean columns, and nested ones such as <c>messages: list&lt;struct{role, content}&gt;</c> (lists become lists,
    /// structs dictionaries). Positions are 0-based rows counted across row groups.
    /// </summary>
    internal static class ParquetDatasetReader
    {
        public static IEnumerable<DataRecord> Read(string path)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (stream.Length == 0) yield break;
            int groups;
            try
            {
                var reader = ParquetReader.CreateAsync(stream, leaveStreamOpen: true).GetAwaiter().GetResult();
                try { groups = reader.RowGroupCount; }
                finally { reader.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
            }
            catch (Exception ex) when (ex is not GraloraException)
            {
                throw Corrupt(path, ex);
            }
            long row = 0;
            for (int g = 0; g < groups; g++)
            {
                IList<Dictionary<string, object?>> rows;
                try
                {
                    stream.Position = 0;
                    rows = ParquetSerializer.DeserializeUntypedAsync(stream, null, g).GetAwaiter().GetResult().Data!;
                }
                catch (Exception ex) when (ex is not GraloraException)
                {
                    throw Corrupt(path, ex);
                }
                foreach (var r in rows)
                {
                    var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
                    foreach (var (key, value) in r) fields[key] = Convert(value);
                    yield return new DataRecord(fields, path, row++, RecordPositionKind.Row);
                }
            }
        }

        // Parquet.Net reports a malformed file as IOException too ("not a parquet file"), so only access failures count as I/O.
        static GraloraException Corrupt(string path, Exception ex) => ex is UnauthorizedAccessException
            ? DataErrors.IO(path, ex)
            : DataErrors.Unreadable(path, $"it is not a valid Parquet file ({ex.Message})", ex);

        /// <summary>
        /// Parquet.Net values to record values: nested dictionaries and lists recursively, numbers widened, strings and byte
        /// arrays that come as ReadOnlyMemory (Parquet.Net's static PreferUntypedString/ByteArray are off) copied out.
        /// </summary>
        static object? Convert(object? value) => value switch
        {
            IDictionary<string, object?> d => ConvertDictionary(d),
            IDictionary d => DataValues.Normalize(d),
            string or byte[] => DataValues.Normalize(value),
            ReadOnlyMemory<char> chars => chars.ToString(),
            ReadOnlyMemory<byte> bytes => bytes.ToArray(),
            IEnumerable items => ConvertList(items),
            _ => DataValues.Normalize(value),
        };

        static Dictionary<string, object?> ConvertDictionary(IDictionary<string, object?> d)
        {
            var result = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, value) in d) result[key] = Convert(value);
            return result;
        }

        static List<object?> ConvertList(IEnumerable items)
        {
            var list = new List<object?>();
            foreach (object? item in items) list.Add(Convert(item));
            return list;
        }
    }
}
