using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// What one named adapter is and where it goes: PEFT's GraloraConfig / LoraConfig (r, gralora_k, hybrid_r, alpha,
    /// dropout, target_modules, exclude_modules, layers_to_transform, layers_pattern, modules_to_save, bias, use_dora;
    /// the MoRA fork's use_mora and mora_type; the RaSA fork's rasa_k, rasa_alpha) plus per-module rank and k overrides.
    /// Checked in <see cref="Validate"/>, the one place these values are checked.
    /// </summary>
    public sealed record AdapterConfig
    {
        /// <summary>Name used when none is given (PEFT's).</summary>
        public const string DefaultName = "default";
        /// <summary>target_modules value that selects every linear layer except the output head.</summary>
        public const string AllLinear = "all-linear";

        /// <summary>GraLoRA (default), or a baseline: LoRA, DoRA, MoRA, RaSA, Full.</summary>
        public AdapterMethod Method { get; init; } = AdapterMethod.GraLoRA;
        /// <summary>Rank r (default: <see cref="AdapterDefaults"/>: GraLoRA 32, LoRA/DoRA/MoRA 8, RaSA 256 — each reference implementation's; none for Full).</summary>
        public int? Rank { get; init; }
        /// <summary>MoRA's compression type (mora_type): 1 (the fork's default) or 6.</summary>
        public int? MoraType { get; init; }
        /// <summary>RaSA's rasa_k: ranks each layer gives to its module type's shared pool (default 1, the authors' RasaConfig).</summary>
        public int? RasaK { get; init; }
        /// <summary>
        /// GraLoRA grid size k: a whole number, or <see cref="KChoice.Auto"/> (the rule of thumb per module rank, RankPattern
        /// included). Null: PEFT's default (<see cref="AdapterDefaults.GraloraK"/>). GraLoRA only.
        /// </summary>
        public KChoice? K { get; init; }
        /// <summary>Hybrid LoRA rank (GraLoRA only; 0 = none).</summary>
        public int HybridRank { get; init; }
        /// <summary>Scale numerator α (default: <see cref="AdapterDefaults"/>: GraLoRA 64, LoRA/DoRA 8); RaSA's rasa_alpha (default 8), which only sets the initial mixing weights; not for MoRA or Full.</summary>
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
        /// <summary>none, all, or <see cref="OnlyBias"/> (gralora_only, lora_only, rasa_only, full_only): which biases train (and are saved) with the adapter.</summary>
        public string Bias { get; init; } = "none";
        /// <summary>Per-module rank: regex (matched against the end of the module name, as PEFT's rank_pattern) → r.</summary>
        public IReadOnlyDictionary<string, int>? RankPattern { get; init; }
        /// <summary>LoRA and DoRA only: per-module alpha, regex → α (PEFT's alpha_pattern, matched like <see cref="RankPattern"/>).</summary>
        public IReadOnlyDictionary<string, double>? AlphaPattern { get; init; }
        /// <summary>Per-module k: regex → k (an extension: the paper leaves adaptive k to future work).</summary>
        public IReadOnlyDictionary<string, int>? KPattern { get; init; }
        /// <summary>True: A kaiming-uniform, B zero (starts as a no-op). False: both random (tests).</summary>
        public bool InitWeights { get; init; } = true;
        /// <summary>LoRA and DoRA: scale by α/√r (rsLoRA).</summary>
        public bool UseRsLora { get; init; }
        /// <summary>base_model_name_or_path written to adapter_config.json.</summary>
        public string? BaseModelNameOrPath { get; init; }
        /// <summary>task_type written to adapter_config.json.</summary>
        public string TaskType { get; init; } = "CAUSAL_LM";

        /// <summary>The rank in effect (0 for Full, which is not low rank).</summary>
        public int EffectiveRank => Rank ?? AdapterDefaults.Rank(Method);
        /// <summary>The k in effect (GraLoRA) for a module of the default rank (RankPattern and KPattern modules may differ).</summary>
        public int EffectiveK => K?.For(EffectiveRank) ?? AdapterDefaults.GraloraK;
        /// <summary>MoRA's type in effect.</summary>
        public int EffectiveMoraType => MoraType ?? AdapterDefaults.MoraType;
        /// <summary>RaSA's rasa_k in effect.</summary>
        public int EffectiveRasaK => RasaK ?? AdapterDefaults.RasaK;
        /// <summary>The alpha in effect (MoRA: 8, the fork's lora_alpha default, written to the file but unused; Full: none, 1).</summary>
        public double EffectiveAlpha => Alpha ?? AdapterDefaults.Alpha(Method);
        /// <summary>The bias mode that trains the adapted layers' own biases: gralora_only, lora_only (LoRA, DoRA, MoRA), rasa_only, full_only.</summary>
        public string OnlyBias => Method switch
        {
            AdapterMethod.GraLoRA => "gralora_only",
            AdapterMethod.RaSA => "rasa_only",
            AdapterMethod.Full => "full_only",
            _ => "lora_only",
        };

        /// <summary>
        /// The paper's comparison at equal trainable parameters for rank <paramref name="rank"/>: LoRA, DoRA and MoRA at r,
        /// GraLoRA with k from <see cref="AutoK"/>, RaSA with k = r/8 (at least 1), Full as is. MoRA uses type 6, which
        /// the RaSA authors' scripts use for their MoRA baseline.
        /// </summary>
        public static AdapterConfig ForComparison(AdapterMethod method, int rank, AdapterConfig? template = null)
        {
            var c = (template ?? new AdapterConfig()) with { Method = method, Rank = method == AdapterMethod.Full ? null : rank, K = null, HybridRank = 0, MoraType = null, RasaK = null, UseRsLora = false };
            return method switch
            {
                AdapterMethod.GraLoRA => c with { K = AutoK(rank), Alpha = 2 * rank },
                AdapterMethod.MoRA => c with { MoraType = 6, Alpha = null },
                AdapterMethod.RaSA => c with { RasaK = Math.Max(1, rank / 8), Alpha = 2 * rank },
                AdapterMethod.Full => c with { Alpha = null, Dropout = 0 },
                _ => c with { Alpha = 2 * rank },
            };
        }

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
            if (Method != AdapterMethod.GraLoRA && (HybridRank != 0 || KPattern is { Count: > 0 } || K is not null))
                throw Bad(NotFor(Method), $"K, KPattern and HybridRank apply to GraLoRA only; drop them for -Method {Method}.", Method);
            if (UseRsLora && Method is not (AdapterMethod.LoRA or AdapterMethod.DoRA))
                throw Bad(NotFor(Method), $"UseRsLora applies to LoRA and DoRA only; drop it for -Method {Method}.", Method);
            if (MoraType is not null && Method != AdapterMethod.MoRA)
                throw Bad(NotFor(Method), $"MoraType applies to MoRA only; drop it for -Method {Method}.", Method);
            if (RasaK is not null && Method != AdapterMethod.RaSA)
                throw Bad(NotFor(Method), $"RasaK applies to RaSA only; drop it for -Method {Method}.", Method);
            if (Alpha is not null && Method is (AdapterMethod.MoRA or AdapterMethod.Full))
                throw Bad(NotFor(Method), $"{Method} has no alpha ({(Method == AdapterMethod.MoRA ? "the MoRA fork scales by 1 and ignores lora_alpha" : "the weights themselves train")}); drop -Alpha.", Method);
            if (Method == AdapterMethod.RaSA && RankPattern is { Count: > 0 })
                throw Bad("NotForRaSA", "RaSA gives every layer of a module type the same rank (they share one pool), so RankPattern does not apply; drop it.", Method);
            if (Method == AdapterMethod.Full && (Rank is not null || RankPattern is { Count: > 0 } || Dropout != 0))
                throw Bad("NotForFull", "Full fine-tuning trains whole weights: it has no rank, rank pattern or adapter dropout; drop them.", Method);
            if (AlphaPattern is { Count: > 0 } && Method is not (AdapterMethod.LoRA or AdapterMethod.DoRA))
                throw Bad(NotFor(Method), Method == AdapterMethod.GraLoRA
                    ? "AlphaPattern applies to LoRA and DoRA only (PEFT's GraloraConfig has no alpha_pattern); drop it or use -Method LoRA."
                    : $"AlphaPattern applies to LoRA and DoRA only; drop it for -Method {Method}.", Method);
            foreach (var (pattern, alpha) in AlphaPattern ?? new Dictionary<string, double>())
                if (!double.IsFinite(alpha))
                    throw Bad("InvalidAlpha", $"AlphaPattern '{pattern}' has the value {alpha}; every alpha must be a finite number.", alpha);
            // Shape-independent option checks (rank, dropout, alpha, k vs r) through the layer options of a nominal module.
            var options = OptionsFor("");
            if (options is not FullOptions) AdapterValidation.CheckCommon(options, null);
            if (options is GraloraOptions g)
                g.Validate(g.K * Math.Max(1, g.K), g.K * Math.Max(1, g.K));
            if (options is RasaOptions or MoraOptions)
                options.Validate(1L << 20, 1L << 20);   // the shape-free checks (k against r, the type) on a nominal wide layer
        }

        static string NotFor(AdapterMethod method) => "NotFor" + method;

        /// <summary>The layer options for module <paramref name="moduleName"/>, with RankPattern/KPattern applied (first matching pattern wins).</summary>
        public IAdapterOptions OptionsFor(string moduleName)
        {
            int rank = PatternValue(RankPattern, moduleName) ?? EffectiveRank;
            switch (Method)
            {
                case AdapterMethod.LoRA or AdapterMethod.DoRA:
                    return new LoraOptions { Rank = rank, Alpha = PatternValue(AlphaPattern, moduleName) ?? EffectiveAlpha, Dropout = Dropout, UseRsLora = UseRsLora, UseDora = Method == AdapterMethod.DoRA, InitWeights = InitWeights };
                case AdapterMethod.MoRA:
                    return new MoraOptions { Rank = rank, MoraType = EffectiveMoraType, Dropout = Dropout, InitWeights = InitWeights };
                case AdapterMethod.RaSA:
                    return new RasaOptions { Rank = rank, K = EffectiveRasaK, Alpha = EffectiveAlpha, Dropout = Dropout, InitWeights = InitWeights };
                case AdapterMethod.Full:
                    return new FullOptions { InitWeights = InitWeights };
            }
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
