using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;

namespace GraLoRA.Models
{
    /// <summary>
    /// The config.json fields of a decoder (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 text, Phi-3), validated on
    /// load (see <see cref="DecoderConfigReader"/>): what transformers' modeling code reads is either implemented here or
    /// refused with UnsupportedConfig.
    /// </summary>
    public sealed record DecoderConfig
    {
        /// <summary>Attention layer type of transformers' layer_types: every earlier token.</summary>
        public const string FullAttention = "full_attention";
        /// <summary>Attention layer type of transformers' layer_types: the last sliding_window tokens.</summary>
        public const string SlidingAttention = "sliding_attention";

        /// <summary>model_type.</summary>
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
        /// <summary>head_dim (default hidden_size / num_attention_heads; Qwen3 128, Gemma 256).</summary>
        public int HeadDim { get; init; }
        /// <summary>rms_norm_eps.</summary>
        public double RmsNormEps { get; init; } = 1e-6;
        /// <summary>hidden_act (Gemma: hidden_activation): silu, gelu or gelu_pytorch_tanh.</summary>
        public string HiddenAct { get; init; } = "silu";
        /// <summary>rope_theta.</summary>
        public double RopeTheta { get; init; } = 10000;
        /// <summary>partial_rotary_factor (Phi-3: fraction of head_dim that is rotated).</summary>
        public double PartialRotaryFactor { get; init; } = 1.0;
        /// <summary>rope_scaling; null for plain RoPE.</summary>
        public RopeScaling? RopeScaling { get; init; }
        /// <summary>Phi-3's top-level original_max_position_embeddings (the pretrained context longrope scales from).</summary>
        public int? OriginalMaxPositionEmbeddings { get; init; }
        /// <summary>Gemma 3's rope_local_base_freq: the RoPE base of sliding-window layers (which get no rope_scaling).</summary>
        public double? LocalRopeTheta { get; init; }
        /// <summary>Sliding window size in tokens (null: none). Which layers use it: <see cref="LayerTypes"/>.</summary>
        public int? SlidingWindow { get; init; }
        /// <summary>Per layer, <see cref="FullAttention"/> or <see cref="SlidingAttention"/> (empty: all full).</summary>
        public IReadOnlyList<string> LayerTypes { get; init; } = Array.Empty<string>();
        /// <summary>Gemma's query_pre_attn_scalar: attention scores are scaled by its inverse square root (null: head_dim).</summary>
        public double? QueryPreAttnScalar { get; init; }
        /// <summary>Gemma 2's attn_logit_softcapping: scores become cap·tanh(score/cap) before the mask (null: none).</summary>
        public double? AttnLogitSoftcapping { get; init; }
        /// <summary>Gemma 2's final_logit_softcapping: logits become cap·tanh(logit/cap) (null: none).</summary>
        public double? FinalLogitSoftcapping { get; init; }
        /// <summary>tie_word_embeddings.</summary>
        public bool TieWordEmbeddings { get; init; }
        /// <summary>Bias on q/k/v (Qwen2 always; Llama, Qwen3 and Gemma when attention_bias).</summary>
        public bool QkvBias { get; init; }
        /// <summary>Bias on o_proj (attention_bias, except Qwen2).</summary>
        public bool OutputBias { get; init; }
        /// <summary>Bias on the MLP projections (Llama mlp_bias).</summary>
        public bool MlpBias { get; init; }
        /// <summary>Per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3).</summary>
        public bool QkNorm { get; init; }
        /// <summary>torch_dtype (or, from transformers 4.56, dtype) of the checkpoint; null when the config does not say.</summary>
        public string? TorchDtype { get; init; }
        /// <summary>The quantization_config of a checkpoint saved quantised by bitsandbytes, or null for full-precision weights.</summary>
        public Quantization.BnbQuantizationConfig? Quantization { get; init; }

        /// <summary>max_position_embeddings (read by dynamic, yarn and longrope RoPE; otherwise informational).</summary>
        public int MaxPositionEmbeddings { get; init; } = 2048;
        /// <summary>bos_token_id, when the config names one.</summary>
        public int? BosTokenId { get; init; }
        /// <summary>eos_token_id (one or several).</summary>
        public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();

        /// <summary>Gemma 2 and 3: (1 + weight) RMSNorm, norms after each sublayer too, √hidden embedding scale, GELU-tanh MLP.</summary>
        public bool IsGemma => ModelType is "gemma2" or "gemma3_text";
        /// <summary>Phi-3: q/k/v in one qkv_proj and gate/up in one gate_up_proj.</summary>
        public bool FusedProjections => ModelType == "phi3";
        /// <summary>Rotated width of each head (head_dim · partial_rotary_factor, truncated as Python's int()).</summary>
        public int RotaryDim => (int)(HeadDim * PartialRotaryFactor);
        /// <summary>The attention score scale: query_pre_attn_scalar^-½ (Gemma), else head_dim^-½.</summary>
        public double AttentionScale => 1.0 / Math.Sqrt(QueryPreAttnScalar ?? HeadDim);
        /// <summary>
        /// Attention computed eagerly (scores, soft-cap, mask, softmax) rather than by scaled_dot_product_attention, whose
        /// TorchSharp 0.107 binding takes neither a scale nor a soft-cap: Gemma's query_pre_attn_scalar or soft-capping.
        /// </summary>
        public bool EagerAttention => AttnLogitSoftcapping is not null || QueryPreAttnScalar is not null;

        /// <summary>
        /// True when keys cached for <paramref name="cachedLength"/> positions no longer fit a sequence of
        /// <paramref name="totalLength"/>: Phi-3 with longrope, whose frequencies change once the sequence passes
        /// original_max_position_embeddings (transformers' Phi3ForCausalLM.prepare_inputs_for_generation then
        /// recomputes the whole sequence once).
        /// </summary>
        public bool CacheStaleAt(long cachedLength, long totalLength)
        {
            if (ModelType != "phi3" || RopeScaling is null) return false;
            long original = OriginalMaxPositionEmbeddings ?? MaxPositionEmbeddings;
            return totalLength >= original + 1 && cachedLength <= original;
        }

        /// <summary>PEFT's default target modules for this model type (<see cref="Adapters.AdapterDefaults.TargetModulesFor"/>).</summary>
        public IReadOnlyList<string> DefaultAdapterTargets => Adapters.AdapterDefaults.TargetModulesFor(ModelType);

        /// <summary>The sliding window of layer <paramref name="layer"/>, or null when it attends to every earlier token.</summary>
        public int? WindowOf(int layer) => layer < LayerTypes.Count && LayerTypes[layer] == SlidingAttention ? SlidingWindow : null;

        internal static readonly IReadOnlyDictionary<string, string> Architectures = new Dictionary<string, string>
        {
            ["llama"] = "LlamaForCausalLM", ["mistral"] = "MistralForCausalLM", ["qwen2"] = "Qwen2ForCausalLM", ["qwen3"] = "Qwen3ForCausalLM",
            ["gemma2"] = "Gemma2ForCausalLM", ["gemma3_text"] = "Gemma3ForCausalLM", ["phi3"] = "Phi3ForCausalLM",
        };

        /// <summary>The model types this decoder implements.</summary>
        public static IReadOnlyCollection<string> SupportedModelTypes => Architectures.Keys.ToArray();

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
                [IsGemma ? "hidden_activation" : "hidden_act"] = HiddenAct,
                ["max_position_embeddings"] = MaxPositionEmbeddings,
                ["rms_norm_eps"] = RmsNormEps,
                ["rope_theta"] = RopeTheta,
                ["rope_scaling"] = RopeScaling?.ToJson(),
                ["tie_word_embeddings"] = TieWordEmbeddings,
                ["torch_dtype"] = TorchDtype ?? "float32",
                ["use_cache"] = true,
                ["attention_dropout"] = 0.0,
            };
            if (Math.Abs(PartialRotaryFactor - 1.0) > 0) json["partial_rotary_factor"] = PartialRotaryFactor;
            if (ModelType is "llama" or "qwen3" or "gemma2" or "gemma3_text") json["attention_bias"] = QkvBias;
            if (ModelType == "llama") json["mlp_bias"] = MlpBias;
            if (ModelType is "mistral" or "phi3" or "gemma2" or "gemma3_text") json["sliding_window"] = SlidingWindow;
            if (ModelType is "qwen2" or "qwen3")
            {
                json["use_sliding_window"] = SlidingWindow is not null;
                json["sliding_window"] = SlidingWindow;
                json["max_window_layers"] = NumLayers;
            }
            if (ModelType is "qwen2" or "qwen3" or "gemma2" or "gemma3_text" && LayerTypes.Count == NumLayers)
                json["layer_types"] = new JsonArray(LayerTypes.Select(t => (JsonNode?)t).ToArray());
            if (IsGemma)
            {
                json["query_pre_attn_scalar"] = QueryPreAttnScalar ?? HeadDim;
                json["attn_logit_softcapping"] = AttnLogitSoftcapping;
                json["final_logit_softcapping"] = FinalLogitSoftcapping;
            }
            if (ModelType == "gemma3_text") json["rope_local_base_freq"] = LocalRopeTheta ?? 10000.0;
            if (ModelType == "phi3")
            {
                json["original_max_position_embeddings"] = OriginalMaxPositionEmbeddings ?? MaxPositionEmbeddings;
                json["resid_pdrop"] = 0.0;
                json["embd_pdrop"] = 0.0;
            }
            if (BosTokenId is { } bos) json["bos_token_id"] = bos;
            if (EosTokenIds.Count == 1) json["eos_token_id"] = EosTokenIds[0];
            else if (EosTokenIds.Count > 1) json["eos_token_id"] = new JsonArray(EosTokenIds.Select(i => (JsonNode?)i).ToArray());
            return json;
        }

        /// <summary>Reads config.json; unknown model types, missing or mistyped fields and unimplemented settings name the field.</summary>
        public static DecoderConfig Load(string path) => DecoderConfigReader.Load(path, out _);
    }
}
