using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.Json;
using GraLoRA.IO;
using GraLoRA.Models;
using static TorchSharp.torch;

namespace GraLoRA.Quantization
{
    /// <summary>
    /// bitsandbytes' serialisation of one quantised linear weight, as transformers saves it (module prefix "P."):
    /// 4-bit — P.weight (packed uint8 [(n+1)/2, 1]), P.weight.absmax, P.weight.quant_map, with double quantisation
    /// P.weight.nested_absmax and P.weight.nested_quant_map, and P.weight.quant_state.bitsandbytes__nf4 (JSON bytes: quant_type,
    /// blocksize, dtype, shape, nested_blocksize, nested_dtype, nested_offset; QuantState.as_dict(packed=True));
    /// 8-bit — P.weight (int8 [out, in]), P.SCB (float32 [out]) and P.weight_format (0 = row major; Linear8bitLt).
    /// Reading checks every piece and refuses what bitsandbytes would not read the same way.
    /// </summary>
    internal static class BnbTensors
    {
        const string QuantStateKey = "weight.quant_state.bitsandbytes__";
        static readonly string[] QuantStateFields = { "quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset" };
        static readonly string[] WeightFormats = { "row", "col32", "col_turing", "col_ampere" };    // bitsandbytes' LINEAR_8BIT_WEIGHTS_FORMAT_MAPPING

        /// <summary>Whether checkpoint key <paramref name="relative"/> (after the module prefix) belongs to a quantised weight of <paramref name="scheme"/>.</summary>
        public static bool IsWeightKey(string relative, QuantizationScheme scheme) => scheme == QuantizationScheme.Nf4
            ? relative == "weight" || relative.StartsWith("weight.", StringComparison.Ordinal)
            : relative is "weight" or "SCB" or "weight_format";

        /// <summary>
        /// Reads module <paramref name="module"/>'s weight [<paramref name="outFeatures"/>, <paramref name="inFeatures"/>] from
        /// <paramref name="keys"/> (its checkpoint keys, prefix removed, bias excluded) onto <paramref name="device"/>.
        /// </summary>
        public static QuantizedWeight Read(string module, IReadOnlyDictionary<string, SafetensorsEntry> keys, Func<SafetensorsEntry, Tensor> read,
                                           QuantizationScheme scheme, long outFeatures, long inFeatures, Device device)
        {
            GraloraException Bad(string key, string problem) => new("InvalidQuantState", GraloraErrorKind.InvalidData,
                $"Quantised weight '{module}.{key}' {problem}: the checkpoint is not bitsandbytes' {QuantizationOptions.Name(scheme)} serialisation of a [{outFeatures} × {inFeatures}] layer.", module + "." + key);
            var unexpected = keys.Keys.Where(k => !IsWeightKey(k, scheme)).ToList();
            if (unexpected.Count > 0) throw Bad(unexpected[0], $"is not part of bitsandbytes' {QuantizationOptions.Name(scheme)} layout");
            SafetensorsEntry Need(string key, string dtype, long? count = null)
            {
                if (!keys.TryGetValue(key, out var e)) throw Bad(key, "is missing");
                if (e.DType != dtype) throw Bad(key, $"is stored as {e.DType}, not {dtype}");
                long n = e.Shape.Aggregate(1L, (a, d) => a * d);
                if (count is { } c && n != c) throw Bad(key, $"holds {n} values, not {c}");
                return e;
            }
            Tensor Load(SafetensorsEntry e, long[] shape) { using var t = read(e); return t.reshape(shape).to(device); }
            long n = outFeatures * inFeatures;
            if (scheme == QuantizationScheme.Int8)
            {
                if (keys.TryGetValue("weight_format", out var format))
                {
                    using var f = read(format);
                    long code = f.numel() == 1 ? f.to(ScalarType.Int64).item<long>() : -1;
                    if (code != 0)
                        throw new GraloraException("UnsupportedQuantization", GraloraErrorKind.InvalidData,
                            $"Quantised weight '{module}.weight_format' is {(code is >= 1 and <= 3 ? WeightFormats[code] : code.ToString(CultureInfo.InvariantCulture))}: only bitsandbytes' row-major int8 layout (0, 'row') is implemented, as in bitsandbytes itself.", module);
                }
                var codes = Load(Need("weight", "I8", n), new[] { outFeatures, inFeatures });
                var scb = Load(Need("SCB", "F32", outFeatures), new[] { outFeatures });
                return new Int8Weight(codes, scb);
            }
            var stateKeys = keys.Keys.Where(k => k.StartsWith(QuantStateKey, StringComparison.Ordinal)).ToList();
            if (stateKeys.Count != 1) throw Bad(QuantStateKey + "nf4", stateKeys.Count == 0 ? "is missing" : "appears with several quant types");
            var state = ReadState(module, stateKeys[0], read(Need(stateKeys[0], "U8")), Bad);
            if (stateKeys[0] != QuantStateKey + state.QuantType || state.QuantType != "nf4")
                throw new GraloraException("UnsupportedQuantization", GraloraErrorKind.InvalidData,
                    $"Quantised weight '{module}.weight' is bitsandbytes {state.QuantType}: only nf4 is implemented. {QuantizationOptions.NotImplemented}", module);
            if (state.Shape.Length != 2 || state.Shape[0] != outFeatures || state.Shape[1] != inFeatures)
                throw Bad(stateKeys[0], $"records shape [{string.Join(", ", state.Shape)}]");
            long blocks = BlockwiseCodes.BlockCount(n, state.BlockSize);
            using (var map = read(Need("weight.quant_map", "F32", 16)))
            using (var expected = Nf4Weight.Code(CPU))
                if (!map.reshape(16).allclose(expected, 0, 1e-6))
                    throw Bad("weight.quant_map", "differs from bitsandbytes' NF4 levels");
            var packed = Load(Need("weight", "U8", (n + 1) / 2), new[] { (n + 1) / 2, 1L });
            bool nested = keys.ContainsKey("weight.nested_absmax");
            if (nested != state.NestedOffset.HasValue) throw Bad(nested ? stateKeys[0] : "weight.nested_absmax", "is missing (double quantisation is recorded in one place but not the other)");
            var absmax = Load(Need("weight.absmax", nested ? "U8" : "F32", blocks), new[] { blocks });
            NestedAbsmax? nestedAbsmax = null;
            if (nested)
            {
                int nestedBlock = state.NestedBlockSize ?? throw Bad(stateKeys[0], "lacks nested_blocksize");
                if (state.NestedDType != "float32") throw Bad(stateKeys[0], $"records nested_dtype {state.NestedDType}, not float32");
                var nestedValues = Load(Need("weight.nested_absmax", "F32", BlockwiseCodes.BlockCount(blocks, nestedBlock)), new[] { BlockwiseCodes.BlockCount(blocks, nestedBlock) });
                var nestedCode = Load(Need("weight.nested_quant_map", "F32", 256), new[] { 256L });
                nestedAbsmax = new NestedAbsmax(nestedValues, nestedCode, state.NestedOffset!.Value, nestedBlock);
            }
            return new Nf4Weight(new[] { outFeatures, inFeatures }, packed, absmax, state.BlockSize, state.DType, nestedAbsmax);
        }

        sealed record QuantState(string QuantType, int BlockSize, string DType, long[] Shape, int? NestedBlockSize, string? NestedDType, float? NestedOffset);

        static QuantState ReadState(string module, string key, Tensor bytes, Func<string, string, GraloraException> bad)
        {
            JsonDocument doc;
            using (bytes)
            {
                try { doc = JsonDocument.Parse(bytes.data<byte>().ToArray()); }
                catch (JsonException ex) { throw bad(key, "is not JSON (" + ex.Message + ")"); }
            }
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object) throw bad(key, "is not a JSON object");
                foreach (var p in root.EnumerateObject())
                    if (!QuantStateFields.Contains(p.Name)) throw bad(key, $"has field '{p.Name}', which bitsandbytes' QuantState does not know");
                string Str(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw bad(key, $"lacks the string field '{name}'");
                int? OptInt(string name) => root.TryGetProperty(name, out var v) ? (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw bad(key, $"field '{name}' is not a whole number")) : null;
                int blockSize = OptInt("blocksize") ?? throw bad(key, "lacks blocksize");
                if (!QuantizationOptions.ValidBlockSizes.Contains(blockSize)) throw bad(key, $"records blocksize {blockSize}, which bitsandbytes does not accept");
                string dtype = Str("dtype");
                if (!ModelDType.Supported.Contains(dtype)) throw bad(key, $"records dtype '{dtype}'");
                if (!root.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array || shape.EnumerateArray().Any(d => d.ValueKind != JsonValueKind.Number))
                    throw bad(key, "lacks the shape list");
                float? offset = root.TryGetProperty("nested_offset", out var o)
                    ? (o.ValueKind == JsonValueKind.Number && double.IsFinite(o.GetDouble()) ? (float)o.GetDouble() : throw bad(key, "field 'nested_offset' is not a number"))
                    : null;
                int? nestedBlock = OptInt("nested_blocksize");
                if (nestedBlock is { } nb && nb <= 0) throw bad(key, $"records nested_blocksize {nb}");
                return new QuantState(Str("quant_type"), blockSize, dtype, shape.EnumerateArray().Select(d => d.GetInt64()).ToArray(), nestedBlock,
                    root.TryGetProperty("nested_dtype", out _) ? Str("nested_dtype") : null, offset);
            }
        }

        /// <summary>
        /// The checkpoint tensors of a quantised weight of module <paramref name="module"/> with shape
        /// <paramref name="shape"/> [out, in], in bitsandbytes' keys: names, shapes and dtypes known up front (what a
        /// checkpoint writer needs before it has the values), each value picked from the quantised weight when asked.
        /// A picked tensor that is not the weight's own storage is new (its owner disposes it after writing).
        /// </summary>
        public static IReadOnlyList<(string Key, long[] Shape, ScalarType DType, bool New, Func<QuantizedWeight, Tensor> Pick)> Layout(
            string module, long[] shape, QuantizationOptions options)
        {
            long n = shape[0] * shape[1];
            var pieces = new List<(string, long[], ScalarType, bool, Func<QuantizedWeight, Tensor>)>();
            void Add(string key, long[] s, ScalarType t, Func<QuantizedWeight, Tensor> pick, bool isNew = false) => pieces.Add((module + "." + key, s, t, isNew, pick));
            if (options.Scheme == QuantizationScheme.Int8)
            {
                Add("weight", shape, ScalarType.Int8, w => ((Int8Weight)w).Codes);
                Add("SCB", new[] { shape[0] }, ScalarType.Float32, w => ((Int8Weight)w).RowAbsmax);
                Add("weight_format", Array.Empty<long>(), ScalarType.Byte, _ => tensor((byte)0), isNew: true);
                return pieces;
            }
            long blocks = BlockwiseCodes.BlockCount(n, options.BlockSize);
            Add("weight", new[] { (n + 1) / 2, 1L }, ScalarType.Byte, w => ((Nf4Weight)w).Packed);
            Add("weight.absmax", new[] { blocks }, options.DoubleQuant ? ScalarType.Byte : ScalarType.Float32, w => ((Nf4Weight)w).Absmax);
            Add("weight.quant_map", new[] { 16L }, ScalarType.Float32, _ => Nf4Weight.Code(CPU), isNew: true);
            if (options.DoubleQuant)
            {
                Add("weight.nested_absmax", new[] { BlockwiseCodes.BlockCount(blocks, QuantizationOptions.NestedBlockSize) }, ScalarType.Float32, w => ((Nf4Weight)w).Nested!.Absmax);
                Add("weight.nested_quant_map", new[] { 256L }, ScalarType.Float32, w => ((Nf4Weight)w).Nested!.Code);
            }
            int stateLength = QuantStateJson(shape, options, null).Length;
            Add(QuantStateKey + "nf4", new[] { (long)stateLength }, ScalarType.Byte, w => tensor(QuantStateJson(shape, options, (Nf4Weight)w)), isNew: true);
            return pieces;
        }

        /// <summary>
        /// QuantState.as_dict(packed=True)'s JSON, as json.dumps writes it; the nested offset in a fixed-width exponent form
        /// and the text padded with spaces to the length <paramref name="weight"/> = null gives, so its size is known
        /// before quantising (JSON ignores the trailing blanks).
        /// </summary>
        static byte[] QuantStateJson(long[] shape, QuantizationOptions options, Nf4Weight? weight)
        {
            string Text(string dtype, string offset) =>
                FormattableString.Invariant($"{{\"quant_type\": \"nf4\", \"blocksize\": {options.BlockSize}, \"dtype\": \"{dtype}\", \"shape\": [{shape[0]}, {shape[1]}]") +
                (options.DoubleQuant ? FormattableString.Invariant($", \"nested_blocksize\": {QuantizationOptions.NestedBlockSize}, \"nested_dtype\": \"float32\", \"nested_offset\": {offset}}}") : "}");
            int length = Text("bfloat16", "-0.00000000E+000").Length;                        // the widest dtype name and offset
            string text = weight is null ? new string(' ', length)
                : Text(weight.SourceDType, weight.Nested?.Offset.ToString("E8", CultureInfo.InvariantCulture) ?? "").PadRight(length);
            return Encoding.UTF8.GetBytes(text);
        }
    }
}
