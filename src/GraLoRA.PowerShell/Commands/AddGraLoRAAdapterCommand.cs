using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Management.Automation;
using GraLoRA.PowerShell.Completion;
using GraLoRA.Adapters;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Adds a GraLoRA (or LoRA) adapter to a model's linear layers and makes it the active, trainable one.</para>
    /// <para type="description">Builds a PEFT-style adapter config from the parameters given (each one overrides a PEFT default: GraLoRA r 32, k 2, alpha 64; LoRA r 8, alpha 8; targets q_proj and v_proj) and injects the adapter into every matching module; the base weights are frozen. Everything is checked before the model changes, so a failure leaves it as it was. -K Auto picks the power of two k whose r/k² is nearest 8 (r 16-32 → 2, r 64-128 → 4). Reports trainable and total parameters as PEFT does, on the information stream, tagged GraLoRA (at an interactive prompt shown like Write-Host; in a -NonInteractive session or with $ProgressPreference = 'SilentlyContinue' only with -InformationAction Continue; silence with -InformationAction Ignore). Outputs the model, so the pipeline continues (it transforms the model, as Merge-GraLoRAAdapter and Import-GraLoRAAdapter do, so no -PassThru is needed).</para>
    /// </summary>
    /// <example><code>$model | Add-GraLoRAAdapter -Rank 32 -K 2 -Alpha 64 -TargetModule q_proj, v_proj</code><para>Adds a GraLoRA adapter (r 32, a 2×2 grid) to the attention query and value projections; the base weights are frozen.</para></example>
    /// <example><code>$model | Add-GraLoRAAdapter -Name baseline -Method LoRA -Rank 8 -TargetModule all-linear</code><para>Adds a plain LoRA adapter named baseline to every linear layer except the output head.</para></example>
    [Cmdlet(VerbsCommon.Add, "GraLoRAAdapter", SupportsShouldProcess = true)]
    [OutputType(typeof(BaseModel))]
    public sealed class AddGraLoRAAdapterCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Adapter name (default 'default', as in PEFT).</para></summary>
        [Parameter]
        public string Name { get; set; } = AdapterConfig.DefaultName;

        /// <summary><para type="description">GraLoRA (default) or LoRA, the baseline.</para></summary>
        [Parameter]
        [ValidateSet("GraLoRA", "LoRA")]
        public string Method { get; set; } = "GraLoRA";

        /// <summary><para type="description">Rank r (default: GraLoRA 32, LoRA 8).</para></summary>
        [Parameter]
        public int Rank { get; set; }

        /// <summary><para type="description">GraLoRA grid size k (a whole number, default 2), or Auto: the power of two k dividing r with r/k² nearest 8, for each module's own rank (a -RankPattern rank gets its own k).</para></summary>
        [Parameter]
        public string K { get; set; } = "";

        /// <summary><para type="description">Rank of the hybrid plain-LoRA part (GraLoRA only; default 0).</para></summary>
        [Parameter]
        public int HybridRank { get; set; }

        /// <summary><para type="description">Scale numerator alpha (default: GraLoRA 64, LoRA 8). GraLoRA scales by alpha/(r + hybrid r).</para></summary>
        [Parameter]
        public double Alpha { get; set; }

        /// <summary><para type="description">Dropout probability on the adapter input (default 0).</para></summary>
        [Parameter]
        public double Dropout { get; set; }

        /// <summary><para type="description">Module names or name suffixes to adapt (e.g. q_proj, v_proj), or all-linear for every linear layer except the output head.</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(TargetModuleCompleter))]
        public string[]? TargetModule { get; set; }

        /// <summary><para type="description">A regular expression the whole module name must match (instead of -TargetModule), e.g. '.*\.(q|v)_proj'.</para></summary>
        [Parameter]
        public string? TargetRegex { get; set; }

        /// <summary><para type="description">Module names or suffixes never adapted.</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(TargetModuleCompleter))]
        public string[]? ExcludeModule { get; set; }

        /// <summary><para type="description">Only adapt these layer indices (with -TargetModule).</para></summary>
        [Parameter]
        public int[]? LayersToTransform { get; set; }

        /// <summary><para type="description">Name(s) of the layer list the indices of -LayersToTransform refer to (default: any, e.g. layers).</para></summary>
        [Parameter]
        public string[]? LayersPattern { get; set; }

        /// <summary><para type="description">Linear modules (e.g. lm_head) trained in full and saved with the adapter.</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(TargetModuleCompleter))]
        public string[]? ModulesToSave { get; set; }

        /// <summary><para type="description">Which biases train and are saved with the adapter: none (default), all, or gralora_only / lora_only (matching -Method).</para></summary>
        [Parameter]
        [ValidateSet("none", "all", "gralora_only", "lora_only")]
        public string Bias { get; set; } = "none";

        /// <summary><para type="description">Per-module rank: regular expression (matched against the end of the module name) → r. The first matching pattern wins; use [ordered]@{} when patterns overlap.</para></summary>
        [Parameter]
        public IDictionary? RankPattern { get; set; }

        /// <summary><para type="description">Per-module k (GraLoRA): regular expression → k. The first matching pattern wins; use [ordered]@{} when patterns overlap.</para></summary>
        [Parameter]
        public IDictionary? KPattern { get; set; }

        /// <summary><para type="description">LoRA only: scale by alpha/√r (rsLoRA) instead of alpha/r.</para></summary>
        [Parameter]
        public SwitchParameter UseRsLora { get; set; }

        /// <summary><para type="description">Initialise B randomly too (PEFT's init_weights=False), so the adapter changes the model from the start; for tests and experiments. By default B starts at zero and the adapter is a no-op until trained.</para></summary>
        [Parameter]
        public SwitchParameter RandomInit { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            var config = BuildConfig();
            if (!ShouldProcess($"model '{Model.Name}'", $"Add {config.Method} adapter '{Name}'"))
            {
                WriteObject(Model); // -WhatIf: the model passes on unchanged
                return;
            }
            var targets = Model.AddAdapter(Name, config);
            WriteVerbose($"Adapter '{Name}' ({config.Method}) added to {targets.Count} module(s): {string.Join(", ", targets)}");
            var (trainable, total) = Model.Adapters.ParameterCounts();
            string percent = total == 0 ? "0" : (100.0 * trainable / total).ToString("F4", CultureInfo.InvariantCulture);
            WriteStatus(string.Format(CultureInfo.InvariantCulture, "trainable params: {0:N0} || all params: {1:N0} || trainable%: {2}", trainable, total, percent));
            WriteObject(Model);
        });
        #endregion

        #region Private methods
        bool Bound(string name) => MyInvocation.BoundParameters.ContainsKey(name);

        AdapterConfig BuildConfig()
        {
            var method = Method.Equals("LoRA", StringComparison.OrdinalIgnoreCase) ? AdapterMethod.LoRA : AdapterMethod.GraLoRA;
            var config = new AdapterConfig { Method = method };
            if (Bound(nameof(Rank))) config = config with { Rank = Rank };
            if (Bound(nameof(K))) config = config with { K = KChoice.Parse(K) };
            if (Bound(nameof(HybridRank))) config = config with { HybridRank = HybridRank };
            if (Bound(nameof(Alpha))) config = config with { Alpha = Alpha };
            if (Bound(nameof(Dropout))) config = config with { Dropout = Dropout };
            if (Bound(nameof(TargetModule))) config = config with { TargetModules = TargetModule };
            if (Bound(nameof(TargetRegex))) config = config with { TargetModulesRegex = TargetRegex };
            if (Bound(nameof(ExcludeModule))) config = config with { ExcludeModules = ExcludeModule };
            if (Bound(nameof(LayersToTransform))) config = config with { LayersToTransform = LayersToTransform };
            if (Bound(nameof(LayersPattern))) config = config with { LayersPattern = LayersPattern };
            if (Bound(nameof(ModulesToSave))) config = config with { ModulesToSave = ModulesToSave };
            if (Bound(nameof(Bias))) config = config with { Bias = Bias };
            if (Bound(nameof(RankPattern))) config = config with { RankPattern = ToPatternMap(RankPattern, nameof(RankPattern)) };
            if (Bound(nameof(KPattern))) config = config with { KPattern = ToPatternMap(KPattern, nameof(KPattern)) };
            if (Bound(nameof(UseRsLora))) config = config with { UseRsLora = UseRsLora.IsPresent };
            if (RandomInit) config = config with { InitWeights = false };
            if (config.K is { IsAuto: true } && config.Method == AdapterMethod.GraLoRA && config.EffectiveRank > 0)
            {
                int k = config.EffectiveK;        // Core's rule; modules a -RankPattern gives another rank get their own k
                WriteStatus(string.Format(CultureInfo.InvariantCulture, "-K Auto: r {0} → k {1} (r/k² = {2:0.###}){3}", config.EffectiveRank, k,
                    (double)config.EffectiveRank / (k * k), config.RankPattern is { Count: > 0 } ? "; -RankPattern modules get the k of their own rank" : ""));
            }
            return config;
        }

        static Dictionary<string, int>? ToPatternMap(IDictionary? table, string parameter)
        {
            if (table is null) return null;
            var map = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (DictionaryEntry entry in table)
            {
                string key = LanguagePrimitives.ConvertTo<string>(entry.Key);
                try
                {
                    map[key] = LanguagePrimitives.ConvertTo<int>(entry.Value);
                }
                catch (PSInvalidCastException)
                {
                    throw new GraloraException("InvalidPattern", GraloraErrorKind.InvalidArgument,
                        $"-{parameter} maps '{key}' to '{entry.Value}', which is not a whole number.", key);
                }
            }
            return map;
        }
        #endregion
    }
}
