using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using GraLoRA.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Gguf
{
    /// <summary>
    /// Writes a GGUF v3 file: metadata key/values, tensor infos, then the tensor data, each tensor aligned to 32 bytes.
    /// Tensors are produced and encoded one at a time while writing (a merged weight exists only while it is written),
    /// and the file appears atomically (<see cref="AtomicFile"/>).
    /// </summary>
    public sealed class GgufWriter
    {
        readonly List<(string Key, GgufValueType Type, object Value)> _metadata = new();
        readonly List<Entry> _tensors = new();

        sealed record Entry(string Name, long[] Shape, GgmlType Type, Func<Tensor> Values);

        /// <summary>Metadata keys added so far, in order.</summary>
        public IReadOnlyList<string> Keys => _metadata.Select(m => m.Key).ToList();

        /// <summary>Adds a string value.</summary>
        public void Add(string key, string value) => Put(key, GgufValueType.String, value);
        /// <summary>Adds a uint32 value.</summary>
        public void Add(string key, uint value) => Put(key, GgufValueType.UInt32, value);
        /// <summary>Adds a float32 value.</summary>
        public void Add(string key, float value) => Put(key, GgufValueType.Float32, value);
        /// <summary>Adds a bool value.</summary>
        public void Add(string key, bool value) => Put(key, GgufValueType.Bool, value);
        /// <summary>Adds an array of strings.</summary>
        public void Add(string key, IReadOnlyList<string> values) => Put(key, GgufValueType.Array, (GgufValueType.String, (object)values));
        /// <summary>Adds an array of int32.</summary>
        public void Add(string key, IReadOnlyList<int> values) => Put(key, GgufValueType.Array, (GgufValueType.Int32, (object)values));

        void Put(string key, GgufValueType type, object value)
        {
            if (_metadata.Any(m => m.Key == key)) throw new ArgumentException($"GGUF metadata key '{key}' added twice.", nameof(key));
            _metadata.Add((key, type, value));
        }

        /// <summary>
        /// Adds tensor <paramref name="name"/> of torch shape <paramref name="shape"/> (outermost first; GGUF lists the
        /// dimensions innermost first), stored as <paramref name="type"/>. <paramref name="values"/> is called once while
        /// writing, inside a dispose scope that ends once the tensor is written (tensors it creates die with it).
        /// </summary>
        public void AddTensor(string name, long[] shape, GgmlType type, Func<Tensor> values)
        {
            if (_tensors.Any(t => t.Name == name)) throw new ArgumentException($"GGUF tensor '{name}' added twice.", nameof(name));
            if (Encoding.UTF8.GetByteCount(name) > 63)
                throw new GraloraException("GgufTensorNameTooLong", GraloraErrorKind.InvalidArgument, $"GGUF tensor name '{name}' is longer than ggml's 63 bytes.", name);
            GgufFormat.RowBytes(type, shape.Length == 0 ? 1 : shape[^1]);   // checks Q8_0 rows
            _tensors.Add(new Entry(name, shape, type, values));
        }

        /// <summary>Writes everything to <paramref name="path"/> atomically.</summary>
        public void Write(string path) => AtomicFile.Write(path, WriteTo);

        void WriteTo(Stream stream)
        {
            using var output = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            output.Write(GgufFormat.Magic);
            output.Write(GgufFormat.Version);
            output.Write((ulong)_tensors.Count);
            output.Write((ulong)_metadata.Count);
            foreach (var (key, type, value) in _metadata)
            {
                WriteString(output, key);
                output.Write((uint)type);
                WriteValue(output, type, value);
            }
            long offset = 0;
            var offsets = new List<long>();
            foreach (var t in _tensors)
            {
                WriteString(output, t.Name);
                output.Write((uint)t.Shape.Length);
                foreach (var d in Enumerable.Reverse(t.Shape)) output.Write((ulong)d);
                output.Write((uint)t.Type);
                offset = GgufFormat.Align(offset);
                offsets.Add(offset);
                output.Write((ulong)offset);
                offset += ByteSize(t);
            }
            output.Flush();
            long written = Pad(output, stream.Position);
            long dataStart = written;
            for (int i = 0; i < _tensors.Count; i++)
            {
                written = dataStart + offsets[i] > written ? Pad(output, written, dataStart + offsets[i] - written) : written;
                var t = _tensors[i];
                using var scope = NewDisposeScope();
                var value = t.Values();
                if (!value.shape.SequenceEqual(t.Shape))
                    throw new InvalidOperationException($"GGUF tensor '{t.Name}' has shape [{string.Join(", ", value.shape)}], not the announced [{string.Join(", ", t.Shape)}].");
                long before = written;
                GgufTensorEncoding.Write(output, value, t.Type);
                written = before + ByteSize(t);
            }
            output.Flush();
        }

        static long ByteSize(Entry t)
        {
            long rows = t.Shape.Length <= 1 ? 1 : t.Shape[..^1].Aggregate(1L, (a, d) => a * d);
            return rows * GgufFormat.RowBytes(t.Type, t.Shape.Length == 0 ? 1 : t.Shape[^1]);
        }

        static long Pad(BinaryWriter output, long position, long? count = null)
        {
            long n = count ?? GgufFormat.Align(position) - position;
            for (long i = 0; i < n; i++) output.Write((byte)0);
            return position + n;
        }

        static void WriteString(BinaryWriter output, string value)
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            output.Write((ulong)bytes.Length);
            output.Write(bytes);
        }

        static void WriteValue(BinaryWriter output, GgufValueType type, object value)
        {
            switch (type)
            {
                case GgufValueType.String: WriteString(output, (string)value); break;
                case GgufValueType.UInt32: output.Write((uint)value); break;
                case GgufValueType.Float32: output.Write((float)value); break;
                case GgufValueType.Bool: output.Write((bool)value ? (byte)1 : (byte)0); break;
                case GgufValueType.Array:
                    var (elementType, items) = ((GgufValueType, object))value;
                    output.Write((uint)elementType);
                    if (elementType == GgufValueType.String)
                    {
                        var strings = (IReadOnlyList<string>)items;
                        output.Write((ulong)strings.Count);
                        foreach (var s in strings) WriteString(output, s);
                    }
                    else
                    {
                        var ints = (IReadOnlyList<int>)items;
                        output.Write((ulong)ints.Count);
                        foreach (var i in ints) output.Write(i);
                    }
                    break;
                default: throw new ArgumentOutOfRangeException(nameof(type), type, "not written by this toolkit");
            }
        }
    }
}
