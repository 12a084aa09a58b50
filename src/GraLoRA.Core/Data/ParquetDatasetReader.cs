using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using Parquet;
using Parquet.Meta;
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
                try
                {
                    groups = reader.RowGroupCount;
                    CheckPages(path, stream, reader.Metadata!);
                }
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
            catch (InvalidDataException ex) when (ex.Data["unsupported"] is true) { throw NewerWriter(path, ex.Message); }
            catch (InvalidDataException ex) { throw Bad("malformed footer metadata: " + ex.Message); }
        }

        /// <summary>
        /// Walks every column chunk's page headers before Parquet.Net reads the pages: Parquet.Net allocates a page's
        /// declared compressed and uncompressed sizes up front, so a small file claiming a 256 MiB page would make it
        /// allocate that much before finding the bytes missing (found by FuzzTests; kept in fuzz-regressions/parquet).
        /// Refused: a chunk outside the file's data, a page larger than what is left of its chunk, an uncompressed size
        /// its codec cannot produce from the compressed bytes (UNCOMPRESSED: equal; SNAPPY ≤ 21.4×; GZIP ≤ 1032×; LZ4
        /// ≤ 255×; ZSTD, BROTLI and LZO have no such bound, so there the pages must only add up to the chunk's declared
        /// total), and value counts above the chunk's.
        /// </summary>
        internal static void CheckPages(string path, Stream stream, FileMetaData metadata)
        {
            GraloraException Bad(string problem) => DataErrors.Unreadable(path, $"it is not a valid Parquet file ({problem})");
            long length = stream.Length;
            var tail = new byte[4];
            stream.Position = length - 8;
            stream.ReadExactly(tail);
            long dataEnd = length - 8 - BitConverter.ToInt32(tail, 0);        // CheckFooter has bounded the footer length
            int g = 0;
            foreach (var group in metadata.RowGroups ?? new List<RowGroup>())
            {
                foreach (var chunk in group.Columns ?? new List<ColumnChunk>())
                {
                    var meta = chunk.MetaData ?? throw Bad($"row group {g} has a column chunk without metadata");
                    string column = string.Join(".", meta.PathInSchema ?? new List<string>());
                    string where = $"row group {g}, column '{column}'";
                    long start = meta.DictionaryPageOffset is > 0 and var d && d < meta.DataPageOffset ? d : meta.DataPageOffset;
                    if (start < 4 || meta.TotalCompressedSize < 0 || meta.TotalCompressedSize > dataEnd - start)
                        throw Bad($"{where}: a chunk of {meta.TotalCompressedSize} bytes at offset {start} lies outside the file's {dataEnd - 4} data bytes");
                    long end = start + meta.TotalCompressedSize, position = start, values = 0, uncompressedTotal = 0;
                    while (position < end)
                    {
                        var page = ReadPageHeader(path, stream, position, end, where, Bad);
                        long body = position + page.HeaderBytes;
                        if (page.Compressed < 0 || page.Compressed > end - body)
                            throw Bad($"{where}: a page at offset {position} claims {page.Compressed} bytes, but its chunk has {end - body} left");
                        if (page.Uncompressed < 0 || page.Uncompressed > MaxUncompressed(meta.Codec, page.Compressed))
                            throw Bad($"{where}: a {meta.Codec} page at offset {position} claims to expand {page.Compressed} bytes to {page.Uncompressed}, more than {meta.Codec} can");
                        if (page.Values < 0 || page.Values > meta.NumValues && !page.IsDictionary)
                            throw Bad($"{where}: a page at offset {position} claims {page.Values} values, the chunk {meta.NumValues}");
                        if (page.IsDictionary && page.Values > 8 * page.Uncompressed + 8)
                            throw Bad($"{where}: a dictionary page at offset {position} claims {page.Values} entries in {page.Uncompressed} bytes");
                        if (meta.Codec == CompressionCodec.SNAPPY && page.ValuesCompressed)
                            CheckSnappyLength(stream, body, page, where, position, Bad);
                        if (!page.IsDictionary) values += page.Values;
                        uncompressedTotal += page.HeaderBytes + page.Uncompressed;
                        position = body + page.Compressed;
                    }
                    if (values > meta.NumValues)
                        throw Bad($"{where}: the pages hold {values} values, the chunk declares {meta.NumValues}");
                    if (meta.Codec is CompressionCodec.ZSTD or CompressionCodec.BROTLI or CompressionCodec.LZO && uncompressedTotal > meta.TotalUncompressedSize)
                        throw Bad($"{where}: the pages expand to {uncompressedTotal} bytes, the chunk declares {meta.TotalUncompressedSize}");
                }
                g++;
            }
            stream.Position = 0;
        }

        // A Snappy block starts with its uncompressed length, which the decompressor allocates before it checks the data:
        // it must be the length the page header gives for its values (a v2 page's levels come first, uncompressed).
        static void CheckSnappyLength(Stream stream, long body, PageHeaderInfo page, string where, long position, Func<string, GraloraException> bad)
        {
            long valuesAt = body + page.LevelBytes, valuesBytes = page.Compressed - page.LevelBytes;
            if (page.LevelBytes < 0 || valuesBytes < 0)
                throw bad($"{where}: a page at offset {position} has {page.LevelBytes} bytes of levels in {page.Compressed}");
            if (valuesBytes == 0) return;
            var head = new byte[(int)Math.Min(10, valuesBytes)];
            stream.Position = valuesAt;
            stream.ReadExactly(head);
            int at = 0;
            ulong declared;
            try { declared = Varint(head, ref at); }
            catch (InvalidDataException) { throw bad($"{where}: the Snappy data of the page at offset {position} has no length"); }
            long expected = page.Uncompressed - page.LevelBytes;
            if (declared != (ulong)Math.Max(0, expected))
                throw bad($"{where}: the Snappy data of the page at offset {position} says it expands to {declared} bytes, its page header {expected}");
        }

        // The most bytes a codec can produce from `compressed` bytes (format limits, with room for framing), or for codecs
        // without such a limit, no bound here (CheckPages bounds their pages by the chunk's declared total instead).
        static long MaxUncompressed(CompressionCodec codec, long compressed) => codec switch
        {
            CompressionCodec.UNCOMPRESSED => compressed,
            CompressionCodec.SNAPPY => compressed * 22 + 64,          // a 3-byte copy emits at most 64 bytes
            CompressionCodec.GZIP => compressed * 1032 + 1024,       // deflate's maximum ratio is 1032:1
            CompressionCodec.LZ4 or CompressionCodec.LZ4_RAW => compressed * 256 + 1024,
            _ => long.MaxValue,
        };

        /// <summary>What CheckPages needs of a page header; <c>LevelBytes</c>: a v2 data page's uncompressed repetition and definition levels before its values.</summary>
        readonly record struct PageHeaderInfo(int HeaderBytes, long Compressed, long Uncompressed, long Values, bool IsDictionary, long LevelBytes, bool ValuesCompressed);

        /// <summary>Reads one Thrift PageHeader at <paramref name="position"/>, growing the buffer until the header fits (it may carry statistics).</summary>
        static PageHeaderInfo ReadPageHeader(string path, Stream stream, long position, long end, string where, Func<string, GraloraException> bad)
        {
            int size = (int)Math.Min(256, end - position);
            while (true)
            {
                var buffer = new byte[size];
                stream.Position = position;
                stream.ReadExactly(buffer);
                try { return ParsePageHeader(buffer); }
                catch (InvalidDataException ex) when (ex.Data["unsupported"] is true) { throw NewerWriter(path, $"{where}: {ex.Message}"); }
                catch (InvalidDataException ex)
                {
                    if (ex.Data["truncated"] is true && size < end - position && size < (64 << 20)) { size = (int)Math.Min(Math.Min((long)size * 4, 64 << 20), end - position); continue; }
                    throw bad($"{where}: the page header at offset {position} is malformed: {ex.Message}");
                }
            }
        }

        static PageHeaderInfo ParsePageHeader(byte[] b)
        {
            int checkedTo = 0;
            SkipStruct(b, ref checkedTo, 0, "PageHeader");            // wire types and unknown fields, as for the footer
            int at = 0, last = 0, type = -1;
            long compressed = -1, uncompressed = -1, values = 0, levels = 0;
            bool valuesCompressed = true;
            while (true)
            {
                byte header = Next(b, ref at);
                int wire = header & 0x0F;
                if (header == 0) break;                                   // STOP
                if (wire == 0) throw StopWithDelta(header);
                int delta = header >> 4;
                int id = delta != 0 ? last + delta : (int)(Varint(b, ref at) is var z ? (long)(z >> 1) ^ -(long)(z & 1) : 0);
                last = id;
                if (id is 1 or 2 or 3 && Family(wire) == I64)
                {
                    long v = ZigZag(Varint(b, ref at));
                    if (id == 1) type = (int)v; else if (id == 2) uncompressed = v; else compressed = v;
                }
                else if (id is 5 or 7 or 8 && wire == Struct) (values, levels, valuesCompressed) = PageCounts(b, ref at, Known["PageHeader"][id].Struct!);
                else SkipField(b, ref at, 0, "PageHeader", id, wire);
            }
            if (compressed < 0 && uncompressed < 0) throw new InvalidDataException("no page sizes");
            return new PageHeaderInfo(at, compressed, uncompressed, values, type == 2, levels, valuesCompressed);      // PageType.DICTIONARY_PAGE = 2
        }

        // num_values (field 1) of DataPageHeader, DictionaryPageHeader and DataPageHeaderV2; for V2 also the level lengths
        // (fields 5 and 6) and is_compressed (field 7, true when absent).
        static (long Values, long LevelBytes, bool ValuesCompressed) PageCounts(byte[] b, ref int at, string name)
        {
            int last = 0;
            long values = 0, levels = 0;
            bool compressed = true;
            while (true)
            {
                byte header = Next(b, ref at);
                int wire = header & 0x0F;
                if (header == 0) return (values, levels, compressed);
                if (wire == 0) throw StopWithDelta(header);
                int delta = header >> 4;
                int id = delta != 0 ? last + delta : (int)(Varint(b, ref at) is var z ? (long)(z >> 1) ^ -(long)(z & 1) : 0);
                last = id;
                bool v2 = name == "DataPageHeaderV2";
                if (id == 1 && Family(wire) == I64) values = ZigZag(Varint(b, ref at));
                else if (v2 && id is 5 or 6 && Family(wire) == I64) levels += ZigZag(Varint(b, ref at));
                else if (v2 && id == 7 && Family(wire) == Bool) compressed = wire == Bool;
                else SkipField(b, ref at, 1, name, id, wire);
            }
        }

        static long ZigZag(ulong z) => (long)(z >> 1) ^ -(long)(z & 1);

        // Wire types of the Thrift compact protocol.
        const int Bool = 1, Byte = 3, I16 = 4, I32 = 5, I64 = 6, Double = 7, Binary = 8, List = 9, Set = 10, Map = 11, Struct = 12;

        /// <summary>
        /// Every struct of parquet.thrift that Parquet.Net 6.1 reads (FileMetaData and PageHeader and all they contain): for
        /// each, the fields it knows (field → wire type, element type for lists, struct name for structs and lists of structs).
        /// Parquet.Net reads a known field as its declared type whatever the wire says, and skips an unknown struct without
        /// reading its fields' values (fixed upstream after 6.1.0), so both kinds of input make it lose its place and spin or
        /// misread; CheckFooter and CheckPages refuse them first.
        /// </summary>
        static readonly Dictionary<string, Dictionary<int, (int Type, int Element, string? Struct)>> Known = new()
        {
            ["FileMetaData"] = new() { [1] = (I32, 0, null), [2] = (List, Struct, "SchemaElement"), [3] = (I64, 0, null), [4] = (List, Struct, "RowGroup"), [5] = (List, Struct, "KeyValue"), [6] = (Binary, 0, null), [7] = (List, Struct, "ColumnOrder"), [8] = (Struct, 0, "EncryptionAlgorithm"), [9] = (Binary, 0, null) },
            ["PageHeader"] = new() { [1] = (I32, 0, null), [2] = (I32, 0, null), [3] = (I32, 0, null), [4] = (I32, 0, null), [5] = (Struct, 0, "DataPageHeader"), [6] = (Struct, 0, "IndexPageHeader"), [7] = (Struct, 0, "DictionaryPageHeader"), [8] = (Struct, 0, "DataPageHeaderV2") },
            ["SchemaElement"] = new() { [1] = (I32, 0, null), [2] = (I32, 0, null), [3] = (I32, 0, null), [4] = (Binary, 0, null), [5] = (I32, 0, null), [6] = (I32, 0, null), [7] = (I32, 0, null), [8] = (I32, 0, null), [9] = (I32, 0, null), [10] = (Struct, 0, "LogicalType") },
            ["RowGroup"] = new() { [1] = (List, Struct, "ColumnChunk"), [2] = (I64, 0, null), [3] = (I64, 0, null), [4] = (List, Struct, "SortingColumn"), [5] = (I64, 0, null), [6] = (I64, 0, null), [7] = (I16, 0, null) },
            ["KeyValue"] = new() { [1] = (Binary, 0, null), [2] = (Binary, 0, null) },
            ["ColumnOrder"] = new() { [1] = (Struct, 0, "TypeDefinedOrder") },
            ["EncryptionAlgorithm"] = new() { [1] = (Struct, 0, "AesGcmV1"), [2] = (Struct, 0, "AesGcmCtrV1") },
            ["DataPageHeader"] = new() { [1] = (I32, 0, null), [2] = (I32, 0, null), [3] = (I32, 0, null), [4] = (I32, 0, null), [5] = (Struct, 0, "Statistics") },
            ["IndexPageHeader"] = new() {  },
            ["DictionaryPageHeader"] = new() { [1] = (I32, 0, null), [2] = (I32, 0, null), [3] = (Bool, 0, null) },
            ["DataPageHeaderV2"] = new() { [1] = (I32, 0, null), [2] = (I32, 0, null), [3] = (I32, 0, null), [4] = (I32, 0, null), [5] = (I32, 0, null), [6] = (I32, 0, null), [7] = (Bool, 0, null), [8] = (Struct, 0, "Statistics") },
            ["LogicalType"] = new() { [1] = (Struct, 0, "StringType"), [2] = (Struct, 0, "MapType"), [3] = (Struct, 0, "ListType"), [4] = (Struct, 0, "EnumType"), [5] = (Struct, 0, "DecimalType"), [6] = (Struct, 0, "DateType"), [7] = (Struct, 0, "TimeType"), [8] = (Struct, 0, "TimestampType"), [10] = (Struct, 0, "IntType"), [11] = (Struct, 0, "NullType"), [12] = (Struct, 0, "JsonType"), [13] = (Struct, 0, "BsonType"), [14] = (Struct, 0, "UUIDType"), [15] = (Struct, 0, "Float16Type"), [16] = (Struct, 0, "VariantType"), [17] = (Struct, 0, "GeometryType"), [18] = (Struct, 0, "GeographyType") },
            ["ColumnChunk"] = new() { [1] = (Binary, 0, null), [2] = (I64, 0, null), [3] = (Struct, 0, "ColumnMetaData"), [4] = (I64, 0, null), [5] = (I32, 0, null), [6] = (I64, 0, null), [7] = (I32, 0, null), [8] = (Struct, 0, "ColumnCryptoMetaData"), [9] = (Binary, 0, null) },
            ["SortingColumn"] = new() { [1] = (I32, 0, null), [2] = (Bool, 0, null), [3] = (Bool, 0, null) },
            ["TypeDefinedOrder"] = new() {  },
            ["AesGcmV1"] = new() { [1] = (Binary, 0, null), [2] = (Binary, 0, null), [3] = (Bool, 0, null) },
            ["AesGcmCtrV1"] = new() { [1] = (Binary, 0, null), [2] = (Binary, 0, null), [3] = (Bool, 0, null) },
            ["Statistics"] = new() { [1] = (Binary, 0, null), [2] = (Binary, 0, null), [3] = (I64, 0, null), [4] = (I64, 0, null), [5] = (Binary, 0, null), [6] = (Binary, 0, null), [7] = (Bool, 0, null), [8] = (Bool, 0, null) },
            ["StringType"] = new() {  },
            ["MapType"] = new() {  },
            ["ListType"] = new() {  },
            ["EnumType"] = new() {  },
            ["DecimalType"] = new() { [1] = (I32, 0, null), [2] = (I32, 0, null) },
            ["DateType"] = new() {  },
            ["TimeType"] = new() { [1] = (Bool, 0, null), [2] = (Struct, 0, "TimeUnit") },
            ["TimestampType"] = new() { [1] = (Bool, 0, null), [2] = (Struct, 0, "TimeUnit") },
            ["IntType"] = new() { [1] = (Byte, 0, null), [2] = (Bool, 0, null) },
            ["NullType"] = new() {  },
            ["JsonType"] = new() {  },
            ["BsonType"] = new() {  },
            ["UUIDType"] = new() {  },
            ["Float16Type"] = new() {  },
            ["VariantType"] = new() { [1] = (Byte, 0, null) },
            ["GeometryType"] = new() { [1] = (Binary, 0, null) },
            ["GeographyType"] = new() { [1] = (Binary, 0, null), [2] = (I32, 0, null) },
            ["ColumnMetaData"] = new() { [1] = (I32, 0, null), [2] = (List, I32, null), [3] = (List, Binary, null), [4] = (I32, 0, null), [5] = (I64, 0, null), [6] = (I64, 0, null), [7] = (I64, 0, null), [8] = (List, Struct, "KeyValue"), [9] = (I64, 0, null), [10] = (I64, 0, null), [11] = (I64, 0, null), [12] = (Struct, 0, "Statistics"), [13] = (List, Struct, "PageEncodingStats"), [14] = (I64, 0, null), [15] = (I32, 0, null), [16] = (Struct, 0, "SizeStatistics"), [17] = (Struct, 0, "GeospatialStatistics") },
            ["ColumnCryptoMetaData"] = new() { [1] = (Struct, 0, "EncryptionWithFooterKey"), [2] = (Struct, 0, "EncryptionWithColumnKey") },
            ["TimeUnit"] = new() { [1] = (Struct, 0, "MilliSeconds"), [2] = (Struct, 0, "MicroSeconds"), [3] = (Struct, 0, "NanoSeconds") },
            ["PageEncodingStats"] = new() { [1] = (I32, 0, null), [2] = (I32, 0, null), [3] = (I32, 0, null) },
            ["SizeStatistics"] = new() { [1] = (I64, 0, null), [2] = (List, I64, null), [3] = (List, I64, null) },
            ["GeospatialStatistics"] = new() { [1] = (Struct, 0, "BoundingBox"), [2] = (List, I32, null) },
            ["EncryptionWithFooterKey"] = new() {  },
            ["EncryptionWithColumnKey"] = new() { [1] = (List, Binary, null), [2] = (Binary, 0, null) },
            ["MilliSeconds"] = new() {  },
            ["MicroSeconds"] = new() {  },
            ["NanoSeconds"] = new() {  },
            ["BoundingBox"] = new() { [1] = (Double, 0, null), [2] = (Double, 0, null), [3] = (Double, 0, null), [4] = (Double, 0, null), [5] = (Double, 0, null), [6] = (Double, 0, null), [7] = (Double, 0, null), [8] = (Double, 0, null) },
        };

        // Integers are varints whatever their width, bools come as 1 or 2, sets read like lists.
        static int Family(int type) => type switch { I16 or I32 or I64 => I64, 2 => Bool, Set => List, _ => type };

        static byte Next(byte[] b, ref int at) => at < b.Length ? b[at++] : throw Truncated("reads past the end of the Thrift data");

        // A well-formed file from a writer newer than Parquet.Net 6.1 may carry such a field: say so, and how to get past it.
        static GraloraException NewerWriter(string path, string problem) => DataErrors.Unreadable(path,
            $"it carries Parquet metadata that the Parquet reader used here (Parquet.Net 6.1) cannot read past: {problem}. Convert it to JSONL "
            + "(e.g. pandas: pd.read_parquet(f).to_json('train.jsonl', orient='records', lines=True)) or re-save it with a writer that omits the field");

        static InvalidDataException StopWithDelta(byte header) => new($"a field header 0x{header:x2} of Thrift type 0 that is not STOP (0x00)");

        // Marked, so that a page header read into a short buffer is retried with a longer one.
        static InvalidDataException Truncated(string message)
        {
            var ex = new InvalidDataException(message);
            ex.Data["truncated"] = true;
            return ex;
        }

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

        /// <summary>
        /// Walks one struct. <paramref name="name"/> is its parquet.thrift name, or null for a struct inside a field Parquet.Net
        /// does not know: that one must be empty, since Parquet.Net 6.1 skips an unknown struct's field headers but not
        /// their values (<paramref name="unknownField"/> names the field for the message).
        /// </summary>
        static void SkipStruct(byte[] b, ref int at, int depth, string? name, string? unknownField = null)
        {
            if (depth > 64) throw new InvalidDataException("nesting deeper than 64");
            var fields = name is null ? null : Known[name];
            int last = 0;
            while (true)
            {
                byte header = Next(b, ref at);
                int type = header & 0x0F;
                if (header == 0) return;                                   // STOP
                // Type 0 with a field-id delta is no STOP to Parquet.Net (it compares the whole byte), which then loses its
                // place and spins at the end of the footer (found by FuzzTests; kept in fuzz-regressions/parquet).
                if (type == 0) throw StopWithDelta(header);
                if (fields is null)
                {
                    var unsupported = new InvalidDataException($"{unknownField} is a struct with fields, which Parquet.Net 6.1 cannot skip");
                    unsupported.Data["unsupported"] = true;
                    throw unsupported;
                }
                int delta = header >> 4;
                int id = delta != 0 ? last + delta : (int)(Varint(b, ref at) is var z ? (long)(z >> 1) ^ -(long)(z & 1) : 0);
                last = id;
                SkipField(b, ref at, depth, name!, id, type);
            }
        }

        /// <summary>Skips the value of field <paramref name="id"/> (wire type <paramref name="type"/>) of struct <paramref name="name"/>, checked against <see cref="Known"/>.</summary>
        static void SkipField(byte[] b, ref int at, int depth, string name, int id, int type)
        {
            if (Known[name].TryGetValue(id, out var spec))
            {
                if (Family(type) != Family(spec.Type))
                    throw new InvalidDataException($"{name} field {id} has Thrift type {type}, not {spec.Type}");
                if (spec.Type == List) SkipList(b, ref at, depth, spec.Element, spec.Struct, $"{name} field {id}", null);
                else if (spec.Type == Struct) SkipStruct(b, ref at, depth + 1, spec.Struct);
                else SkipValue(b, ref at, type, depth, inContainer: false, null);
            }
            else SkipValue(b, ref at, type, depth, inContainer: false, $"{name} field {id} (unknown to Parquet.Net 6.1)");
        }

        static void SkipList(byte[] b, ref int at, int depth, int expectedElement, string? structName, string what, string? unknownField)
        {
            byte h = Next(b, ref at);
            ulong n = (ulong)(h >> 4);
            if (n == 15) n = Varint(b, ref at);
            int element = h & 0x0F;
            if (n > (ulong)(b.Length - at)) throw Truncated($"a list of {n} elements with {b.Length - at} bytes left");
            if (n == 0) return;
            if (expectedElement != 0 && Family(element) != Family(expectedElement))
                throw new InvalidDataException($"{what} is a list of Thrift type {element}, not {expectedElement}");
            for (ulong i = 0; i < n; i++)
                if (element == Struct) SkipStruct(b, ref at, depth + 1, structName, unknownField);
                else SkipValue(b, ref at, element, depth + 1, inContainer: true, unknownField);
        }

        /// <summary>Skips one value of wire type <paramref name="type"/>; inside an unknown field (<paramref name="unknownField"/> set) any struct must be empty.</summary>
        static void SkipValue(byte[] b, ref int at, int type, int depth, bool inContainer, string? unknownField)
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
                    if (n > (ulong)(b.Length - at)) throw Truncated($"a {n}-byte string with {b.Length - at} bytes left");
                    at += (int)n;
                    break;
                }
                case List: case Set: SkipList(b, ref at, depth, 0, null, "a list", unknownField); break;
                case Map:
                {
                    ulong n = Varint(b, ref at);
                    if (n == 0) break;
                    if (n > (ulong)(b.Length - at) / 2) throw Truncated($"a map of {n} entries with {b.Length - at} bytes left");
                    byte kv = Next(b, ref at);
                    for (ulong i = 0; i < n; i++)
                    {
                        SkipValue(b, ref at, kv >> 4, depth + 1, inContainer: true, unknownField);
                        SkipValue(b, ref at, kv & 0x0F, depth + 1, inContainer: true, unknownField);
                    }
                    break;
                }
                case Struct: SkipStruct(b, ref at, depth + 1, null, unknownField ?? "a struct"); break;
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
