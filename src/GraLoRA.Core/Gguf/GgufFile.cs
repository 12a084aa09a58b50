using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace GraLoRA.Gguf
{
    /// <summary>One tensor of a GGUF file: name, dimensions innermost first (GGUF's order), type and data offset.</summary>
    public sealed record GgufTensorInfo(string Name, long[] Dimensions, GgmlType Type, long Offset)
    {
        /// <summary>The shape in torch order (outermost first).</summary>
        public long[] Shape => Enumerable.Reverse(Dimensions).ToArray();
        /// <summary>Number of values.</summary>
        public long Count => Dimensions.Aggregate(1L, (a, d) => a * d);
    }

    /// <summary>
    /// The header of a GGUF v2/v3 file as written by this toolkit or llama.cpp's tools: metadata (strings, numbers,
    /// bools and arrays of them) and tensor infos, every length and count checked against the file's size before it
    /// is trusted. Tensor values can be read back as float32 for the types this toolkit writes.
    /// </summary>
    public sealed class GgufFile
    {
        /// <summary>Metadata: string, uint/int/float/bool values as their .NET types, arrays as object[].</summary>
        public IReadOnlyDictionary<string, object> Metadata { get; }
        /// <summary>Tensor infos in file order.</summary>
        public IReadOnlyList<GgufTensorInfo> Tensors { get; }
        /// <summary>File version.</summary>
        public uint Version { get; }
        /// <summary>Absolute offset of the tensor data section.</summary>
        public long DataOffset { get; }
        /// <summary>Full path of the file.</summary>
        public string Path { get; }

        GgufFile(string path, uint version, Dictionary<string, object> metadata, List<GgufTensorInfo> tensors, long dataOffset)
        {
            Path = path;
            Version = version;
            Metadata = metadata;
            Tensors = tensors;
            DataOffset = dataOffset;
        }

        /// <summary>A metadata value, or null.</summary>
        public object? this[string key] => Metadata.TryGetValue(key, out var v) ? v : null;

        /// <summary>Reads the header of <paramref name="path"/>.</summary>
        public static GgufFile Read(string path)
        {
            string full = System.IO.Path.GetFullPath(path);
            if (!File.Exists(full))
                throw new GraloraException("GgufNotFound", GraloraErrorKind.NotFound, $"GGUF file '{full}' does not exist.", full);
            using var stream = File.OpenRead(full);
            using var input = new BinaryReader(stream, Encoding.UTF8);
            long length = stream.Length;
            GraloraException Bad(string problem) =>
                new("InvalidGguf", GraloraErrorKind.InvalidData, $"'{full}' is not a valid GGUF file: {problem}.", full);
            void Need(long bytes, string what)
            {
                if (bytes < 0 || stream.Position + bytes > length) throw Bad($"{what} runs past the end of the file");
            }
            try
            {
                Need(24, "the header");
                if (input.ReadUInt32() != GgufFormat.Magic) throw Bad("it does not start with 'GGUF'");
                uint version = input.ReadUInt32();
                if (version is not (2 or 3)) throw Bad($"version {version} is not 2 or 3");
                ulong tensorCount = input.ReadUInt64(), kvCount = input.ReadUInt64();
                // Every entry takes at least 12 bytes, so counts beyond the file size are lies.
                if (tensorCount > (ulong)length / 12 || kvCount > (ulong)length / 12) throw Bad("its tensor or metadata count exceeds what the file can hold");
                string ReadString(string what)
                {
                    Need(8, what);
                    ulong n = input.ReadUInt64();
                    if (n > (ulong)(length - stream.Position) || n > int.MaxValue) throw Bad($"{what} runs past the end of the file");
                    return Encoding.UTF8.GetString(input.ReadBytes((int)n));
                }
                object ReadValue(GgufValueType type, string key, bool inArray)
                {
                    switch (type)
                    {
                        case GgufValueType.UInt8: Need(1, key); return input.ReadByte();
                        case GgufValueType.Int8: Need(1, key); return input.ReadSByte();
                        case GgufValueType.UInt16: Need(2, key); return input.ReadUInt16();
                        case GgufValueType.Int16: Need(2, key); return input.ReadInt16();
                        case GgufValueType.UInt32: Need(4, key); return input.ReadUInt32();
                        case GgufValueType.Int32: Need(4, key); return input.ReadInt32();
                        case GgufValueType.Float32: Need(4, key); return input.ReadSingle();
                        case GgufValueType.Bool: Need(1, key); return input.ReadByte() switch { 0 => false, 1 => true, var b => throw Bad($"'{key}' has bool byte {b}") };
                        case GgufValueType.UInt64: Need(8, key); return input.ReadUInt64();
                        case GgufValueType.Int64: Need(8, key); return input.ReadInt64();
                        case GgufValueType.Float64: Need(8, key); return input.ReadDouble();
                        case GgufValueType.String: return ReadString(key);
                        case GgufValueType.Array when !inArray:
                            Need(12, key);
                            var elementType = (GgufValueType)input.ReadUInt32();
                            ulong n = input.ReadUInt64();
                            if (n > (ulong)(length - stream.Position)) throw Bad($"array '{key}' claims {n} entries");
                            var items = new object[n];
                            for (ulong i = 0; i < n; i++) items[i] = ReadValue(elementType, key, true);
                            return items;
                        default: throw Bad($"'{key}' has value type {(uint)type}");
                    }
                }
                var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
                for (ulong i = 0; i < kvCount; i++)
                {
                    string key = ReadString("a metadata key");
                    Need(4, key);
                    var type = (GgufValueType)input.ReadUInt32();
                    if (!metadata.TryAdd(key, ReadValue(type, key, false))) throw Bad($"metadata key '{key}' appears twice");
                }
                var tensors = new List<GgufTensorInfo>();
                for (ulong i = 0; i < tensorCount; i++)
                {
                    string name = ReadString("a tensor name");
                    Need(4, name);
                    uint dims = input.ReadUInt32();
                    if (dims > 4) throw Bad($"tensor '{name}' has {dims} dimensions (ggml allows 4)");
                    Need(8L * dims + 12, name);
                    var shape = new long[dims];
                    for (int d = 0; d < dims; d++)
                    {
                        ulong v = input.ReadUInt64();
                        if (v > (ulong)length * 64) throw Bad($"tensor '{name}' has dimension {v}");
                        shape[d] = (long)v;
                    }
                    uint type = input.ReadUInt32();
                    if (!Enum.IsDefined(typeof(GgmlType), type)) throw Bad($"tensor '{name}' has ggml type {type}, which this reader does not decode");
                    ulong offset = input.ReadUInt64();
                    if (offset > (ulong)length) throw Bad($"tensor '{name}' starts past the end of the file");
                    tensors.Add(new GgufTensorInfo(name, shape, (GgmlType)type, (long)offset));
                }
                int alignment = metadata.TryGetValue("general.alignment", out var a) && a is uint al && al > 0 && (al & (al - 1)) == 0 ? (int)al : GgufFormat.Alignment;
                long dataOffset = GgufFormat.Align(stream.Position, alignment);
                foreach (var t in tensors)
                {
                    long rowLength = t.Dimensions.Length == 0 ? 1 : t.Dimensions[0];
                    long size = t.Count / Math.Max(1, rowLength) * GgufFormat.RowBytes(t.Type, rowLength);
                    if (t.Offset % alignment != 0 || dataOffset + t.Offset + size > length)
                        throw Bad($"tensor '{t.Name}' is misaligned or runs past the end of the file");
                }
                return new GgufFile(full, version, metadata, tensors, dataOffset);
            }
            catch (EndOfStreamException) { throw Bad("it ends early"); }
            catch (ArgumentException ex) { throw Bad(ex.Message); }
        }

        /// <summary>The values of tensor <paramref name="name"/> as float32, in row-major (torch) order.</summary>
        public float[] ReadFloat32(string name)
        {
            var t = Tensors.FirstOrDefault(x => x.Name == name)
                    ?? throw new GraloraException("GgufTensorNotFound", GraloraErrorKind.NotFound, $"'{Path}' has no tensor '{name}'.", name);
            long rowLength = t.Dimensions.Length == 0 ? 1 : t.Dimensions[0];
            long size = t.Count / Math.Max(1, rowLength) * GgufFormat.RowBytes(t.Type, rowLength);
            if (size > int.MaxValue)
                throw new GraloraException("GgufTensorTooLarge", GraloraErrorKind.InvalidOperation, $"Tensor '{name}' is too large to read into one array ({size} bytes).", name);
            using var stream = File.OpenRead(Path);
            stream.Seek(DataOffset + t.Offset, SeekOrigin.Begin);
            var bytes = new byte[size];
            stream.ReadExactly(bytes);
            return GgufTensorEncoding.Decode(bytes, t.Type, t.Count);
        }
    }
}
