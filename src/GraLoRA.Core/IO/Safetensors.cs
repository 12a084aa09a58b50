using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.IO
{
    /// <summary>One entry of a safetensors header.</summary>
    public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End);

    /// <summary>
    /// Reads and writes the safetensors format (8-byte little-endian header length, JSON header,
    /// raw little-endian tensor bytes). The header is validated before any tensor is allocated.
    /// </summary>
    public static class Safetensors
    {
        /// <summary>Largest header accepted (the format's own reference limit is 100 MB).</summary>
        public const long MaxHeaderBytes = 100_000_000;

        static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new()
        {
            ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2),
            ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
            ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1), ["BOOL"] = (ScalarType.Bool, 1),
        };

        static GraloraException Invalid(string path, string problem) =>
            new("InvalidSafetensors", GraloraErrorKind.InvalidData, $"'{path}' is not a valid safetensors file: {problem}.", path);

        /// <summary>Reads and validates the header: entries by name, plus the metadata map.</summary>
        public static (IReadOnlyDictionary<string, SafetensorsEntry> Entries, IReadOnlyDictionary<string, string> Metadata, long DataStart) ReadHeader(string path)
        {
            if (!File.Exists(path))
                throw new GraloraException("FileNotFound", GraloraErrorKind.NotFound, $"Safetensors file '{path}' does not exist.", path);
            using var stream = File.OpenRead(path);
            long fileLength = stream.Length;
            var lengthBytes = new byte[8];
            int got = stream.ReadAtLeast(lengthBytes, 8, throwOnEndOfStream: false);
            long headerLength = got == 8 ? BitConverter.ToInt64(lengthBytes, 0) : -1;
            // Checked before anything is allocated: the header buffer is at most the file's own size (and 100 MB).
            if (headerLength <= 1 || headerLength > MaxHeaderBytes || headerLength > fileLength - 8)
            {
                // Not safetensors: say so plainly when it is a pickle (whose first bytes make an absurd length).
                if (UntrustedFiles.LooksPickled(lengthBytes.AsSpan(0, got), path)) throw UntrustedFiles.PickleRefused(path, Path.GetFileNameWithoutExtension(path) + ".safetensors");
                if (got != 8) throw Invalid(path, "shorter than its 8-byte header length");
                throw Invalid(path, $"header length {headerLength} is impossible for a file of {fileLength} bytes");
            }
            var header = new byte[headerLength];
            stream.ReadExactly(header);

            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            long dataLength = fileLength - 8 - headerLength;
            try
            {
                using var doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Invalid(path, "header is not a JSON object");
                bool seenMetadata = false;
                foreach (var property in doc.RootElement.EnumerateObject())
                {
                    if (property.Name == "__metadata__")
                    {
                        if (seenMetadata) throw Invalid(path, "__metadata__ appears twice");
                        seenMetadata = true;
                        if (property.Value.ValueKind != JsonValueKind.Object) throw Invalid(path, "__metadata__ is not an object of strings");
                        foreach (var m in property.Value.EnumerateObject())
                        {
                            if (m.Value.ValueKind != JsonValueKind.String) throw Invalid(path, $"__metadata__ entry '{m.Name}' is not a string");
                            if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw Invalid(path, $"__metadata__ entry '{m.Name}' appears twice");
                        }
                        continue;
                    }
                    if (entries.ContainsKey(property.Name)) throw Invalid(path, $"tensor '{property.Name}' appears twice");
                    entries[property.Name] = ParseEntry(path, property.Name, property.Value, dataLength);
                }
            }
            catch (JsonException ex)
            {
                throw Invalid(path, "header is not valid JSON (" + ex.Message + ")");
            }
            catch (InvalidOperationException ex)
            {
                // System.Text.Json reports text that is not valid UTF-8 this way.
                throw Invalid(path, "header holds text that is not valid UTF-8 (" + ex.Message + ")");
            }
            var ordered = entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
            for (int i = 1; i < ordered.Count; i++)
                if (ordered[i].Begin < ordered[i - 1].End)
                    throw Invalid(path, $"tensors '{ordered[i - 1].Name}' and '{ordered[i].Name}' overlap");
            return (entries, metadata, 8 + headerLength);
        }

        static SafetensorsEntry ParseEntry(string path, string name, JsonElement e, long dataLength)
        {
            if (e.ValueKind != JsonValueKind.Object) throw Invalid(path, $"entry '{name}' is not an object");
            UntrustedFiles.RefuseDuplicateKeys(e, key => Invalid(path, $"entry '{name}' has field '{key}' twice"));
            if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw Invalid(path, $"entry '{name}' has no dtype");
            string dtype = dt.GetString()!;
            if (!DTypes.TryGetValue(dtype, out var info)) throw Invalid(path, $"entry '{name}' has unsupported dtype '{dtype}' (supported: {string.Join(", ", DTypes.Keys)})");
            if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw Invalid(path, $"entry '{name}' has no shape");
            var shape = sh.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var d) && d >= 0 ? d : throw Invalid(path, $"entry '{name}' has a bad dimension {v.GetRawText()}")).ToArray();
            if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
                throw Invalid(path, $"entry '{name}' has no data_offsets pair");
            long Offset(JsonElement v) => v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var o) ? o : -1;
            long begin = Offset(off[0]), end = Offset(off[1]);
            if (begin < 0 || end < begin || end > dataLength) throw Invalid(path, $"entry '{name}' has data offsets [{off[0].GetRawText()}, {off[1].GetRawText()}] outside the {dataLength} data bytes");
            long elements = 1;
            try { foreach (var d in shape) elements = checked(elements * d); _ = checked(elements * info.Size); }
            catch (OverflowException) { throw Invalid(path, $"entry '{name}' has an overflowing shape"); }
            if (end - begin != elements * info.Size)
                throw Invalid(path, $"entry '{name}' has {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {elements * info.Size}");
            return new SafetensorsEntry(name, dtype, shape, begin, end);
        }

        /// <summary>
        /// Yields the tensors <paramref name="select"/> accepts (all by default) one at a time, in file order, on
        /// the CPU; the caller owns (and should dispose) each one, so a whole file is never held in memory at once.
        /// </summary>
        public static IEnumerable<(string Name, Tensor Tensor)> Enumerate(string path, Func<string, bool>? select = null)
        {
            var (entries, _, dataStart) = ReadHeader(path);
            using var stream = File.OpenRead(path);
            foreach (var entry in entries.Values.OrderBy(e => e.Begin))
            {
                if (select != null && !select(entry.Name)) continue;
                yield return (entry.Name, ReadTensor(stream, dataStart, entry));
            }
        }

        /// <summary>Reads every tensor (or those <paramref name="select"/> accepts) onto the CPU.</summary>
        public static Dictionary<string, Tensor> Read(string path, Func<string, bool>? select = null)
        {
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            try
            {
                foreach (var (name, tensor) in Enumerate(path, select)) result[name] = tensor;
            }
            catch
            {
                foreach (var t in result.Values) t.Dispose();
                throw;
            }
            return result;
        }

        /// <summary>Bytes per element of <paramref name="type"/> as stored in safetensors files.</summary>
        public static int ElementSize(ScalarType type) =>
            DTypes.Values.Where(v => v.Type == type).Select(v => v.Size).FirstOrDefault() is int size and > 0 ? size
                : throw new GraloraException("UnsupportedDType", GraloraErrorKind.InvalidArgument, $"dtype {type} cannot be stored in safetensors files written here.", type);

        /// <summary>The tensor dtype of a safetensors dtype name (F32, BF16, …).</summary>
        public static ScalarType TypeOf(string dtype) => DTypes[dtype].Type;

        internal static Tensor ReadTensor(Stream stream, long dataStart, SafetensorsEntry entry)
        {
            var flat = torch.empty(entry.Shape, dtype: DTypes[entry.DType].Type);
            try
            {
                ReadInto(stream, dataStart, entry, flat);
                return flat;
            }
            catch
            {
                flat.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Reads an entry's bytes straight into <paramref name="target"/>'s memory (a contiguous CPU tensor of the
        /// entry's dtype and size), through a small buffer: no per-tensor byte array.
        /// </summary>
        internal static void ReadInto(Stream stream, long dataStart, SafetensorsEntry entry, Tensor target)
        {
            if (entry.End == entry.Begin) return;
            stream.Seek(dataStart + entry.Begin, SeekOrigin.Begin);
            target.ReadBytesFromStream(stream, 1 << 20);
        }

        /// <summary>
        /// Writes tensors (any device, contiguous or not) as safetensors, atomically: the file is written to a
        /// temporary name in the same folder, flushed, then renamed over the target. Tensors are converted one at
        /// a time, so no second copy of the whole set is held.
        /// </summary>
        /// <param name="path">Target file.</param>
        /// <param name="tensors">Tensors by name.</param>
        /// <param name="metadata">The header's __metadata__ map (Hugging Face writes {"format": "pt"}).</param>
        /// <param name="floatingType">When given, floating tensors are stored in this dtype (converted one at a time).</param>
        public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, ScalarType? floatingType = null) =>
            Write(path, tensors.Select(kv => new TensorSource(kv.Key, kv.Value.shape, kv.Value.dtype, () => kv.Value)).ToList(), metadata, floatingType);

        /// <summary>
        /// Writes tensors given by <see cref="TensorSource"/>: shapes and dtypes up front, values produced one at a time
        /// while writing (and disposed when <see cref="TensorSource.Owned"/>), so computed tensors such as merged
        /// weights never exist all at once. Atomic like the dictionary overload.
        /// </summary>
        public static void Write(string path, IReadOnlyList<TensorSource> tensors, IReadOnlyDictionary<string, string>? metadata = null, ScalarType? floatingType = null)
        {
            var ordered = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
            var header = new Dictionary<string, object>();
            if (metadata != null && metadata.Count > 0) header["__metadata__"] = metadata;
            long offset = 0;
            foreach (var t in ordered)
            {
                var stored = t.StoredType(floatingType);
                var (dtype, size) = DTypes.Where(kv => kv.Value.Type == stored).Select(kv => (kv.Key, kv.Value.Size)).FirstOrDefault();
                if (dtype == null)
                    throw new GraloraException("UnsupportedDType", GraloraErrorKind.InvalidArgument,
                        $"Tensor '{t.Name}' has dtype {stored}, which safetensors files written here do not support (use {string.Join(", ", DTypes.Values.Select(v => v.Type))}).", t.Name);
                long length = t.Shape.Aggregate(1L, (a, d) => a * d) * size;
                header[t.Name] = new { dtype, shape = t.Shape, data_offsets = new[] { offset, offset + length } };
                offset += length;
            }
            byte[] json = JsonSerializer.SerializeToUtf8Bytes(header);
            int padding = (8 - json.Length % 8) % 8;
            var headerBytes = new byte[json.Length + padding];
            json.CopyTo(headerBytes, 0);
            for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';

            AtomicFile.Write(path, stream =>
            {
                stream.Write(BitConverter.GetBytes((long)headerBytes.Length));
                stream.Write(headerBytes);
                foreach (var source in ordered)
                {
                    var value = source.Get();
                    try
                    {
                        if (!value.shape.SequenceEqual(source.Shape))
                            throw new InvalidOperationException($"tensor '{source.Name}' changed shape while being written");
                        using var cpu = value.detach().to(source.StoredType(floatingType), CPU).contiguous();
                        if (cpu.numel() > 0) cpu.WriteBytesToStream(stream, 1 << 20);
                    }
                    finally
                    {
                        if (source.Owned) value.Dispose();
                    }
                }
            });
        }
    }

    /// <summary>
    /// A tensor to write: name, shape and dtype up front, the values on demand (disposed after writing when
    /// <paramref name="Owned"/>). <paramref name="KeepDType"/>: stored in its own dtype even when the file's floating
    /// tensors are converted (quantisation statistics stay float32 in a bfloat16 checkpoint).
    /// </summary>
    public sealed record TensorSource(string Name, long[] Shape, ScalarType DType, Func<Tensor> Get, bool Owned = false, bool KeepDType = false)
    {
        /// <summary>The dtype this tensor is stored in when floating tensors are written as <paramref name="floatingType"/>.</summary>
        public ScalarType StoredType(ScalarType? floatingType) => floatingType is { } f && !KeepDType && is_floating_point(DType) ? f : DType;
    }
}
