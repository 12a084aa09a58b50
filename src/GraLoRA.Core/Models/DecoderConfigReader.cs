using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace GraLoRA.Models
{
    /// <summary>
    /// Reads a decoder's config.json the way transformers' config class for its model_type does — the same fields,
    /// the same defaults when a field is absent — and refuses (UnsupportedConfig) every field that would make
    /// transformers compute something this toolkit does not. docs/models.md ("Config fields per model type") lists
    /// each field with its status; a test checks that table against what this reader consults.
    /// </summary>
    internal static class DecoderConfigReader
    {
        /// <summary>Activations implemented, by transformers' ACT2FN name.</summary>
        internal static readonly string[] SupportedActivations = { "silu", "swish", "gelu", "gelu_pytorch_tanh" };

        static readonly Dictionary<string, int> DefaultMaxPositions = new()
        {
            ["llama"] = 2048, ["mistral"] = 4096 * 32, ["qwen2"] = 32768, ["qwen3"] = 32768, ["gemma2"] = 8192, ["gemma3_text"] = 131072, ["phi3"] = 4096,
        };

        public static DecoderConfig Load(string path, out IReadOnlySet<string> fieldsRead)
        {
            using var f = ConfigFields.Open(path);
            fieldsRead = f.Read;

            string type = f.String("model_type") ?? throw f.Bad("model_type", "is missing");
            if (!DecoderConfig.Architectures.ContainsKey(type))
                throw new GraloraException("UnsupportedArchitecture", GraloraErrorKind.InvalidData,
                    $"'{path}': model_type '{type}' is not supported; supported decoders are {string.Join(", ", DecoderConfig.SupportedModelTypes)}.", type);
            bool gemma = type is "gemma2" or "gemma3_text";

            int Positive(string name, int value) => value > 0 ? value : throw f.Bad(name, $"is {value}; it must be a positive whole number");
            int hidden = Positive("hidden_size", f.Int("hidden_size")), heads = Positive("num_attention_heads", f.Int("num_attention_heads"));
            int kvHeads = Positive("num_key_value_heads", f.Int("num_key_value_heads", heads));
            if (heads % kvHeads != 0) throw f.Bad("num_key_value_heads", $"({kvHeads}) does not divide num_attention_heads ({heads})");
            int layers = Positive("num_hidden_layers", f.Int("num_hidden_layers"));
            int headDim = Positive("head_dim", f.Int("head_dim", type switch { "qwen3" => 128, "gemma2" or "gemma3_text" => 256, _ => hidden / heads }));

            // Settings transformers reads that change the math and are not implemented here.
            var quantization = f.TryGet("quantization_config", out var block) ? Quantization.BnbQuantizationConfig.Read(block, path, out _) : null;
            f.RefuseUnless("rope_parameters", _ => false, "transformers 5's rope_parameters is not read yet: give rope_theta and rope_scaling instead");
            f.RefuseUnless("attention_dropout", ConfigFields.IsZero, "dropout inside the base model is not implemented: only 0.0 is");
            if (type == "phi3")
            {
                f.RefuseUnless("resid_pdrop", ConfigFields.IsZero, "dropout inside the base model is not implemented: only 0.0 is");
                f.RefuseUnless("embd_pdrop", ConfigFields.IsZero, "dropout inside the base model is not implemented: only 0.0 is");
            }
            if (type == "gemma3_text")
                f.RefuseUnless("use_bidirectional_attention", ConfigFields.IsFalse, "only causal attention (false) is implemented");
            string act = (gemma ? f.String("hidden_activation") : f.String("hidden_act")) ?? (gemma ? "gelu_pytorch_tanh" : "silu");
            if (!SupportedActivations.Contains(act))
                throw f.Unsupported(gemma ? "hidden_activation" : "hidden_act", $"'{act}'", $"activations {string.Join(", ", SupportedActivations)} are");
            double partial = type == "phi3" ? f.Num("partial_rotary_factor", 1.0) : 1.0;
            if (type != "phi3")
                f.RefuseUnless("partial_rotary_factor", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 1.0,
                    $"partial rotary embeddings are implemented for phi3 only; transformers' {type} rotates the whole head (1.0)");
            if (partial <= 0 || partial > 1) throw f.Bad("partial_rotary_factor", $"is {partial}; it must be in (0, 1]");

            var (window, layerTypes) = ReadWindows(f, type, layers);
            int maxPositions = Positive("max_position_embeddings", f.Int("max_position_embeddings", DefaultMaxPositions[type]));
            int? originalMax = type == "phi3" ? Positive("original_max_position_embeddings", f.Int("original_max_position_embeddings", 4096)) : null;
            int rotaryDim = (int)(headDim * partial);
            var scaling = RopeScaling.Read(f, type, rotaryDim);
            if (scaling?.Type == "llama3" && scaling.OriginalMaxPositions is null) throw f.Bad("rope_scaling.original_max_position_embeddings", "is missing");
            bool attentionBias = type is "llama" or "qwen3" or "gemma2" or "gemma3_text" && f.Flag("attention_bias", false);
            return new DecoderConfig
            {
                ModelType = type,
                VocabSize = Positive("vocab_size", f.Int("vocab_size")),
                HiddenSize = hidden,
                IntermediateSize = Positive("intermediate_size", f.Int("intermediate_size")),
                NumLayers = layers,
                NumHeads = heads,
                NumKeyValueHeads = kvHeads,
                HeadDim = headDim,
                RmsNormEps = f.Num("rms_norm_eps", type == "phi3" ? 1e-5 : 1e-6),
                HiddenAct = act,
                RopeTheta = f.Num("rope_theta", type == "gemma3_text" ? 1_000_000 : 10000),
                PartialRotaryFactor = partial,
                RopeScaling = scaling,
                OriginalMaxPositionEmbeddings = originalMax,
                LocalRopeTheta = type == "gemma3_text" ? f.Num("rope_local_base_freq", 10000) : null,
                SlidingWindow = window,
                LayerTypes = layerTypes,
                QueryPreAttnScalar = gemma ? f.Num("query_pre_attn_scalar", 256) : null,
                AttnLogitSoftcapping = gemma ? f.NullableNum("attn_logit_softcapping", type == "gemma2" ? 50.0 : null) : null,
                FinalLogitSoftcapping = gemma ? f.NullableNum("final_logit_softcapping", type == "gemma2" ? 30.0 : null) : null,
                TieWordEmbeddings = f.Flag("tie_word_embeddings", gemma),
                QkvBias = type == "qwen2" || attentionBias,
                OutputBias = attentionBias,
                MlpBias = type == "llama" && f.Flag("mlp_bias", false),
                QkNorm = type is "qwen3" or "gemma3_text",
                MaxPositionEmbeddings = maxPositions,
                BosTokenId = f.OptionalInt("bos_token_id"),
                EosTokenIds = f.Ids("eos_token_id"),
                TorchDtype = f.DType(),
                Quantization = quantization,
            };
        }

        /// <summary>
        /// The sliding window and which layers use it, by transformers' rule for each model type: Mistral and Phi-3
        /// window every layer when sliding_window is set; Qwen2/Qwen3 only with use_sliding_window, from layer
        /// max_window_layers on; Gemma 2 every other layer starting with the first; Gemma 3 all but every
        /// sliding_window_pattern-th. A layer_types list in the config overrides the rule (Qwen, Gemma).
        /// </summary>
        static (int? Window, IReadOnlyList<string> LayerTypes) ReadWindows(ConfigFields f, string type, int layers)
        {
            int? window;
            Func<int, bool> sliding;
            switch (type)
            {
                case "mistral" or "phi3":
                    window = f.NullableInt("sliding_window", type == "mistral" ? 4096 : null);
                    sliding = _ => window is not null;
                    break;
                case "qwen2" or "qwen3":
                {
                    bool use = f.Flag("use_sliding_window", false);
                    int? size = f.NullableInt("sliding_window", 4096);
                    window = use ? size : null;
                    int firstWindowed = f.Int("max_window_layers", 28);
                    sliding = i => window is not null && i >= firstWindowed;
                    break;
                }
                case "gemma2":
                    window = f.NullableInt("sliding_window", 4096);
                    sliding = i => (i + 1) % 2 != 0;
                    break;
                case "gemma3_text":
                {
                    window = f.NullableInt("sliding_window", 4096);
                    int pattern = f.Int("sliding_window_pattern", 6);
                    if (pattern < 1) throw f.Bad("sliding_window_pattern", $"is {pattern}; it must be at least 1");
                    sliding = i => (i + 1) % pattern != 0;
                    break;
                }
                default:
                    return (null, Enumerable.Repeat(DecoderConfig.FullAttention, layers).ToArray());
            }
            if (window is < 1) throw f.Bad("sliding_window", $"is {window}; it must be a positive number of tokens (or null for none)");
            IReadOnlyList<string> types = type is "qwen2" or "qwen3" or "gemma2" or "gemma3_text" ? f.Strings("layer_types") ?? Derived() : Derived();
            IReadOnlyList<string> Derived() => Enumerable.Range(0, layers).Select(i => sliding(i) ? DecoderConfig.SlidingAttention : DecoderConfig.FullAttention).ToArray();
            if (types.Count != layers) throw f.Bad("layer_types", $"lists {types.Count} layers but num_hidden_layers is {layers}");
            foreach (var t in types)
                if (t is not (DecoderConfig.FullAttention or DecoderConfig.SlidingAttention))
                    throw f.Unsupported("layer_types", $"'{t}'", "full_attention and sliding_attention are");
            if (window is null && types.Contains(DecoderConfig.SlidingAttention))
                throw f.Bad("layer_types", "names sliding_attention layers but no sliding_window is set");
            return (window, types);
        }
    }
}
