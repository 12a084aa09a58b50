using System.Collections.Generic;
using System.Linq;
using GraLoRA.IO;

namespace GraLoRA.Training
{
    /// <summary>A PNG of a run: training loss (and validation loss) against steps, learning rate on the right axis.</summary>
    public static class TrainingChart
    {
        /// <summary>Draws <paramref name="history"/> into <paramref name="path"/> (written atomically); returns the path.</summary>
        public static string Save(IReadOnlyList<TrainingProgress> history, string path, int width = 900, int height = 500)
        {
            var plot = new ScottPlot.Plot();
            var steps = history.Select(p => (double)p.Step).ToArray();
            var loss = plot.Add.Scatter(steps, history.Select(p => p.Loss).ToArray());
            loss.LegendText = "training loss";
            var evaluated = history.Where(p => p.ValidationLoss is not null).ToList();
            if (evaluated.Count > 0)
            {
                var validation = plot.Add.Scatter(evaluated.Select(p => (double)p.Step).ToArray(), evaluated.Select(p => p.ValidationLoss!.Value).ToArray());
                validation.LegendText = "validation loss";
            }
            var lr = plot.Add.Scatter(steps, history.Select(p => p.LearningRate).ToArray());
            lr.LegendText = "learning rate";
            lr.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Bottom.Label.Text = "step";
            plot.Axes.Left.Label.Text = "loss";
            plot.Axes.Right.Label.Text = "learning rate";
            plot.ShowLegend(ScottPlot.Alignment.UpperRight);            // both curves start high on the left
            var bytes = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
            AtomicFile.Write(path, stream => stream.Write(bytes));
            return path;
        }
    }
}
