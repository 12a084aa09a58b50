using System;
using System.Collections.Generic;
using System.Linq;

namespace GraLoRA.Training
{
    /// <summary>
    /// Classification quality as scikit-learn computes it: accuracy, macro-F1 (the unweighted mean of the per-class F1
    /// over the classes that occur among the true or the predicted labels; a class with no true and no predicted
    /// example is left out, one with 2·TP + FP + FN = 0 scores 0), Matthews correlation (the multi-class R_K of
    /// Gorodkin; 0 when undefined) and the confusion matrix (rows: true label, columns: predicted label).
    /// </summary>
    public sealed record ClassificationMetrics
    {
        /// <summary>Label names in class-id order (the matrix's row and column order).</summary>
        public IReadOnlyList<string> Labels { get; init; } = Array.Empty<string>();
        /// <summary>Examples counted.</summary>
        public long Count { get; init; }
        /// <summary>Share of examples predicted correctly.</summary>
        public double Accuracy { get; init; }
        /// <summary>Unweighted mean of the per-class F1 (classes present in truth or prediction).</summary>
        public double MacroF1 { get; init; }
        /// <summary>Matthews correlation coefficient (CoLA's metric), from −1 to 1.</summary>
        public double MatthewsCorrelation { get; init; }
        /// <summary>F1 per class, in class-id order (0 for classes that never occur).</summary>
        public IReadOnlyList<double> F1PerClass { get; init; } = Array.Empty<double>();
        /// <summary>ConfusionMatrix[true][predicted]: how many examples of each true class got each prediction.</summary>
        public long[][] ConfusionMatrix { get; init; } = Array.Empty<long[]>();

        /// <summary>Computes the metrics of <paramref name="predicted"/> against <paramref name="actual"/> class ids in [0, <paramref name="labels"/>.Count).</summary>
        /// <exception cref="GraloraException"><c>InvalidMetricsInput</c> when the lists differ in length, are empty, or hold an id outside the label set.</exception>
        public static ClassificationMetrics Compute(IReadOnlyList<int> actual, IReadOnlyList<int> predicted, IReadOnlyList<string> labels)
        {
            ArgumentNullException.ThrowIfNull(actual);
            ArgumentNullException.ThrowIfNull(predicted);
            ArgumentNullException.ThrowIfNull(labels);
            if (actual.Count != predicted.Count || actual.Count == 0)
                throw new GraloraException("InvalidMetricsInput", GraloraErrorKind.InvalidArgument,
                    $"Metrics need as many predictions as true labels, at least one: got {actual.Count} true and {predicted.Count} predicted.", actual.Count);
            int k = labels.Count;
            var matrix = Enumerable.Range(0, k).Select(_ => new long[k]).ToArray();
            for (int i = 0; i < actual.Count; i++)
            {
                int a = actual[i], p = predicted[i];
                if (a < 0 || a >= k || p < 0 || p >= k)
                    throw new GraloraException("InvalidMetricsInput", GraloraErrorKind.InvalidArgument,
                        $"Example {i} has class id {(a < 0 || a >= k ? a : p)}, outside the {k} labels.", i);
                matrix[a][p]++;
            }
            return FromConfusionMatrix(matrix, labels);
        }

        /// <summary>The metrics of a confusion matrix [true][predicted].</summary>
        public static ClassificationMetrics FromConfusionMatrix(long[][] matrix, IReadOnlyList<string> labels)
        {
            int k = labels.Count;
            double s = 0, correct = 0;
            var t = new double[k];        // true count per class (row sums)
            var p = new double[k];        // predicted count per class (column sums)
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++)
                {
                    s += matrix[i][j];
                    t[i] += matrix[i][j];
                    p[j] += matrix[i][j];
                    if (i == j) correct += matrix[i][j];
                }
            var f1 = new double[k];
            double f1Sum = 0;
            int present = 0;
            for (int c = 0; c < k; c++)
            {
                double tp = matrix[c][c], fp = p[c] - tp, fn = t[c] - tp;
                double denominator = 2 * tp + fp + fn;
                f1[c] = denominator == 0 ? 0 : 2 * tp / denominator;
                if (t[c] + p[c] > 0) { f1Sum += f1[c]; present++; }
            }
            double covYs = correct * s - t.Zip(p).Sum(x => x.First * x.Second);
            double covYy = s * s - p.Sum(x => x * x), covXx = s * s - t.Sum(x => x * x);
            double mcc = covYy * covXx == 0 ? 0 : covYs / Math.Sqrt(covXx * covYy);
            return new ClassificationMetrics
            {
                Labels = labels.ToArray(),
                Count = (long)s,
                Accuracy = s == 0 ? 0 : correct / s,
                MacroF1 = present == 0 ? 0 : f1Sum / present,
                MatthewsCorrelation = mcc,
                F1PerClass = f1,
                ConfusionMatrix = matrix.Select(r => r.ToArray()).ToArray(),
            };
        }

        /// <inheritdoc />
        public override string ToString() => $"accuracy {Accuracy:0.0000}, macro-F1 {MacroF1:0.0000}, MCC {MatthewsCorrelation:0.0000} over {Count} examples";
    }
}
