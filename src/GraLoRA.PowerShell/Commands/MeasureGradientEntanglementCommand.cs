using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Management.Automation;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Diagnostics;
using GraLoRA.Models;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Shows, on your model and data, how outlier input channels entangle LoRA's gradient and how GraLoRA localises it: per-channel activation statistics and each adapter's deviation from full fine-tuning, per layer and per block.</para>
    /// <para type="description">Runs the first -Batches batches of the dataset through the model (eval mode, active adapters included) and, for each chosen linear layer (-Layer; default every down_proj), records per-input-channel mean |x|, max |x| and excess kurtosis over the non-padding tokens, and flags outlier channels: mean or max |x| at least -OutlierThreshold (default 6) times the median channel's. It computes the full-fine-tuning gradient G = ∂L/∂W of the layer and the update one SGD step on LoRA's and GraLoRA's factors would make to W (paper Eq. 4: G·AᵀA + B·BᵀG; for GraLoRA per block with that block's factors), and reports 1 − cosine similarity and the normalised Frobenius error ‖c·U − G‖/‖G‖ (c the least-squares scale) for the layer and for every block of the k×k grid, plus the outlier channels' share of ‖G‖² and of ‖U‖². By default fresh factors are analysed for both methods at the same parameter count (-Rank, -K, -HybridRank; LoRA gets rank + hybrid rank): A Kaiming-uniform (±1/√fan_in) as PEFT initialises it, and B uniform with the same bound, so neither term dominates by construction (PEFT starts B at zero, which makes the B·BᵀG term vanish; -ZeroB analyses exactly that, U = G·AᵀA). With -Adapter the adapter's own (e.g. trained) factors are used; a B still at zero is replaced the same way (unless -ZeroB) and BSubstituted says so. With -OutDirectory it writes, per layer, &lt;layer&gt;.blocks.png (per-block error heatmaps, LoRA left, GraLoRA right), &lt;layer&gt;.activations.png and &lt;layer&gt;.gradient-channels.png. Outputs one LayerEntanglement per layer. See docs/diagnostics.md.</para>
    /// </summary>
    /// <example><code>$model | Measure-GradientEntanglement ./data/train.jsonl -Layer layers.1.mlp.down_proj -Rank 64 -OutDirectory ./diag</code><para>Measures layer 1's down_proj on four batches, comparing fresh LoRA r 64 with GraLoRA r 64 k 4, and writes the heatmaps and channel charts to ./diag.</para></example>
    /// <example><code>$run.Model | Measure-GradientEntanglement ./data/train.jsonl -Adapter default | Select-Object Layer, OutlierChannels, @{ n = 'Deviation'; e = { $_.Gralora.Deviation } }</code><para>Analyses a trained GraLoRA adapter's own factors on every down_proj it adapts.</para></example>
    [Cmdlet(VerbsDiagnostic.Measure, "GradientEntanglement", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(LayerEntanglement))]
    public sealed class MeasureGradientEntanglementCommand : DatasetCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or any object with a Model property such as Start-GraLoRATraining's result).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">Linear layers to measure: full module names or suffixes at a dot boundary, e.g. down_proj, layers.1.mlp.down_proj (default: every down_proj).</para></summary>
        [Parameter]
        public string[]? Layer { get; set; }

        /// <summary><para type="description">Batches to run (default 4); G and the statistics sum over them.</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int Batches { get; set; } = 4;

        /// <summary><para type="description">Examples per batch (default 4).</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int BatchSize { get; set; } = 4;

        /// <summary><para type="description">Longest example in tokens (default 512).</para></summary>
        [Parameter, ValidateRange(2, int.MaxValue)]
        public int MaxLength { get; set; } = 512;

        /// <summary><para type="description">Rank of the fresh adapters analysed (default 32); ignored with -Adapter.</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int Rank { get; set; } = AdapterDefaults.GraloraRank;

        /// <summary><para type="description">GraLoRA k of the fresh adapter, also the block grid LoRA's deviation is reported on (default: the r/k² ≈ 8 rule, as -K Auto).</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int K { get; set; }

        /// <summary><para type="description">Hybrid rank of the fresh GraLoRA adapter (default 0).</para></summary>
        [Parameter, ValidateRange(0, int.MaxValue)]
        public int HybridRank { get; set; }

        /// <summary><para type="description">Analyse this adapter's own factors (trained or not) instead of fresh ones; only the layers it adapts can be measured.</para></summary>
        [Parameter]
        public string? Adapter { get; set; }

        /// <summary><para type="description">Keep B = 0 as PEFT initialises it (the implied update is then G·AᵀA alone) instead of drawing it.</para></summary>
        [Parameter]
        public SwitchParameter ZeroB { get; set; }

        /// <summary><para type="description">Outlier rule factor: a channel is flagged when its mean or max |x| is at least this many times the median channel's (default 6).</para></summary>
        [Parameter]
        public double OutlierThreshold { get; set; } = ChannelStatistics.DefaultOutlierThreshold;

        /// <summary><para type="description">Synthetic outliers: a hashtable of input channel → factor its activations are multiplied by before each measured layer, e.g. @{ 5 = 50 }.</para></summary>
        [Parameter]
        public Hashtable? InjectOutlier { get; set; }

        /// <summary><para type="description">Seed of the fresh factors (default 0).</para></summary>
        [Parameter]
        public int Seed { get; set; }

        /// <summary><para type="description">Folder for the PNG charts (created if missing; default: no charts). Written as a whole: it must not exist or be empty, unless -Force.</para></summary>
        [Parameter]
        public string? OutDirectory { get; set; }

        /// <summary><para type="description">Replace an existing non-empty folder at -OutDirectory (without -Force that is an OutputExists error).</para></summary>
        [Parameter]
        public SwitchParameter Force { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            RequireOutputForForce(Force, OutDirectory, nameof(OutDirectory));
            string? folder = OutDirectory is null ? null : ResolvePath(OutDirectory);
            if (folder is not null) GraLoRA.IO.OutputTarget.CheckFolder(folder, Force);   // before the measuring, not after it
            var tokenizer = DatasetInput.Tokenizer(Model, "Measure-GradientEntanglement");
            var (name, source) = OpenDataset();
            var data = TrainingData.Prepare(tokenizer, source, null, new DataOptions { Format = DatasetInput.ParseFormat(Format), MaxLength = MaxLength });
            var loader = new BatchLoader(data.Train, data.PadTokenId, new BatchOptions { BatchSize = BatchSize, Shuffle = false });
            var options = new EntanglementOptions
            {
                Layers = Layer, Batches = Batches, Rank = Rank, K = MyInvocation.BoundParameters.ContainsKey(nameof(K)) ? K : KChoice.Auto,
                HybridRank = HybridRank, Adapter = Adapter, Seed = Seed, ZeroB = ZeroB, OutlierThreshold = OutlierThreshold, InjectOutliers = ToInjection(InjectOutlier),
            };
            var results = GradientEntanglement.Measure(Model, loader, options);
            foreach (var layer in folder is null ? results : DiagnosticCharts.SaveEntanglement(results, folder, Force))
                WriteObject(layer);
        });
        #endregion

        #region Private methods
        static Dictionary<int, double>? ToInjection(Hashtable? table)
        {
            if (table is null) return null;
            var map = new Dictionary<int, double>();
            foreach (DictionaryEntry e in table)
            {
                try
                {
                    map[LanguagePrimitives.ConvertTo<int>(e.Key)] = LanguagePrimitives.ConvertTo<double>(e.Value);
                }
                catch (PSInvalidCastException)
                {
                    throw new GraloraException("InvalidOutlierChannel", GraloraErrorKind.InvalidArgument,
                        string.Format(CultureInfo.InvariantCulture, "-InjectOutlier maps '{0}' to '{1}': give input channel numbers and factors, e.g. @{{ 5 = 50 }}.", e.Key, e.Value), e.Key);
                }
            }
            return map;
        }
        #endregion
    }
}
