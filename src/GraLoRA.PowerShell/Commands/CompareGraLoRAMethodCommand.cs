using System;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Re-runs the GraLoRA paper's comparison at small scale: the same model and data trained with each method at equal trainable parameters, one row per method, plus a PNG of the loss curves.</para>
    /// <para type="description">Each method gets a fresh adapter on -TargetModule (default all-linear) with the paper's settings for -Rank: LoRA, DoRA and MoRA (type 6) at r, GraLoRA with k from the r/k² ≈ 8 rule, RaSA with k = r/8; Full trains whole weights. Every run uses the same seed, data order, learning rate and -MaxSteps, and is evaluated every -EvalSteps steps on the validation data (-ValidationDataset, or -ValidationSplit of the data, default 0.1). LoRA always runs first: it is the reference for time. The adapters are removed afterwards, so the model is left as it was. Outputs one MethodComparisonRow per method: Method, Settings, TrainableParameters, Steps, FinalTrainLoss, FinalValidationLoss, BestValidationLoss, Accuracy (classification data), StepSeconds (median optimizer step), TimeVersusLoRA, PeakMemoryBytes (the process's peak resident memory during the run, Linux) and the History; -ChartPath writes the loss curves. The paper's time ratios (MoRA 1.40–1.45× LoRA, RaSA 1.03–1.09×, GraLoRA 1.06–1.10×) were measured on GPUs at 7–8B scale; on a small CPU model fixed costs weigh more. See docs/methods.md.</para>
    /// </summary>
    /// <example><code>$model | Compare-GraLoRAMethod ./data/train.jsonl -Rank 16 -MaxSteps 100 -ChartPath ./methods.png | Format-Table</code><para>Trains LoRA, GraLoRA, MoRA, RaSA and DoRA at rank 16 for 100 steps each and shows one row per method with its step time relative to LoRA.</para></example>
    /// <example><code>$model | Compare-GraLoRAMethod ./data/train.jsonl -Method GraLoRA, Full -Rank 32 -MaxSteps 50</code><para>Compares GraLoRA with full fine-tuning of the same modules (LoRA runs too, as the time reference).</para></example>
    [Cmdlet(VerbsData.Compare, "GraLoRAMethod", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(MethodComparisonRow))]
    public sealed class CompareGraLoRAMethodCommand : AdapterTrialCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The methods (default LoRA, GraLoRA, MoRA, RaSA, DoRA; add Full for the upper reference).</para></summary>
        [Parameter]
        [ValidateSet("LoRA", "GraLoRA", "DoRA", "MoRA", "RaSA", "Full")]
        public string[]? Method { get; set; }

        /// <summary><para type="description">The rank every method is given (default 16).</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int Rank { get; set; } = 16;

        /// <summary><para type="description">Optimizer steps of each method's run (default 100).</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int MaxSteps { get; set; } = 100;

        /// <summary><para type="description">Evaluate on the validation data every this many steps (default: a tenth of -MaxSteps, at least 1), for the loss curves.</para></summary>
        [Parameter, ValidateRange(1, int.MaxValue)]
        public int EvalSteps { get; set; }

        /// <summary><para type="description">Write the loss curves of every method (training, and validation dashed) to this PNG.</para></summary>
        [Parameter]
        public string? ChartPath { get; set; }

        /// <summary><para type="description">Replace an existing non-empty file at -ChartPath (without -Force that is an OutputExists error, raised before anything trains).</para></summary>
        [Parameter]
        public SwitchParameter Force { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            RequireOutputForForce(Force, ChartPath, nameof(ChartPath));
            var data = PrepareData("Compare-GraLoRAMethod reports validation losses");
            var methods = (Method ?? MethodComparisonOptions.PaperMethods.Select(m => m.ToString()).ToArray()).Select(m => Enum.Parse<AdapterMethod>(m, ignoreCase: true)).ToList();
            var options = new MethodComparisonOptions
            {
                Methods = methods, Rank = Rank,
                Adapter = new AdapterConfig { TargetModules = TargetModule ?? new[] { AdapterConfig.AllLinear } },
                Training = (Settings with
                {
                    MaxSteps = MaxSteps, EvalSteps = MyInvocation.BoundParameters.ContainsKey(nameof(EvalSteps)) ? EvalSteps : null,
                }).ToTrainingOptions(null),
                ClassLabels = data.ClassLabels,
            };
            int total = methods.Contains(AdapterMethod.LoRA) ? methods.Count : methods.Count + 1, done = 0;
            var result = MethodComparison.Run(Model, data.Train, data.Validation, options,
                ChartPath is null ? null : ResolvePath(ChartPath),
                new Reporter<MethodComparisonRow>(r =>
                {
                    done++;
                    WriteProgress(new ProgressRecord(1, "Compare-GraLoRAMethod", string.Format(CultureInfo.InvariantCulture, "{0}/{1}: {2}: validation loss {3:0.0000}, {4:0.00}× LoRA's step time", done, total, r.Settings, r.FinalValidationLoss, r.TimeVersusLoRA))
                        { PercentComplete = 100 * done / total });
                }), overwriteChart: Force);
            WriteProgress(new ProgressRecord(1, "Compare-GraLoRAMethod", "done") { RecordType = ProgressRecordType.Completed });
            if (result.Chart is not null) WriteVerbose($"Loss curves written to '{result.Chart}'.");
            foreach (var row in result.Rows) WriteObject(row);
        });
        #endregion
    }
}
