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
            CheckFooter(path, stream);
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

        /// <summary>
        /// Walks the file's Thrift footer (the FileMetaData struct) with strict bounds before Parquet.Net sees it: a list or
        /// map that claims more elements than bytes remain, nesting deeper than 64, a read past the end, or a known field
        /// of the wrong wire type is refused. Parquet.Net 6.1 reads known fields without checking their wire type, and a
        /// mismatch makes it spin forever at the end of the footer (found by FuzzTests; kept in fuzz-regressions/parquet).
        /// </summary>
        internal static void CheckFooter(string path, Stream stream)
        {
            long length = stream.Length;
            GraloraException Bad(string problem) => DataErrors.Unreadable(path, $"it is not a valid Parquet file ({problem})");
            if (length < 12) throw Bad("too short for the PAR1 header and footer");
            var tail = new byte[8];
            stream.Position = length - 8;
            stream.ReadExactly(tail);
            if (tail[4] != 'P' || tail[5] != 'A' || tail[6] != 'R' || tail[7] != '1') throw Bad("no PAR1 magic at the end");
            long metadataLength = BitConverter.ToInt32(tail, 0);
            if (metadataLength <= 0 || metadataLength > length - 12) throw Bad($"footer length {metadataLength} does not fit a file of {length} bytes");
            var footer = new byte[metadataLength];
            stream.Position = length - 8 - metadataLength;
            stream.ReadExactly(footer);
            stream.Position = 0;
            int at = 0;
            try { SkipStruct(footer, ref at, 0, "FileMetaData"); }
            catch (InvalidDataException ex) { throw Bad("malformed footer metadata: " + ex.Message); }
        }

        // Wire types of the Thrift compact protocol.
        const int Bool = 1, Byte = 3, I16 = 4, I32 = 5, I64 = 6, Double = 7, Binary = 8, List = 9, Set = 10, Map = 11, Struct = 12;

        /// <summary>
        /// The fields of parquet.thrift's structs that Parquet.Net reads without looking at the wire type: a field of another
        /// type there desynchronises its reader, which then loops on end-of-data. (field → wire type, element type for
        /// lists, struct name for structs and lists of structs.)
        /// </summary>
        static readonly Dictionary<string, Dictionary<int, (int Type, int Element, string? Struct)>> Known = new()
        {
            ["FileMetaData"] = new()
            {
                [1] = (I32, 0, null), [2] = (List, Struct, "SchemaElement"), [3] = (I64, 0, null), [4] = (List, Struct, "RowGroup"),
                [5] = (List, Struct, "KeyValue"), [6] = (Binary, 0, null), [7] = (List, Struct, null), [8] = (Struct, 0, null), [9] = (Binary, 0, null),
            },
            ["SchemaElement"] = new()
            {
                [1] = (I32, 0, null), [2] = (I32, 0, null), [3] = (I32, 0, null), [4] = (Binary, 0, null), [5] = (I32, 0, null),
                [6] = (I32, 0, null), [7] = (I32, 0, null), [8] = (I32, 0, null), [9] = (I32, 0, null), [10] = (Struct, 0, null),
            },
            ["RowGroup"] = new()
            {
                [1] = (List, Struct, "ColumnChunk"), [2] = (I64, 0, null), [3] = (I64, 0, null), [4] = (List, Struct, null),
                [5] = (I64, 0, null), [6] = (I64, 0, null), [7] = (I16, 0, null),
            },
            ["ColumnChunk"] = new()
            {
                [1] = (Binary, 0, null), [2] = (I64, 0, null), [3] = (Struct, 0, "ColumnMetaData"), [4] = (I64, 0, null), [5] = (I32, 0, null),
                [6] = (I64, 0, null), [7] = (I32, 0, null), [8] = (Struct, 0, null), [9] = (Binary, 0, null),
            },
            ["ColumnMetaData"] = new()
            {
                [1] = (I32, 0, null), [2] = (List, I32, null), [3] = (List, Binary, null), [4] = (I32, 0, null), [5] = (I64, 0, null),
                [6] = (I64, 0, null), [7] = (I64, 0, null), [8] = (List, Struct, "KeyValue"), [9] = (I64, 0, null), [10] = (I64, 0, null),
                [11] = (I64, 0, null), [12] = (Struct, 0, "Statistics"), [13] = (List, Struct, null), [14] = (I64, 0, null), [15] = (I32, 0, null),
                [16] = (Struct, 0, null),
            },
            ["Statistics"] = new()
            {
                [1] = (Binary, 0, null), [2] = (Binary, 0, null), [3] = (I64, 0, null), [4] = (I64, 0, null), [5] = (Binary, 0, null),
                [6] = (Binary, 0, null), [7] = (Bool, 0, null), [8] = (Bool, 0, null),
            },
            ["KeyValue"] = new() { [1] = (Binary, 0, null), [2] = (Binary, 0, null) },
        };

        // Integers are varints whatever their width, bools come as 1 or 2, sets read like lists.
        static int Family(int type) => type switch { I16 or I32 or I64 => I64, 2 => Bool, Set => List, _ => type };

        static byte Next(byte[] b, ref int at) => at < b.Length ? b[at++] : throw new InvalidDataException("reads past the end of the footer");

        static ulong Varint(byte[] b, ref int at)
        {
            ulong value = 0;
            for (int shift = 0; shift < 70; shift += 7)
            {
                byte x = Next(b, ref at);
                value |= (ulong)(x & 0x7F) << shift;
                if ((x & 0x80) == 0) return value;
            }
            throw new InvalidDataException("a varint longer than 10 bytes");
        }

        static void SkipStruct(byte[] b, ref int at, int depth, string? name)
        {
            if (depth > 64) throw new InvalidDataException("nesting deeper than 64");
            var fields = name is null ? null : Known[name];
            int last = 0;
            while (true)
            {
                byte header = Next(b, ref at);
                int type = header & 0x0F;
                if (type == 0) return;                                     // STOP
                int delta = header >> 4;
                int id = delta != 0 ? last + delta : (int)(Varint(b, ref at) is var z ? (long)(z >> 1) ^ -(long)(z & 1) : 0);
                last = id;
                if (fields is not null && fields.TryGetValue(id, out var spec))
                {
                    if (Family(type) != Family(spec.Type))
                        throw new InvalidDataException($"{name} field {id} has Thrift type {type}, not {spec.Type}");
                    if (spec.Type == List)
                    {
                        SkipList(b, ref at, depth, spec.Element, spec.Struct, $"{name} field {id}");
                        continue;
                    }
                    if (spec.Type == Struct)
                    {
                        SkipStruct(b, ref at, depth + 1, spec.Struct);
                        continue;
                    }
                }
                SkipValue(b, ref at, type, depth, inContainer: false);
            }
        }

        static void SkipList(byte[] b, ref int at, int depth, int expectedElement, string? structName, string what)
        {
            byte h = Next(b, ref at);
            ulong n = (ulong)(h >> 4);
            if (n == 15) n = Varint(b, ref at);
            int element = h & 0x0F;
            if (n > (ulong)(b.Length - at)) throw new InvalidDataException($"a list of {n} elements with {b.Length - at} bytes left");
            if (n == 0) return;
            if (expectedElement != 0 && Family(element) != Family(expectedElement))
                throw new InvalidDataException($"{what} is a list of Thrift type {element}, not {expectedElement}");
            for (ulong i = 0; i < n; i++)
                if (element == Struct) SkipStruct(b, ref at, depth + 1, structName);
                else SkipValue(b, ref at, element, depth + 1, inContainer: true);
        }

        static void SkipValue(byte[] b, ref int at, int type, int depth, bool inContainer)
        {
            switch (type)
            {
                case 1: case 2: if (inContainer) Next(b, ref at); break;  // bools: in the field header, one byte in lists
                case Byte: Next(b, ref at); break;
                case I16: case I32: case I64: Varint(b, ref at); break;
                case Double: for (int i = 0; i < 8; i++) Next(b, ref at); break;
                case Binary:
                {
                    ulong n = Varint(b, ref at);
                    if (n > (ulong)(b.Length - at)) throw new InvalidDataException($"a {n}-byte string with {b.Length - at} bytes left");
                    at += (int)n;
                    break;
                }
                case List: case Set: SkipList(b, ref at, depth, 0, null, "a list"); break;
                case Map:
                {
                    ulong n = Varint(b, ref at);
                    if (n == 0) break;
                    if (n > (ulong)(b.Length - at) / 2) throw new InvalidDataException($"a map of {n} entries with {b.Length - at} bytes left");
                    byte kv = Next(b, ref at);
                    for (ulong i = 0; i < n; i++)
                    {
                        SkipValue(b, ref at, kv >> 4, depth + 1, inContainer: true);
                        SkipValue(b, ref at, kv & 0x0F, depth + 1, inContainer: true);
                    }
                    break;
                }
                case Struct: SkipStruct(b, ref at, depth + 1, null); break;
                default: throw new InvalidDataException($"unknown Thrift type {type}");
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
