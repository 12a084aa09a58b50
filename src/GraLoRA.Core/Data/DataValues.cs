using System;
using System.Collections;
using System.Collections.Generic;
using System.Text.Json;

namespace GraLoRA.Data
{
    /// <summary>Turns JSON elements and arbitrary .NET values into the plain values a <see cref="DataRecord"/> holds.</summary>
    internal static class DataValues
    {
        /// <summary>A JSON value as null, string, long (integers that fit), double, bool, list or dictionary.</summary>
        public static object? FromJson(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.String: return e.GetString();
                case JsonValueKind.Number: return e.TryGetInt64(out long l) ? (object)l : e.GetDouble();
                case JsonValueKind.True: return true;
                case JsonValueKind.False: return false;
                case JsonValueKind.Array:
                    var list = new List<object?>(e.GetArrayLength());
                    foreach (JsonElement item in e.EnumerateArray()) list.Add(FromJson(item));
                    return list;
                case JsonValueKind.Object:
                    return ObjectFromJson(e);
                default: return null;
            }
        }

        /// <summary>
        /// As <see cref="ObjectFromJson"/> for a record of a data file: a string that cannot be decoded (an escaped lone
        /// UTF-16 surrogate such as "\ud800") is reported at its record instead of escaping as InvalidOperationException.
        /// </summary>
        public static Dictionary<string, object?> ObjectFromUntrustedJson(JsonElement e, string path, long position, RecordPositionKind kind)
        {
            try { return ObjectFromJson(e); }
            catch (InvalidOperationException ex)
            {
                throw DataErrors.At(path, position, kind, $"a string with an invalid \\u escape (a lone UTF-16 surrogate such as \\ud800): {ex.Message}", ex);
            }
        }

        /// <summary>A JSON object's properties (the last wins when a name repeats).</summary>
        public static Dictionary<string, object?> ObjectFromJson(JsonElement e)
        {
            var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (JsonProperty p in e.EnumerateObject()) dict[p.Name] = FromJson(p.Value);
            return dict;
        }

        /// <summary>
        /// Any .NET value as a record value: integers as long, floating point and decimal as double, strings and bools as
        /// they are, dictionaries (generic or not) as string-keyed dictionaries, other enumerables as lists; anything
        /// else (dates, byte arrays...) unchanged.
        /// </summary>
        public static object? Normalize(object? value)
        {
            switch (value)
            {
                case null: return null;
                case string or bool or long or double: return value;
                case int or short or sbyte or byte or ushort or uint: return Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
                case ulong u: return u <= long.MaxValue ? (long)u : (double)u;
                case float f: return (double)f;
                case decimal m: return (double)m;
                case char c: return c.ToString();
                case byte[]: return value;
                case JsonElement je: return FromJson(je);
                case IReadOnlyDictionary<string, object?> ro: return NormalizeDictionary(ro);
                case IDictionary dict:
                    var d = new Dictionary<string, object?>(StringComparer.Ordinal);
                    foreach (DictionaryEntry entry in dict) d[Convert.ToString(entry.Key, System.Globalization.CultureInfo.InvariantCulture) ?? ""] = Normalize(entry.Value);
                    return d;
                case IEnumerable items:
                    var list = new List<object?>();
                    foreach (object? item in items) list.Add(Normalize(item));
                    return list;
                default: return value;
            }
        }

        public static Dictionary<string, object?> NormalizeDictionary(IEnumerable<KeyValuePair<string, object?>> fields)
        {
            var d = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, value) in fields) d[key] = Normalize(value);
            return d;
        }
    }
}
