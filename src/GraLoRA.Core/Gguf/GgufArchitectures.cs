using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using GraLoRA.Models;

namespace GraLoRA.Gguf
{
    /// <summary>
    /// How one transformers model_type maps onto a llama.cpp architecture (convert_hf_to_gguf.py's model classes).
    /// </summary>
    /// <param name="ModelType">transformers' model_type.</param>
    /// <param name="Name">llama.cpp's general.architecture (the prefix of its hyperparameter keys).</param>
    /// <param name="InterleavedRope">
    /// llama.cpp rotates this architecture's heads as interleaved pairs (its "normal" rope) while transformers rotates
    /// halves: q_proj and k_proj rows (and their LoRA B) are reordered per head so both compute the same attention.
    /// </param>
    /// <param name="Llama3RopeScaling">llama.cpp reads llama3 rope scaling for it as a rope_freqs tensor.</param>
    /// <param name="Biases">The projections whose biases llama.cpp loads for it (others are refused, not dropped).</param>
    /// <param name="ExtraLayerTensors">Layer tensors beyond the common ones: transformers' module path in a layer → llama.cpp's name.</param>
    public sealed record GgufArchitecture(string ModelType, string Name, bool InterleavedRope, bool Llama3RopeScaling,
                                          IReadOnlySet<string> Biases, IReadOnlyDictionary<string, string> ExtraLayerTensors);

    /// <summary>
    /// The architectures GGUF export supports, one table row each; adding an architecture that llama.cpp runs and
    /// this toolkit loads is a new row (plus its extra tensors), and anything else is refused by name.
    /// </summary>
    public static class GgufArchitectures
    {
        static readonly IReadOnlySet<string> NoBiases = new HashSet<string>();
        static readonly IReadOnlyDictionary<string, string> NoExtras = new Dictionary<string, string>();
        static readonly IReadOnlyDictionary<string, string> QkNorms = new Dictionary<string, string>
        {
            ["self_attn.q_norm"] = "attn_q_norm",
            ["self_attn.k_norm"] = "attn_k_norm",
        };

        static readonly GgufArchitecture[] Rows =
        {
            new("llama", "llama", InterleavedRope: true, Llama3RopeScaling: true,
                new HashSet<string> { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" }, NoExtras),
            new("mistral", "llama", InterleavedRope: true, Llama3RopeScaling: true,
                new HashSet<string> { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" }, NoExtras),
            new("qwen2", "qwen2", InterleavedRope: false, Llama3RopeScaling: false, new HashSet<string> { "q_proj", "k_proj", "v_proj" }, NoExtras),
            new("qwen3", "qwen3", InterleavedRope: false, Llama3RopeScaling: false, NoBiases, QkNorms),
        };

        /// <summary>Layer modules every row shares: transformers' path inside model.layers.N → llama.cpp's tensor name in blk.N.</summary>
        static readonly IReadOnlyDictionary<string, string> LayerTensors = new Dictionary<string, string>
        {
            ["input_layernorm"] = "attn_norm",
            ["self_attn.q_proj"] = "attn_q",
            ["self_attn.k_proj"] = "attn_k",
            ["self_attn.v_proj"] = "attn_v",
            ["self_attn.o_proj"] = "attn_output",
            ["post_attention_layernorm"] = "ffn_norm",
            ["mlp.gate_proj"] = "ffn_gate",
            ["mlp.up_proj"] = "ffn_up",
            ["mlp.down_proj"] = "ffn_down",
        };

        /// <summary>Tensors outside the layers.</summary>
        static readonly IReadOnlyDictionary<string, string> GlobalTensors = new Dictionary<string, string>
        {
            ["model.embed_tokens.weight"] = "token_embd.weight",
            ["model.norm.weight"] = "output_norm.weight",
            ["lm_head.weight"] = "output.weight",
        };

        static readonly Regex LayerKey = new(@"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$", RegexOptions.CultureInvariant);

        /// <summary>The transformers model types GGUF export supports.</summary>
        public static IReadOnlyList<string> SupportedModelTypes => Rows.Select(r => r.ModelType).ToList();

        /// <summary>The row for <paramref name="modelType"/>; an unknown type is refused with the supported ones named.</summary>
        public static GgufArchitecture For(string modelType) =>
            Rows.FirstOrDefault(r => r.ModelType == modelType)
            ?? throw new GraloraException("GgufUnsupportedArchitecture", GraloraErrorKind.InvalidArgument,
                $"Model type '{modelType}' cannot be exported to GGUF here: llama.cpp architectures are mapped for {string.Join(", ", SupportedModelTypes)}. Export a Hugging Face checkpoint instead (Export-BaseModel -Format safetensors).", modelType);

        /// <summary>
        /// llama.cpp's name for the transformers weight <paramref name="key"/> (e.g. model.layers.0.self_attn.q_proj.weight →
        /// blk.0.attn_q.weight), and which projection it belongs to (for the rope reordering), or an error naming the key.
        /// </summary>
        public static (string Name, string? Module) TensorName(this GgufArchitecture arch, string key)
        {
            if (GlobalTensors.TryGetValue(key, out var global)) return (global, null);
            var m = LayerKey.Match(key);
            if (m.Success)
            {
                string module = m.Groups[2].Value, kind = m.Groups[3].Value;
                if ((LayerTensors.TryGetValue(module, out var name) || arch.ExtraLayerTensors.TryGetValue(module, out name))
                    && (kind == "weight" || arch.Biases.Contains(module.Split('.').Last())))
                    return ($"blk.{m.Groups[1].Value}.{name}.{kind}", module.Split('.').Last());
                if (kind == "bias" && (LayerTensors.ContainsKey(module)))
                    throw new GraloraException("GgufUnsupportedTensor", GraloraErrorKind.InvalidArgument,
                        $"Tensor '{key}': llama.cpp's {arch.Name} architecture has no bias on {module}, so this model cannot be exported to GGUF without changing its outputs.", key);
            }
            throw new GraloraException("GgufUnsupportedTensor", GraloraErrorKind.InvalidArgument,
                $"Tensor '{key}' has no llama.cpp counterpart in the {arch.Name} architecture (a classification head, or a module this mapping lacks): export the causal LM without it.", key);
        }

        /// <summary>Refuses configurations the row cannot express in GGUF, naming the setting.</summary>
        public static void CheckConfig(this GgufArchitecture arch, DecoderConfig config)
        {
            GraloraException Unsupported(string what) => new("GgufUnsupportedSetting", GraloraErrorKind.InvalidArgument,
                $"{config.ModelType} model: {what} cannot be written to GGUF for llama.cpp's {arch.Name} architecture here.", config.ModelType);
            if (Math.Abs(config.PartialRotaryFactor - 1.0) > 0) throw Unsupported($"partial_rotary_factor {config.PartialRotaryFactor}");
            if (config.RopeScaling is { } rope && !(rope.Type == "llama3" && arch.Llama3RopeScaling))
                throw Unsupported($"rope_scaling of type '{rope.Type}'" + (arch.Llama3RopeScaling ? " (llama3 is written as rope_freqs)" : ""));
        }
    }
}
