using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.IO;
using GraLoRA.Models;

namespace GraLoRA.Training
{
    /// <summary>What <see cref="MethodComparison.Run"/> compares and how each run trains.</summary>
    public sealed record MethodComparisonOptions
    {
        /// <summary>The paper's line-up: LoRA (the reference for time), GraLoRA, MoRA, RaSA and DoRA.</summary>
        public static readonly IReadOnlyList<AdapterMethod> PaperMethods =
            new[] { AdapterMethod.LoRA, AdapterMethod.GraLoRA, AdapterMethod.MoRA, AdapterMethod.RaSA, AdapterMethod.DoRA };

        /// <summary>The methods, in order (default <see cref="PaperMethods"/>; add Full for the upper reference). LoRA runs first even when not listed, as the time reference.</summary>
        public IReadOnlyList<AdapterMethod>? Methods { get; init; }
        /// <summary>The rank every method is given (default 16); each method's settings follow <see cref="AdapterConfig.ForComparison"/>.</summary>
        public int Rank { get; init; } = 16;
        /// <summary>Where the adapters go, dropout, ... (method, rank, k, alpha are set per method). Default: all-linear.</summary>
        public AdapterConfig? Adapter { get; init; }
        /// <summary>Learning rate, steps, seed... of every run (OutputDirectory and SaveSteps are refused: NotForTrials). Without EvalSteps, validation runs every tenth of the steps, for the curves.</summary>
        public TrainingOptions? Training { get; init; }
        /// <summary>Classification data's label names: each adapter then trains the model's classification head as a module to save, and rows report accuracy.</summary>
        public IReadOnlyList<string>? ClassLabels { get; init; }
    }

    /// <summary>One method's run in a <see cref="MethodComparison"/>.</summary>
    public sealed record MethodComparisonRow(AdapterMethod Method, string Settings, long TrainableParameters, int Steps, double? FinalTrainLoss,
        double? FinalValidationLoss, double? BestValidationLoss, double? Accuracy, double StepSeconds, double TimeVersusLoRA, long? PeakMemoryBytes,
        IReadOnlyList<TrainingProgress> History);

    /// <summary>The rows of a comparison and the PNG of their loss curves.</summary>
    public sealed record MethodComparisonResult(IReadOnlyList<MethodComparisonRow> Rows, string? Chart);

    /// <summary>
    /// Re-runs the GraLoRA paper's comparisons at small scale: the same model, data, seed and training options for each
    /// method at equal trainable parameters (the paper's settings: LoRA, DoRA and MoRA at rank r, GraLoRA with k from
    /// the r/k² ≈ 8 rule, RaSA with k = r/8). Each method gets a fresh adapter that is removed afterwards, so the model is
    /// left as it was. Times are median optimizer-step times; peak memory is the process's peak resident memory during
    /// the run (Linux; on a GPU the GPU kit measures device memory instead).
    /// </summary>
    public static class MethodComparison
    {
        /// <summary>
        /// Runs the comparison; <paramref name="chartPath"/> (optional) receives the loss curves as a PNG. An existing
        /// non-empty file there is replaced only with <paramref name="overwriteChart"/> (<see cref="OutputTarget"/>,
        /// checked before anything trains).
        /// </summary>
        public static MethodComparisonResult Run(BaseModel model, IBatchSource train, IBatchSource? validation, MethodComparisonOptions? options = null,
                                                 string? chartPath = null, IProgress<MethodComparisonRow>? progress = null, bool overwriteChart = false)
        {
            options ??= new MethodComparisonOptions();
            if (chartPath is not null) OutputTarget.CheckFile(chartPath, overwriteChart);
            var methods = (options.Methods ?? MethodComparisonOptions.PaperMethods).Distinct().ToList();
            if (methods.Count == 0)
                throw new GraloraException("NoMethods", GraloraErrorKind.InvalidArgument, "Give at least one method to compare, e.g. LoRA, GraLoRA, MoRA, RaSA, DoRA.");
            methods.Remove(AdapterMethod.LoRA);
            methods.Insert(0, AdapterMethod.LoRA);
            var template = options.Adapter ?? new AdapterConfig { TargetModules = new[] { AdapterConfig.AllLinear } };
            if (template.Bias != "none")
                throw new GraloraException("ComparisonTrainsBiases", GraloraErrorKind.InvalidArgument,
                    $"Bias '{template.Bias}' would train the base model's own biases, so later methods would start from a changed model: compare with Bias none.", template.Bias);
            var configs = methods.Select(m => AdapterConfig.ForComparison(m, options.Rank, template with { InitWeights = true })).ToList();
            foreach (var c in configs) c.Validate();                          // every setting checked before anything trains
            var training = options.Training ?? new TrainingOptions();
            AdapterTrials.RefuseJobSettings(training.OutputDirectory is not null ? ("OutputDirectory", training.OutputDirectory)
                : training.SaveSteps is not null ? ("SaveSteps", training.SaveSteps) : (null, null));
            int steps = training.MaxSteps ?? training.Epochs * (int)Math.Ceiling((double)train.BatchesPerEpoch / training.GradientAccumulationSteps);
            training = training with { EvalSteps = training.EvalSteps ?? Math.Max(1, steps / 10) };
            training.Validate();

            var rows = new List<MethodComparisonRow>();
            AdapterTrials.Run(model, "compare", configs, training.Seed, (name, config) =>
            {
                if (options.ClassLabels is { } labels) model.PrepareClassification(name, labels);
                var info = model.Adapters.List().First(a => a.Name == name);
                PeakMemory.Reset();
                var result = new Trainer(model, name, training).Train(train, validation);
                long? peak = PeakMemory.Read();
                double? accuracy = validation is null ? null : Trainer.Evaluate(model, validation).Accuracy;
                double step = result.MedianStepSeconds ?? double.NaN;
                double reference = rows.Count == 0 ? step : rows[0].StepSeconds;
                var row = new MethodComparisonRow(config.Method, Describe(config), info.Parameters, result.Steps, result.FinalLoss, result.ValidationLoss,
                    result.BestValidationLoss, accuracy, step, step / reference, peak, result.History);
                rows.Add(row);
                progress?.Report(row);
                return row;
            });
            return new MethodComparisonResult(rows, chartPath is null ? null : SaveChart(rows, chartPath, overwrite: overwriteChart));
        }

        /// <summary>"GraLoRA r 16 k 2", "RaSA r 16 k 2", "MoRA r 16 type 6", "Full".</summary>
        public static string Describe(AdapterConfig c) => c.Method switch
        {
            AdapterMethod.GraLoRA => $"GraLoRA r {c.EffectiveRank} k {c.EffectiveK}" + (c.HybridRank > 0 ? $" hybrid {c.HybridRank}" : ""),
            AdapterMethod.RaSA => $"RaSA r {c.EffectiveRank} k {c.EffectiveRasaK}",
            AdapterMethod.MoRA => $"MoRA r {c.EffectiveRank} type {c.EffectiveMoraType}",
            AdapterMethod.Full => "Full",
            _ => $"{c.Method} r {c.EffectiveRank}",
        };

        /// <summary>
        /// Training loss of every row against steps (validation loss dashed, where evaluated), as a PNG written atomically;
        /// an existing non-empty file is replaced only with <paramref name="overwrite"/> (else OutputExists).
        /// </summary>
        public static string SaveChart(IReadOnlyList<MethodComparisonRow> rows, string path, int width = 1000, int height = 560, bool overwrite = false)
        {
            OutputTarget.CheckFile(path, overwrite);
            var plot = new ScottPlot.Plot();
            var palette = new ScottPlot.Palettes.Category10();
            for (int i = 0; i < rows.Count; i++)
            {
                var color = palette.GetColor(i);
                var history = rows[i].History;
                var train = plot.Add.Scatter(history.Select(p => (double)p.Step).ToArray(), history.Select(p => p.Loss).ToArray());
                train.LegendText = rows[i].Settings + " (train)";
                train.Color = color;
                train.MarkerSize = 0;
                var evaluated = history.Where(p => p.ValidationLoss is not null).ToList();
                if (evaluated.Count == 0) continue;
                var val = plot.Add.Scatter(evaluated.Select(p => (double)p.Step).ToArray(), evaluated.Select(p => p.ValidationLoss!.Value).ToArray());
                val.LegendText = rows[i].Settings + " (validation)";
                val.Color = color;
                val.LinePattern = ScottPlot.LinePattern.Dashed;
            }
            plot.Axes.Bottom.Label.Text = "step";
            plot.Axes.Left.Label.Text = "loss";
            plot.Title("Methods at equal trainable parameters");
            plot.ShowLegend(ScottPlot.Alignment.UpperRight);
            var bytes = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
            string full = Path.GetFullPath(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            AtomicFile.Write(full, stream => stream.Write(bytes));
            return full;
        }

        /// <summary>The process's peak resident memory (Linux VmHWM), reset between runs through /proc/self/clear_refs.</summary>
        static class PeakMemory
        {
            const string Status = "/proc/self/status", ClearRefs = "/proc/self/clear_refs";

            public static void Reset()
            {
                try { if (File.Exists(ClearRefs)) File.WriteAllText(ClearRefs, "5"); }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
            }

            public static long? Read()
            {
                if (!File.Exists(Status)) return null;
                var line = File.ReadLines(Status).FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
                var parts = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return parts is { Length: >= 2 } && long.TryParse(parts[1], out long kb) ? kb * 1024 : null;
            }
        }
    }
}
