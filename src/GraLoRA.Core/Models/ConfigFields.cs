using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace GraLoRA.Models
{
    /// <summary>
    /// Typed reads of config.json fields that remember every field consulted, so a test can check that each field the
    /// loader reads is listed in the audit table of docs/models.md. Absent and null fields give the fallback, as
    /// transformers' config classes do.
    /// </summary>
    internal sealed class ConfigFields : IDisposable
    {
        readonly JsonDocument? _document;
        readonly JsonElement _root;
        readonly string _path;
        readonly HashSet<string> _read = new(StringComparer.Ordinal);

        public ConfigFields(JsonElement root, string path)
        {
            _root = root;
            _path = path;
        }

        /// <summary>Opens a model's config.json: it must exist and hold one JSON object without duplicate keys.</summary>
        public static ConfigFields Open(string path)
        {
            if (!File.Exists(path))
                throw new GraloraException("ModelConfigNotFound", GraloraErrorKind.NotFound, $"Model config '{path}' does not exist: a Hugging Face model folder has a config.json.", path);
            var doc = IO.UntrustedFiles.ParseObject(path, "InvalidModelConfig", "model config (config.json)");
            var fields = new ConfigFields(doc, path);
            try
            {
                IO.UntrustedFiles.RefuseDuplicateKeys(doc.RootElement, key => fields.Bad(key, "appears twice"));
                return fields;
            }
            catch
            {
                doc.Dispose();
                throw;
            }
        }

        ConfigFields(JsonDocument document, string path) : this(document.RootElement, path) => _document = document;

        /// <inheritdoc />
        public void Dispose() => _document?.Dispose();

        /// <summary>Every field consulted so far (present or not).</summary>
        public IReadOnlySet<string> Read => _read;

        public GraloraException Bad(string field, string problem) =>
            new("InvalidModelConfig", GraloraErrorKind.InvalidData, $"'{_path}': field '{field}' {problem}.", _path);

        /// <summary>A field whose value changes the math in a way this toolkit does not implement.</summary>
        public GraloraException Unsupported(string field, string value, string supported) =>
            new("UnsupportedConfig", GraloraErrorKind.InvalidData,
                $"'{_path}': field '{field}' is {value}, which this toolkit does not implement ({supported}). transformers would compute something else, so the model is not loaded.", field);

        public bool TryGet(string name, out JsonElement value)
        {
            _read.Add(name);
            if (_root.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null) return true;
            value = default;
            return false;
        }

        public int Int(string name, int? fallback = null)
        {
            if (TryGet(name, out var v))
                return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw Bad(name, "is not a whole number");
            return fallback ?? throw Bad(name, "is missing");
        }

        public int? OptionalInt(string name) => TryGet(name, out _) ? Int(name) : null;

        public double Num(string name, double fallback) => OptionalNum(name) ?? fallback;

        /// <summary>
        /// A number that may be switched off: absent gives <paramref name="whenAbsent"/> (transformers' default), an
        /// explicit null gives null (e.g. "sliding_window": null means no window).
        /// </summary>
        public double? NullableNum(string name, double? whenAbsent)
        {
            _read.Add(name);
            if (!_root.TryGetProperty(name, out var v)) return whenAbsent;
            return v.ValueKind == JsonValueKind.Null ? null : OptionalNum(name);
        }

        /// <summary>Like <see cref="NullableNum"/> for whole numbers.</summary>
        public int? NullableInt(string name, int? whenAbsent)
        {
            _read.Add(name);
            if (!_root.TryGetProperty(name, out var v)) return whenAbsent;
            return v.ValueKind == JsonValueKind.Null ? null : Int(name);
        }

        public double? OptionalNum(string name) =>
            TryGet(name, out var v)
                ? (v.ValueKind == JsonValueKind.Number && double.IsFinite(v.GetDouble()) && Math.Abs(v.GetDouble()) < 1e15 ? v.GetDouble() : throw Bad(name, "is not a number"))
                : null;

        public bool Flag(string name, bool fallback) =>
            !TryGet(name, out var v) ? fallback
                : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Bad(name, "is not true or false");

        public string? String(string name) =>
            !TryGet(name, out var v) ? null : v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad(name, $"is {IO.UntrustedFiles.KindName(v.ValueKind)}, not a string");

        public IReadOnlyList<int> Ids(string name) =>
            !TryGet(name, out var v) ? Array.Empty<int>()
                : v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => IO.UntrustedFiles.Int(e, name, Bad)).ToArray()
                : new[] { IO.UntrustedFiles.Int(v, name, Bad) };

        /// <summary>torch_dtype, or dtype (its name from transformers 4.56); both are read.</summary>
        public string? DType()
        {
            string? legacy = String("torch_dtype"), current = String("dtype");
            return legacy ?? current;
        }

        public IReadOnlyList<string>? Strings(string name)
        {
            if (!TryGet(name, out var v)) return null;
            if (v.ValueKind != JsonValueKind.Array) throw Bad(name, "is not a list of strings");
            return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Bad(name, "is not a list of strings")).ToArray();
        }

        /// <summary>Refuses a present, non-default value of a field that changes the math and is not implemented.</summary>
        public void RefuseUnless(string name, Func<JsonElement, bool> isDefault, string supported)
        {
            if (TryGet(name, out var v) && !isDefault(v)) throw Unsupported(name, v.GetRawText(), supported);
        }

        public static bool IsZero(JsonElement v) => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0;
        public static bool IsFalse(JsonElement v) => v.ValueKind == JsonValueKind.False;
    }
}
