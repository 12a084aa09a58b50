using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GraLoRA.Models
{
    /// <summary>The config.json fields a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) needs, validated on load.</summary>
    public sealed record DecoderConfig
    {
        /// <summary>model_type: llama, mistral, qwen2 or qwen3.</summary>
        public string ModelType { get; init; } = "llama";
        /// <summary>vocab_size.</summary>
        public int VocabSize { get; init; }
        /// <summary>hidden_size.</summary>
        public int HiddenSize { get; init; }
        /// <summary>intermediate_size.</summary>
        public int IntermediateSize { get; init; }
        /// <summary>num_hidden_layers.</summary>
        public int NumLayers { get; init; }
        /// <summary>num_attention_heads.</summary>
        public int NumHeads { get; init; }
        /// <summary>num_key_value_heads (grouped-query attention).</summary>
        public int NumKeyValueHeads { get; init; }
        /// <summary>head_dim (default hidden_size / num_attention_heads).</summary>
        public int HeadDim { get; init; }
        /// <summary>rms_norm_eps.</summary>
        public double RmsNormEps { get; init; } = 1e-6;
        /// <summary>rope_theta.</summary>
        public double RopeTheta { get; init; } = 10000;
        /// <summary>partial_rotary_factor (fraction of head_dim that is rotated).</summary>
        public double PartialRotaryFactor { get; init; } = 1.0;
        /// <summary>rope_scaling type "llama3": factor, low/high frequency factors, original context.</summary>
        public (double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositions)? Llama3RopeScaling { get; init; }
        /// <summary>tie_word_embeddings.</summary>
        public bool TieWordEmbeddings { get; init; }
        /// <summary>Bias on q/k/v (Qwen2 always; Llama when attention_bias).</summary>
        public bool QkvBias { get; init; }
        /// <summary>Bias on o_proj (Llama attention_bias).</summary>
        public bool OutputBias { get; init; }
        /// <summary>Bias on the MLP projections (Llama mlp_bias).</summary>
        public bool MlpBias { get; init; }
        /// <summary>Per-head RMSNorm of q and k before RoPE (Qwen3).</summary>
        public bool QkNorm { get; init; }
        /// <summary>torch_dtype (or, from transformers 4.56, dtype) of the checkpoint; null when the config does not say.</summary>
        public string? TorchDtype { get; init; }

        /// <summary>max_position_embeddings (informational: positions beyond it still compute).</summary>
        public int MaxPositionEmbeddings { get; init; } = 2048;
        /// <summary>bos_token_id, when the config names one.</summary>
        public int? BosTokenId { get; init; }
        /// <summary>eos_token_id (one or several).</summary>
        public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();

        static readonly Dictionary<string, string> Architectures = new()
        {
            ["llama"] = "LlamaForCausalLM", ["mistral"] = "MistralForCausalLM", ["qwen2"] = "Qwen2ForCausalLM", ["qwen3"] = "Qwen3ForCausalLM",
        };

        /// <summary>The model types this decoder implements.</summary>
        public static IReadOnlyCollection<string> SupportedModelTypes => Architectures.Keys;

        /// <summary>
        /// config.json as transformers writes it for this architecture, so that transformers (and this loader) read
        /// it back to the same configuration.
        /// </summary>
        public JsonObject ToJson()
        {
            var json = new JsonObject
            {
                ["architectures"] = new JsonArray(Architectures[ModelType]),
                ["model_type"] = ModelType,
                ["vocab_size"] = VocabSize,
                ["hidden_size"] = HiddenSize,
                ["intermediate_size"] = IntermediateSize,
                ["num_hidden_layers"] = NumLayers,
                ["num_attention_heads"] = NumHeads,
                ["num_key_value_heads"] = NumKeyValueHeads,
                ["head_dim"] = HeadDim,
                ["hidden_act"] = "silu",
                ["max_position_embeddings"] = MaxPositionEmbeddings,
                ["rms_norm_eps"] = RmsNormEps,
                ["rope_theta"] = RopeTheta,
                ["tie_word_embeddings"] = TieWordEmbeddings,
                ["torch_dtype"] = TorchDtype ?? "float32",
                ["use_cache"] = true,
            };
            if (Math.Abs(PartialRotaryFactor - 1.0) > 0) json["partial_rotary_factor"] = PartialRotaryFactor;
            json["rope_scaling"] = Llama3RopeScaling is { } r
                ? new JsonObject { ["rope_type"] = "llama3", ["factor"] = r.Factor, ["low_freq_factor"] = r.LowFreqFactor, ["high_freq_factor"] = r.HighFreqFactor, ["original_max_position_embeddings"] = r.OriginalMaxPositions }
                : null;
            if (ModelType is "llama" or "mistral" or "qwen3") json["attention_bias"] = QkvBias;
            if (ModelType == "llama") json["mlp_bias"] = MlpBias;
            if (ModelType is "qwen2" or "qwen3") json["use_sliding_window"] = false;
            if (BosTokenId is { } bos) json["bos_token_id"] = bos;
            if (EosTokenIds.Count == 1) json["eos_token_id"] = EosTokenIds[0];
            else if (EosTokenIds.Count > 1) json["eos_token_id"] = new JsonArray(EosTokenIds.Select(i => (JsonNode?)i).ToArray());
            return json;
        }

        static GraloraException Bad(string path, string field, string problem) =>
            new("InvalidModelConfig", GraloraErrorKind.InvalidData, $"'{path}': field '{field}' {problem}.", path);

        /// <summary>Reads config.json; unknown model types and missing or mistyped fields name the field.</summary>
        public static DecoderConfig Load(string path)
        {
            if (!File.Exists(path))
                throw new GraloraException("ModelConfigNotFound", GraloraErrorKind.NotFound, $"Model config '{path}' does not exist: a Hugging Face model folder has a config.json.", path);
            using var doc = IO.UntrustedFiles.ParseObject(path, "InvalidModelConfig", "model config (config.json)");
            var root = doc.RootElement;
            GraloraException BadField(string field, string problem) => Bad(path, field, problem);
            IO.UntrustedFiles.RefuseDuplicateKeys(root, key => Bad(path, key, "appears twice"));
            int Int(string name, int? fallback = null)
            {
                if (root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null)
                    return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : throw Bad(path, name, "is not a whole number");
                return fallback ?? throw Bad(path, name, "is missing");
            }
            double Num(string name, double fallback) =>
                root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null
                    ? (v.ValueKind == JsonValueKind.Number && double.IsFinite(v.GetDouble()) ? v.GetDouble() : throw Bad(path, name, "is not a number")) : fallback;
            bool Flag(string name, bool fallback) =>
                !root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? fallback
                    : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Bad(path, name, "is not true or false");
            int? OptionalId(string name) =>
                !root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null : IO.UntrustedFiles.Int(v, name, BadField);
            IReadOnlyList<int> Ids(string name) =>
                !root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? Array.Empty<int>()
                    : v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => IO.UntrustedFiles.Int(e, name, BadField)).ToArray()
                    : new[] { IO.UntrustedFiles.Int(v, name, BadField) };

            string type = root.TryGetProperty("model_type", out var mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString()! : throw Bad(path, "model_type", "is missing");
            if (!Architectures.ContainsKey(type))
                throw new GraloraException("UnsupportedArchitecture", GraloraErrorKind.InvalidData,
                    $"'{path}': model_type '{type}' is not supported; supported decoders are llama, mistral, qwen2 and qwen3.", type);
            int hidden = Int("hidden_size"), heads = Int("num_attention_heads");
            int Positive(string name, int value) => value > 0 ? value : throw Bad(path, name, $"is {value}; it must be a positive whole number");
            Positive("hidden_size", hidden);
            Positive("num_attention_heads", heads);
            (double, double, double, int)? llama3 = null;
            if (root.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object)
            {
                string kind = IO.UntrustedFiles.String(rs, "rope_type", (f, p) => Bad(path, "rope_scaling." + f, p))
                              ?? IO.UntrustedFiles.String(rs, "type", (f, p) => Bad(path, "rope_scaling." + f, p)) ?? "";
                if (kind != "llama3" && kind != "default")
                    throw Bad(path, "rope_scaling", $"has type '{kind}', which is not supported (llama3 and default are)");
                double Scaling(string field) =>
                    rs.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Number && double.IsFinite(v.GetDouble()) && Math.Abs(v.GetDouble()) < 1e9 ? v.GetDouble() : throw Bad(path, "rope_scaling." + field, "is missing or not a number");
                if (kind == "llama3")
                    llama3 = (Scaling("factor"), Scaling("low_freq_factor"), Scaling("high_freq_factor"), (int)Scaling("original_max_position_embeddings"));
            }
            bool attentionBias = Flag("attention_bias", false);
            return new DecoderConfig
            {
                ModelType = type,
                VocabSize = Positive("vocab_size", Int("vocab_size")),
                HiddenSize = hidden,
                IntermediateSize = Positive("intermediate_size", Int("intermediate_size")),
                NumLayers = Positive("num_hidden_layers", Int("num_hidden_layers")),
                NumHeads = heads,
                NumKeyValueHeads = Positive("num_key_value_heads", Int("num_key_value_heads", heads)),
                HeadDim = Positive("head_dim", Int("head_dim", hidden / heads)),
                RmsNormEps = Num("rms_norm_eps", 1e-6),
                RopeTheta = Num("rope_theta", 10000),
                PartialRotaryFactor = Num("partial_rotary_factor", 1.0),
                Llama3RopeScaling = llama3,
                TieWordEmbeddings = Flag("tie_word_embeddings", false),
                QkvBias = type == "qwen2" || attentionBias,
                OutputBias = type != "qwen2" && attentionBias,
                MlpBias = Flag("mlp_bias", false),
                QkNorm = type == "qwen3",
                MaxPositionEmbeddings = Int("max_position_embeddings", 2048),
                BosTokenId = OptionalId("bos_token_id"),
                EosTokenIds = Ids("eos_token_id"),
                TorchDtype = IO.UntrustedFiles.String(root, "torch_dtype", BadField) ?? IO.UntrustedFiles.String(root, "dtype", BadField),
            };
        }
    }
}
