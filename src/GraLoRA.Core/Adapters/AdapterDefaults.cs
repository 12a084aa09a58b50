using System;
using System.Collections.Generic;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// PEFT's defaults, declared once: GraloraConfig (r 32, gralora_k 2, alpha 64), LoraConfig (r 8, lora_alpha 8) and
    /// the target modules used when a config names none (PEFT's per-architecture target_modules mapping).
    /// Everything else — options records, configs read from disk, the F# settings — refers here.
    /// </summary>
    public static class AdapterDefaults
    {
        /// <summary>GraloraConfig.r.</summary>
        public const int GraloraRank = 32;
        /// <summary>GraloraConfig.gralora_k.</summary>
        public const int GraloraK = 2;
        /// <summary>GraloraConfig.alpha.</summary>
        public const double GraloraAlpha = 64;
        /// <summary>LoraConfig.r.</summary>
        public const int LoraRank = 8;
        /// <summary>LoraConfig.lora_alpha.</summary>
        public const double LoraAlpha = 8;

        /// <summary>The default rank of <paramref name="method"/>.</summary>
        public static int Rank(AdapterMethod method) => method == AdapterMethod.GraLoRA ? GraloraRank : LoraRank;

        /// <summary>The default alpha of <paramref name="method"/>.</summary>
        public static double Alpha(AdapterMethod method) => method == AdapterMethod.GraLoRA ? GraloraAlpha : LoraAlpha;

        /// <summary>Targets for architectures the mapping does not name (Llama, Mistral, Qwen2/3, Gemma 2/3, …): the attention's q_proj and v_proj.</summary>
        public static IReadOnlyList<string> TargetModules { get; } = new[] { "q_proj", "v_proj" };

        static readonly Dictionary<string, IReadOnlyList<string>> ByModelType = new(StringComparer.OrdinalIgnoreCase)
        {
            ["bert"] = new[] { "query", "value" },
            ["roberta"] = new[] { "query", "value" },
            ["phi3"] = new[] { "qkv_proj" },                  // fused q/k/v projection
        };

        /// <summary>The default targets of a model of type <paramref name="modelType"/> (config.json's model_type).</summary>
        public static IReadOnlyList<string> TargetModulesFor(string modelType) =>
            ByModelType.TryGetValue(modelType, out var targets) ? targets : TargetModules;
    }
}
