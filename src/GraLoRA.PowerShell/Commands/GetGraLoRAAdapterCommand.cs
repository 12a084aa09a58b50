using System.Linq;
using System.Management.Automation;
using GraLoRA.PowerShell.Completion;
using GraLoRA.Adapters;
using GraLoRA.Diagnostics;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Lists a model's adapters: method, rank, k, alpha, targets, parameter count, and whether each is active and merged.</para>
    /// <para type="description">Outputs one AdapterInfo per adapter, in the order they were added, or only the named ones; an unknown name is an error (AdapterNotFound). With -Detailed it outputs instead one AdapterSpectrum per adapted layer: ΔW's singular values, its numerical rank (singular values above max(out, in)·ε·σ_max), its bound MaxRank (LoRA r; GraLoRA k·r + hybrid r) and its entropy-based effective rank exp(−Σ p ln p), p = σ/Σσ; -ChartPath draws the spectra as a PNG. A fresh adapter has B = 0, so ΔW = 0 and rank 0 until it trains.</para>
    /// </summary>
    /// <example><code>$model | Get-GraLoRAAdapter</code><para>Lists every adapter of the model with its method, rank, k, alpha, targets and parameter count.</para></example>
    /// <example><code>Get-GraLoRAAdapter -Model $model -Name default | Select-Object -ExpandProperty Targets</code><para>Shows the modules the adapter named default was injected into.</para></example>
    /// <example><code>$model | Get-GraLoRAAdapter -Detailed -ChartPath ./spectra.png | Format-Table Layer, Method, Rank, K, MaxRank, NumericalRank, EffectiveRank</code><para>Shows, per adapted layer, ΔW's numerical rank against its bound (LoRA r, GraLoRA k·r) and its entropy-based effective rank, and draws the singular-value spectra.</para></example>
    [Cmdlet(VerbsCommon.Get, "GraLoRAAdapter")]
    [OutputType(typeof(AdapterInfo), typeof(AdapterSpectrum))]
    public sealed class GetGraLoRAAdapterCommand : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or an object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Only these adapters (default: all).</para></summary>
        [Parameter(Position = 0)]
        [ArgumentCompleter(typeof(AdapterNameCompleter))]
        public string[]? Name { get; set; }

        /// <summary><para type="description">Output ΔW's singular-value spectrum, numerical rank and effective rank per adapted layer (AdapterSpectrum) instead of the summary.</para></summary>
        [Parameter]
        public SwitchParameter Detailed { get; set; }

        /// <summary><para type="description">With -Detailed: write the spectra (σ_i/σ_1, log scale) to this PNG file.</para></summary>
        [Parameter]
        public string? ChartPath { get; set; }

        /// <summary><para type="description">Replace an existing non-empty file at -ChartPath (without -Force that is an OutputExists error).</para></summary>
        [Parameter]
        public SwitchParameter Force { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            var all = Model.Adapters.List();
            if (ChartPath is not null && !Detailed)
                throw new GraloraException("ChartNeedsDetailed", GraloraErrorKind.InvalidArgument, "-ChartPath draws the spectra of -Detailed: add -Detailed.", ChartPath);
            RequireOutputForForce(Force, ChartPath, nameof(ChartPath));
            if (Detailed)
            {
                var names = Name ?? all.Select(a => a.Name).ToArray();
                var spectra = names.SelectMany(n => RankAnalysis.Adapter(Model.Adapters, n)).ToList();
                if (ChartPath is not null) DiagnosticCharts.SaveSpectra(spectra, ResolvePath(ChartPath), overwrite: Force);
                foreach (var s in spectra) WriteObject(s);
                return;
            }
            if (Name is null)
            {
                foreach (var info in all) WriteObject(info);
                return;
            }
            foreach (var name in Name)
            {
                Model.Adapters.Config(name); // AdapterNotFound, naming the adapters there are
                WriteObject(all.First(a => a.Name == name));
            }
        });
        #endregion
    }
}
