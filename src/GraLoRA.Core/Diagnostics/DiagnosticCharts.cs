using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.IO;

namespace GraLoRA.Diagnostics
{
    /// <summary>PNG charts of the diagnostics (ScottPlot), written atomically.</summary>
    public static class DiagnosticCharts
    {
        /// <summary>
        /// Writes three PNGs for <paramref name="layer"/> into <paramref name="folder"/>: &lt;layer&gt;.blocks.png (per-block
        /// normalised error, LoRA left and GraLoRA right of a gap), &lt;layer&gt;.activations.png (mean and max |x| per input
        /// channel, outliers marked) and &lt;layer&gt;.gradient-channels.png (column norms of G and of each scaled implied
        /// update). Returns the layer with <see cref="LayerEntanglement.Charts"/> set.
        /// </summary>
        public static LayerEntanglement SaveEntanglement(LayerEntanglement layer, string folder)
        {
            Directory.CreateDirectory(folder);
            string stem = Path.Combine(folder, SafeName(layer.Layer));
            var charts = new List<string>();

            var grids = new[] { layer.Lora, layer.Gralora }.Where(d => d is not null).Select(d => d!).ToList();
            if (grids.Count > 0)
            {
                int rows = grids.Max(d => d.BlockError.GetLength(0));
                int cols = grids.Sum(d => d.BlockError.GetLength(1)) + grids.Count - 1;
                var cells = new double[rows, cols];
                for (int j = 0; j < rows; j++) for (int c = 0; c < cols; c++) cells[j, c] = double.NaN;
                int offset = 0;
                foreach (var d in grids)
                {
                    for (int j = 0; j < d.BlockError.GetLength(0); j++)
                        for (int n = 0; n < d.BlockError.GetLength(1); n++) cells[j, offset + n] = d.BlockError[j, n];
                    offset += d.BlockError.GetLength(1) + 1;
                }
                var plot = new ScottPlot.Plot();
                var heatmap = plot.Add.Heatmap(cells);
                heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
                plot.Add.ColorBar(heatmap);
                plot.Title($"{layer.Layer}: per-block ‖c·U − G‖/‖G‖ — {string.Join(" | ", grids.Select(Describe))}");
                plot.Axes.Bottom.Label.Text = "input block n";
                plot.Axes.Left.Label.Text = "output block j";
                charts.Add(Save(plot, stem + ".blocks.png", 900, 450));
            }

            {
                var plot = new ScottPlot.Plot();
                var channels = Enumerable.Range(0, layer.Activations.Channels).Select(i => (double)i).ToArray();
                var mean = plot.Add.Scatter(channels, layer.Activations.MeanAbs);
                mean.LegendText = "mean |x|";
                mean.MarkerSize = 0;
                var max = plot.Add.Scatter(channels, layer.Activations.MaxAbs);
                max.LegendText = "max |x|";
                max.MarkerSize = 0;
                if (layer.OutlierChannels.Length > 0)
                {
                    var marks = plot.Add.ScatterPoints(layer.OutlierChannels.Select(i => (double)i).ToArray(), layer.OutlierChannels.Select(i => layer.Activations.MaxAbs[i]).ToArray());
                    marks.LegendText = $"outliers ({string.Join(", ", layer.OutlierChannels.Take(8))}{(layer.OutlierChannels.Length > 8 ? ", …" : "")})";
                    marks.MarkerSize = 9;
                }
                plot.Title($"{layer.Layer}: input-channel magnitudes over {layer.Activations.Tokens:N0} tokens");
                plot.Axes.Bottom.Label.Text = "input channel";
                plot.Axes.Left.Label.Text = "|x|";
                plot.ShowLegend(ScottPlot.Alignment.UpperRight);
                charts.Add(Save(plot, stem + ".activations.png", 900, 450));
            }

            {
                var plot = new ScottPlot.Plot();
                var channels = Enumerable.Range(0, layer.GradientChannelNorms.Length).Select(i => (double)i).ToArray();
                var g = plot.Add.Scatter(channels, layer.GradientChannelNorms);
                g.LegendText = "full fine-tuning G";
                g.MarkerSize = 0;
                foreach (var d in grids)
                {
                    var s = plot.Add.Scatter(channels, d.ChannelNorms);
                    s.LegendText = Describe(d) + " c·U";
                    s.MarkerSize = 0;
                }
                plot.Title($"{layer.Layer}: column norms per input channel");
                plot.Axes.Bottom.Label.Text = "input channel";
                plot.Axes.Left.Label.Text = "‖column‖";
                plot.ShowLegend(ScottPlot.Alignment.UpperRight);
                charts.Add(Save(plot, stem + ".gradient-channels.png", 900, 450));
            }
            return layer with { Charts = charts };
        }

        /// <summary>
        /// Writes every layer's charts (<see cref="SaveEntanglement(LayerEntanglement, string)"/>) as one folder: staged
        /// beside <paramref name="folder"/> and swapped in at the end, so an existing non-empty folder is replaced whole,
        /// and only with <paramref name="overwrite"/> (<see cref="OutputTarget"/>). Returns the layers with their charts'
        /// final paths.
        /// </summary>
        public static IReadOnlyList<LayerEntanglement> SaveEntanglement(IReadOnlyList<LayerEntanglement> layers, string folder, bool overwrite)
        {
            string target = Path.GetFullPath(folder);
            OutputTarget.CheckFolder(target, overwrite);
            string parent = Path.GetDirectoryName(target)!;
            Directory.CreateDirectory(parent);
            string staging = Directory.CreateDirectory(Path.Combine(parent, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.partial")).FullName;
            try
            {
                var staged = layers.Select(layer => SaveEntanglement(layer, staging)).ToList();
                AtomicFile.ReplaceDirectory(staging, target);
                return staged.Select(layer => layer with { Charts = layer.Charts.Select(c => Path.Combine(target, Path.GetFileName(c))).ToList() }).ToList();
            }
            finally
            {
                if (Directory.Exists(staging)) Directory.Delete(staging, true);
            }
        }

        /// <summary>
        /// Singular values σ_i/σ_1 (log10) of each spectrum, one line per layer; returns the path. An existing non-empty
        /// file is replaced only with <paramref name="overwrite"/> (<see cref="OutputTarget"/>).
        /// </summary>
        public static string SaveSpectra(IReadOnlyList<AdapterSpectrum> spectra, string path, int width = 900, int height = 500, bool overwrite = false)
        {
            OutputTarget.CheckFile(path, overwrite);
            var plot = new ScottPlot.Plot();
            foreach (var s in spectra)
            {
                if (s.SingularValues.Length == 0 || !(s.SingularValues[0] > 0)) continue;
                double top = s.SingularValues[0];
                var ys = s.SingularValues.Select(v => Math.Log10(Math.Max(v / top, 1e-18))).ToArray();
                var line = plot.Add.Scatter(Enumerable.Range(1, ys.Length).Select(i => (double)i).ToArray(), ys);
                line.MarkerSize = 0;
                line.LegendText = $"{s.Layer} ({s.Method} r {s.Rank}{(s.K > 1 ? $" k {s.K}" : "")}): rank {s.NumericalRank}, eff. {s.EffectiveRank:0.#}";
            }
            plot.Title("ΔW singular values");
            plot.Axes.Bottom.Label.Text = "index i";
            plot.Axes.Left.Label.Text = "log10(σ_i / σ_1)";
            if (spectra.Count <= 12) plot.ShowLegend(ScottPlot.Alignment.LowerLeft);
            return Save(plot, path, width, height);
        }

        /// <summary>Lines of y against x, one per series (reproduction charts); returns the path.</summary>
        public static string SaveLines(string path, string title, string xLabel, string yLabel, IReadOnlyList<(string Name, double[] X, double[] Y)> series, int width = 800, int height = 450)
        {
            var plot = new ScottPlot.Plot();
            foreach (var (name, x, y) in series)
            {
                var line = plot.Add.Scatter(x, y);
                line.LegendText = name;
            }
            plot.Title(title);
            plot.Axes.Bottom.Label.Text = xLabel;
            plot.Axes.Left.Label.Text = yLabel;
            plot.ShowLegend(ScottPlot.Alignment.UpperRight);
            return Save(plot, path, width, height);
        }

        static string Describe(UpdateDeviation d) =>
            d.Method == Adapters.AdapterMethod.LoRA ? $"LoRA r {d.Rank}" : $"GraLoRA r {d.Rank} k {d.K}{(d.HybridRank > 0 ? $" hybrid {d.HybridRank}" : "")}";

        static string Save(ScottPlot.Plot plot, string path, int width, int height)
        {
            var bytes = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
            AtomicFile.Write(path, stream => stream.Write(bytes));
            return path;
        }

        /// <summary>A module name as a file name: characters other than letters, digits, '.', '-' and '_' become '_'.</summary>
        public static string SafeName(string name) =>
            new string(name.Select(c => char.IsLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_').ToArray());
    }
}
