using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// What one named adapter is and where it goes: PEFT's GraloraConfig / LoraConfig (r, gralora_k, hybrid_r, alpha,
    /// dropout, target_modules, exclude_modules, layers_to_transform, layers_pattern, modules_to_save, bias) plus
    /// per-module rank and k overrides. Checked in <see cref="Validate"/>, the one place these values are checked.
    /// </summary>
    public sealed record AdapterConfig
    {
        /// <summary>Name used when none is given (PEFT's).</summary>
        public const string DefaultName = "default";
        /// <summary>target_modules value that selects every linear layer except the output head.</summary>
        public const string AllLinear = "all-linear";

        /// <summary>GraLoRA (default) or the LoRA baseline.</summary>
        public AdapterMethod Method { get; init; } = AdapterMethod.GraLoRA;
        /// <summary>Rank r (default: <see cref="AdapterDefaults"/>, GraLoRA 32, LoRA 8).</summary>
        public int? Rank { get; init; }
        /// <summary>
        /// GraLoRA grid size k: a whole number, or <see cref="KChoice.Auto"/> (the rule of thumb per module rank, RankPattern
        /// included). Null: PEFT's default (<see cref="AdapterDefaults.GraloraK"/>). GraLoRA only.
        /// </summary>
        public KChoice? K { get; init; }
        /// <summary>Hybrid LoRA rank (GraLoRA only; 0 = none).</summary>
        public int HybridRank { get; init; }
        /// <summary>Scale numerator α (default: <see cref="AdapterDefaults"/>, GraLoRA 64, LoRA 8).</summary>
        public double? Alpha { get; init; }
        /// <summary>Dropout on the adapter input.</summary>
        public double Dropout { get; init; }
        /// <summary>Module-name suffixes to adapt (PEFT: exact name or ".suffix"); "all-linear" for every linear but the head. Null: the model's defaults (<see cref="AdapterDefaults.TargetModulesFor"/>).</summary>
        public IReadOnlyList<string>? TargetModules { get; init; }
        /// <summary>A regular expression the whole module name must match (PEFT's string target_modules); replaces <see cref="TargetModules"/>.</summary>
        public string? TargetModulesRegex { get; init; }
        /// <summary>Module-name suffixes never adapted.</summary>
        public IReadOnlyList<string>? ExcludeModules { get; init; }
        /// <summary>Layer indices to adapt (only with suffix targets).</summary>
        public IReadOnlyList<int>? LayersToTransform { get; init; }
        /// <summary>Name(s) of the layer list holding those indices (default: any, e.g. "layers").</summary>
        public IReadOnlyList<string>? LayersPattern { get; init; }
        /// <summary>Linear modules (e.g. lm_head, a classification head) trained in full and saved with the adapter.</summary>
        public IReadOnlyList<string>? ModulesToSave { get; init; }
        /// <summary>none, all, or gralora_only / lora_only: which biases train (and are saved) with the adapter.</summary>
        public string Bias { get; init; } = "none";
        /// <summary>Per-module rank: regex (matched against the end of the module name, as PEFT's rank_pattern) → r.</summary>
        public IReadOnlyDictionary<string, int>? RankPattern { get; init; }
        /// <summary>LoRA only: per-module alpha, regex → α (PEFT's alpha_pattern, matched like <see cref="RankPattern"/>).</summary>
        public IReadOnlyDictionary<string, double>? AlphaPattern { get; init; }
        /// <summary>Per-module k: regex → k (an extension: the paper leaves adaptive k to future work).</summary>
        public IReadOnlyDictionary<string, int>? KPattern { get; init; }
        /// <summary>True: A kaiming-uniform, B zero (starts as a no-op). False: both random (tests).</summary>
        public bool InitWeights { get; init; } = true;
        /// <summary>LoRA only: scale by α/√r (rsLoRA).</summary>
        public bool UseRsLora { get; init; }
        /// <summary>base_model_name_or_path written to adapter_config.json.</summary>
        public string? BaseModelNameOrPath { get; init; }
        /// <summary>task_type written to adapter_config.json.</summary>
        public string TaskType { get; init; } = "CAUSAL_LM";

        /// <summary>The rank in effect.</summary>
        public int EffectiveRank => Rank ?? AdapterDefaults.Rank(Method);
        /// <summary>The k in effect (GraLoRA) for a module of the default rank (RankPattern and KPattern modules may differ).</summary>
        public int EffectiveK => K?.For(EffectiveRank) ?? AdapterDefaults.GraloraK;
        /// <summary>The alpha in effect.</summary>
        public double EffectiveAlpha => Alpha ?? AdapterDefaults.Alpha(Method);
        /// <summary>The bias mode suffix PEFT uses for this method ("gralora_only" or "lora_only").</summary>
        public string OnlyBias => Method == AdapterMethod.GraLoRA ? "gralora_only" : "lora_only";

        /// <summary>
        /// The paper's rule of thumb r/k² ≈ 8: the power of two k dividing r whose r/k² is nearest 8 on a log scale
        /// (ties go to the larger k), so r 16–32 → k 2, r 64–128 → k 4.
        /// </summary>
        public static int AutoK(int rank)
        {
            if (rank <= 0) throw new GraloraException("InvalidRank", GraloraErrorKind.InvalidArgument, $"Rank (r) must be a positive whole number, but it is {rank}.", rank);
            int best = 1;
            double bestDistance = double.MaxValue;
            for (int k = 1; k <= rank; k *= 2)
            {
                if (rank % k != 0) continue;
                double distance = Math.Abs(Math.Log2((double)rank / (k * k) / 8));
                if (distance <= bestDistance + 1e-12) { best = k; bestDistance = distance; }
            }
            return best;
        }

        /// <summary>Checks every field that does not depend on a module's shape; messages name the value and the fix.</summary>
        public void Validate()
        {
            static GraloraException Bad(string id, string message, object? value) => new(id, GraloraErrorKind.InvalidArgument, message, value);
            if (Bias != "none" && Bias != "all" && Bias != OnlyBias)
                throw Bad("InvalidBias", $"Bias '{Bias}' is not supported for {Method}: use none, all or {OnlyBias}.", Bias);
            if (TargetModulesRegex is not null && TargetModules is { Count: > 0 })
                throw Bad("ConflictingTargets", "Give target modules either as a list of names or as one regular expression, not both.", TargetModulesRegex);
            if (TargetModules is { Count: 0 })
                throw Bad("NoTargetModules", "TargetModules is empty: name at least one module (e.g. q_proj, v_proj) or use all-linear.", null);
            foreach (var (name, pattern) in new[] { ("TargetModulesRegex", TargetModulesRegex) }.Concat((RankPattern?.Keys ?? Enumerable.Empty<string>()).Select(k => ("RankPattern", (string?)k)))
                                                                                                  .Concat((KPattern?.Keys ?? Enumerable.Empty<string>()).Select(k => ("KPattern", (string?)k)))
                                                                                                  .Concat((AlphaPattern?.Keys ?? Enumerable.Empty<string>()).Select(k => ("AlphaPattern", (string?)k))))
            {
                if (pattern is null) continue;
                try { _ = new Regex(pattern); }
                catch (ArgumentException ex) { throw Bad("InvalidPattern", $"{name} '{pattern}' is not a valid regular expression: {ex.Message}", pattern); }
            }
            if (LayersToTransform is { } layers && (TargetModulesRegex is not null || layers.Any(i => i < 0)))
                throw Bad("InvalidLayersToTransform", TargetModulesRegex is not null
                    ? "LayersToTransform works only with a list of target module names, not with a regular expression (as in PEFT)."
                    : $"LayersToTransform has a negative index ({string.Join(", ", layers.Where(i => i < 0))}).", layers);
            if (Method == AdapterMethod.GraLoRA && UseRsLora)
                throw Bad("NotForGraLoRA", "UseRsLora applies to LoRA only (GraLoRA scales by alpha/(r + hybrid_r), as PEFT); drop it or use -Method LoRA.", Method);
            if (Method == AdapterMethod.GraLoRA && AlphaPattern is { Count: > 0 })
                throw Bad("NotForGraLoRA", "AlphaPattern applies to LoRA only (PEFT's GraloraConfig has no alpha_pattern); drop it or use -Method LoRA.", Method);
            foreach (var (pattern, alpha) in AlphaPattern ?? new Dictionary<string, double>())
                if (!double.IsFinite(alpha))
                    throw Bad("InvalidAlpha", $"AlphaPattern '{pattern}' has the value {alpha}; every alpha must be a finite number.", alpha);
            if (Method == AdapterMethod.LoRA && (HybridRank != 0 || KPattern is { Count: > 0 } || K is not null))
                throw Bad("NotForLoRA", "K, KPattern and HybridRank apply to GraLoRA only; drop them for -Method LoRA.", Method);
            // Shape-independent option checks (rank, dropout, alpha, k vs r) through the layer options of a nominal module.
            var options = OptionsFor("");
            AdapterValidation.CheckCommon(options, null);
            if (options is GraloraOptions g)
                g.Validate(g.K * Math.Max(1, g.K), g.K * Math.Max(1, g.K));
        }

        /// <summary>The layer options for module <paramref name="moduleName"/>, with RankPattern/KPattern applied (first matching pattern wins).</summary>
        public IAdapterOptions OptionsFor(string moduleName)
        {
            int rank = PatternValue(RankPattern, moduleName) ?? EffectiveRank;
            if (Method == AdapterMethod.LoRA)
                return new LoraOptions { Rank = rank, Alpha = PatternValue(AlphaPattern, moduleName) ?? EffectiveAlpha, Dropout = Dropout, UseRsLora = UseRsLora, InitWeights = InitWeights };
            int k = PatternValue(KPattern, moduleName) ?? K?.For(rank) ?? AdapterDefaults.GraloraK;
            return new GraloraOptions { Rank = rank, K = k, HybridRank = HybridRank, Alpha = EffectiveAlpha, Dropout = Dropout, InitWeights = InitWeights };
        }

        /// <summary>
        /// This config with an Auto k written out, as it is stored and saved (adapter_config.json needs a number):
        /// K = k of the default rank and, when a RankPattern rank gets another k, a KPattern entry per RankPattern (after
        /// the KPatterns given, which win). <see cref="OptionsFor"/> gives every module the same options before and after.
        /// A config without Auto k is returned as it is.
        /// </summary>
        public AdapterConfig Resolved()
        {
            if (Method != AdapterMethod.GraLoRA || K is not { IsAuto: true } auto) return this;
            int k = auto.For(EffectiveRank);
            var ranks = RankPattern ?? new Dictionary<string, int>();
            if (ranks.Values.All(r => auto.For(r) == k)) return this with { K = k };
            // Every rank pattern, in order, so a module takes its k from the same pattern it takes its rank from. A
            // Dictionary keeps insertion order here (nothing is removed), which "first matching pattern wins" needs.
            var kPattern = new Dictionary<string, int>(KPattern ?? new Dictionary<string, int>(), StringComparer.Ordinal);
            foreach (var (pattern, rank) in ranks) kPattern.TryAdd(pattern, auto.For(rank));
            return this with { K = k, KPattern = kPattern };
        }

        // PEFT's get_pattern_key: a pattern matches a module when the name ends with it at a dot boundary.
        static T? PatternValue<T>(IReadOnlyDictionary<string, T>? patterns, string moduleName) where T : struct
        {
            if (patterns is null) return null;
            foreach (var (pattern, value) in patterns)
                if (Regex.IsMatch(moduleName, $"^(.*\\.)?({pattern})$")) return value;
            return null;
        }
    }
}
