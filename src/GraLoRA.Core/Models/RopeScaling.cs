using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GraLoRA.Models
{
    /// <summary>
    /// config.json's rope_scaling, for the types transformers' modeling_rope_utils computes: linear, dynamic (NTK),
    /// yarn, longrope and llama3 (type "default" or no rope_scaling: plain RoPE).
    /// </summary>
    public sealed record RopeScaling
    {
        /// <summary>The rope types implemented (rope_type, or the older key type).</summary>
        public static IReadOnlyList<string> SupportedTypes { get; } = new[] { "default", "linear", "dynamic", "yarn", "longrope", "llama3" };

        /// <summary>rope_type: linear, dynamic, yarn, longrope or llama3.</summary>
        public string Type { get; init; } = "linear";
        /// <summary>factor (longrope: derived from max_position_embeddings / original_max_position_embeddings when the config has the latter).</summary>
        public double Factor { get; init; } = 1;
        /// <summary>llama3: low_freq_factor.</summary>
        public double LowFreqFactor { get; init; }
        /// <summary>llama3: high_freq_factor.</summary>
        public double HighFreqFactor { get; init; }
        /// <summary>llama3 and yarn: original_max_position_embeddings inside rope_scaling (yarn: null means max_position_embeddings).</summary>
        public int? OriginalMaxPositions { get; init; }
        /// <summary>yarn and longrope: attention_factor (null: derived from the factor).</summary>
        public double? AttentionFactor { get; init; }
        /// <summary>yarn: beta_fast (default 32).</summary>
        public double? BetaFast { get; init; }
        /// <summary>yarn: beta_slow (default 1).</summary>
        public double? BetaSlow { get; init; }
        /// <summary>yarn: mscale.</summary>
        public double? Mscale { get; init; }
        /// <summary>yarn: mscale_all_dim.</summary>
        public double? MscaleAllDim { get; init; }
        /// <summary>yarn: truncate (default true: the correction range is rounded outwards to whole dimensions).</summary>
        public bool Truncate { get; init; } = true;
        /// <summary>longrope: short_factor, one per rotated frequency.</summary>
        public IReadOnlyList<double>? ShortFactor { get; init; }
        /// <summary>longrope: long_factor, one per rotated frequency.</summary>
        public IReadOnlyList<double>? LongFactor { get; init; }

        /// <summary>rope_scaling as config.json holds it.</summary>
        public JsonObject ToJson()
        {
            var json = new JsonObject { ["rope_type"] = Type };
            if (Type != "longrope") json["factor"] = Factor;
            if (Type == "llama3") { json["low_freq_factor"] = LowFreqFactor; json["high_freq_factor"] = HighFreqFactor; }
            if (OriginalMaxPositions is { } o) json["original_max_position_embeddings"] = o;
            if (AttentionFactor is { } a) json["attention_factor"] = a;
            if (BetaFast is { } bf) json["beta_fast"] = bf;
            if (BetaSlow is { } bs) json["beta_slow"] = bs;
            if (Mscale is { } m) json["mscale"] = m;
            if (MscaleAllDim is { } ma) json["mscale_all_dim"] = ma;
            if (!Truncate) json["truncate"] = false;
            if (ShortFactor is not null) json["short_factor"] = new JsonArray(ShortFactor.Select(v => (JsonNode?)v).ToArray());
            if (LongFactor is not null) json["long_factor"] = new JsonArray(LongFactor.Select(v => (JsonNode?)v).ToArray());
            return json;
        }

        /// <summary>
        /// Reads rope_scaling (null when absent, null or of type default). Phi-3 configs call longrope "su" (and old
        /// ones "yarn"): transformers' Phi3Config renames both to longrope, and so does this.
        /// </summary>
        internal static RopeScaling? Read(ConfigFields fields, string modelType, int rotaryDim)
        {
            if (!fields.TryGet("rope_scaling", out var rs)) return null;
            if (rs.ValueKind != JsonValueKind.Object) throw fields.Bad("rope_scaling", "is not an object");
            GraloraException Bad(string f, string p) => fields.Bad("rope_scaling." + f, p);
            string type = IO.UntrustedFiles.String(rs, "rope_type", Bad) ?? IO.UntrustedFiles.String(rs, "type", Bad) ?? "default";
            if (modelType == "phi3" && type is "su" or "yarn") type = "longrope";
            if (!SupportedTypes.Contains(type))
                throw fields.Unsupported("rope_scaling", $"of type '{type}'", $"rope types {string.Join(", ", SupportedTypes)} are");
            if (type == "default") return null;
            double? Number(string f, bool required)
            {
                if (!rs.TryGetProperty(f, out var v) || v.ValueKind == JsonValueKind.Null)
                    return required ? throw Bad(f, $"is missing (rope type {type} needs it)") : null;
                return v.ValueKind == JsonValueKind.Number && double.IsFinite(v.GetDouble()) && Math.Abs(v.GetDouble()) < 1e12 ? v.GetDouble() : throw Bad(f, "is not a number");
            }
            IReadOnlyList<double> Factors(string f)
            {
                if (!rs.TryGetProperty(f, out var v) || v.ValueKind != JsonValueKind.Array) throw Bad(f, "is missing or not a list of numbers (rope type longrope needs it)");
                var list = v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && double.IsFinite(e.GetDouble()) && e.GetDouble() > 0 ? e.GetDouble() : throw Bad(f, "holds something other than positive numbers")).ToArray();
                return list.Length == rotaryDim / 2 ? list : throw Bad(f, $"has {list.Length} entries; the rotated width {rotaryDim} needs {rotaryDim / 2}");
            }
            int? Positions(bool required) => Number("original_max_position_embeddings", required) is { } o
                ? (o >= 1 && o == Math.Floor(o) && o < int.MaxValue ? (int)o : throw Bad("original_max_position_embeddings", "is not a positive whole number")) : null;
            var scaling = type switch
            {
                "linear" or "dynamic" => new RopeScaling { Type = type, Factor = Number("factor", true)!.Value },
                "llama3" => new RopeScaling
                {
                    Type = type, Factor = Number("factor", true)!.Value, LowFreqFactor = Number("low_freq_factor", true)!.Value,
                    HighFreqFactor = Number("high_freq_factor", true)!.Value, OriginalMaxPositions = Positions(true),
                },
                "yarn" => new RopeScaling
                {
                    Type = type, Factor = Number("factor", true)!.Value, OriginalMaxPositions = Positions(false), AttentionFactor = Number("attention_factor", false),
                    BetaFast = Number("beta_fast", false), BetaSlow = Number("beta_slow", false), Mscale = Number("mscale", false), MscaleAllDim = Number("mscale_all_dim", false),
                    Truncate = !rs.TryGetProperty("truncate", out var t) || t.ValueKind != JsonValueKind.False,
                },
                _ => new RopeScaling
                {
                    Type = type, Factor = Number("factor", false) ?? 1, AttentionFactor = Number("attention_factor", false),
                    ShortFactor = Factors("short_factor"), LongFactor = Factors("long_factor"),
                },
            };
            if (scaling.Factor <= 0) throw Bad("factor", $"is {scaling.Factor}; it must be positive");
            if (type == "llama3" && scaling.HighFreqFactor <= scaling.LowFreqFactor)
                throw Bad("high_freq_factor", $"({scaling.HighFreqFactor}) must be larger than low_freq_factor ({scaling.LowFreqFactor})");
            return scaling;
        }
    }
}
