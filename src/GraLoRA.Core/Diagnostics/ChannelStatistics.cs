using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace GraLoRA.Diagnostics
{
    /// <summary>
    /// Per-input-channel statistics of a linear layer's activations over tokens: mean |x|, max |x|, excess kurtosis
    /// (0 for a Gaussian channel), and the channels flagged as outliers by <see cref="ChannelStatistics.FlagOutliers"/>.
    /// </summary>
    public sealed record ChannelStats(long Tokens, double[] MeanAbs, double[] MaxAbs, double[] Kurtosis, int[] Outliers, double OutlierThreshold)
    {
        /// <summary>Number of input channels.</summary>
        public int Channels => MeanAbs.Length;
    }

    /// <summary>
    /// Accumulates per-channel moments of activations x [..., in] in float64 (sum |x|, max |x|, Σx, Σx², Σx³, Σx⁴),
    /// batch by batch, without keeping the activations.
    /// </summary>
    public sealed class ChannelStatistics
    {
        /// <summary>Default outlier rule factor: a channel is an outlier when its mean |x| or max |x| is at least this many times the median channel's.</summary>
        public const double DefaultOutlierThreshold = 6.0;

        readonly double[] _sumAbs, _maxAbs, _s1, _s2, _s3, _s4;
        long _tokens;

        /// <summary>Statistics over <paramref name="channels"/> input channels.</summary>
        public ChannelStatistics(long channels)
        {
            if (channels <= 0) throw new ArgumentOutOfRangeException(nameof(channels));
            int c = checked((int)channels);
            _sumAbs = new double[c]; _maxAbs = new double[c]; _s1 = new double[c]; _s2 = new double[c]; _s3 = new double[c]; _s4 = new double[c];
        }

        /// <summary>Number of input channels.</summary>
        public long Channels => _sumAbs.Length;

        /// <summary>Tokens seen so far.</summary>
        public long Tokens => _tokens;

        /// <summary>Adds activations x [..., in]; <paramref name="keep"/> (bool, x's leading elements flattened) drops rows such as padding.</summary>
        public void Add(Tensor x, Tensor? keep = null)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var rows = x.detach().reshape(-1, _sumAbs.Length).to(ScalarType.Float64);
            if (keep is not null) rows = rows.index(keep.reshape(-1).to(ScalarType.Bool).to(rows.device));
            if (rows.shape[0] == 0) return;
            var abs = rows.abs();
            Accumulate(_sumAbs, abs.sum(0, false));
            var max = abs.amax(new long[] { 0 }).cpu().data<double>().ToArray();
            for (int i = 0; i < max.Length; i++) _maxAbs[i] = Math.Max(_maxAbs[i], max[i]);
            var p2 = rows.mul(rows);
            Accumulate(_s1, rows.sum(0, false));
            Accumulate(_s2, p2.sum(0, false));
            Accumulate(_s3, p2.mul(rows).sum(0, false));
            Accumulate(_s4, p2.mul(p2).sum(0, false));
            _tokens += rows.shape[0];
        }

        static void Accumulate(double[] into, Tensor values)
        {
            var v = values.cpu().data<double>().ToArray();
            for (int i = 0; i < v.Length; i++) into[i] += v[i];
        }

        /// <summary>The statistics so far, with outliers flagged by <paramref name="threshold"/>.</summary>
        public ChannelStats Result(double threshold = DefaultOutlierThreshold)
        {
            if (_tokens == 0)
                throw new GraloraException("NoActivations", GraloraErrorKind.InvalidData,
                    "No activation reached the layer (every token was padding or no batch ran): give more data or more batches.", null);
            int c = _sumAbs.Length;
            double n = _tokens;
            var mean = new double[c];
            var kurtosis = new double[c];
            for (int i = 0; i < c; i++)
            {
                mean[i] = _sumAbs[i] / n;
                double mu = _s1[i] / n, e2 = _s2[i] / n, e3 = _s3[i] / n, e4 = _s4[i] / n;
                double m2 = e2 - mu * mu;
                double m4 = e4 - 4 * mu * e3 + 6 * mu * mu * e2 - 3 * mu * mu * mu * mu;
                kurtosis[i] = m2 > 0 ? m4 / (m2 * m2) - 3 : 0;
            }
            var max = (double[])_maxAbs.Clone();
            return new ChannelStats(_tokens, mean, max, kurtosis, FlagOutliers(mean, max, threshold), threshold);
        }

        /// <summary>
        /// The outlier rule: channel c is flagged when mean|x|_c ≥ τ · median(mean|x|) or max|x|_c ≥ τ · median(max|x|),
        /// τ = <paramref name="threshold"/> (default 6). Comparing with the median channel makes the rule independent of the
        /// layer's overall scale and robust to the outliers themselves. Returns the flagged channels, ascending.
        /// </summary>
        public static int[] FlagOutliers(IReadOnlyList<double> meanAbs, IReadOnlyList<double> maxAbs, double threshold = DefaultOutlierThreshold)
        {
            if (!(threshold > 1) || double.IsInfinity(threshold))
                throw new GraloraException("InvalidOutlierThreshold", GraloraErrorKind.InvalidArgument,
                    $"The outlier threshold must be a finite number above 1 (a multiple of the median channel's magnitude), but it is {threshold}. The default is {DefaultOutlierThreshold}.", threshold);
            double medianMean = Median(meanAbs), medianMax = Median(maxAbs);
            return Enumerable.Range(0, meanAbs.Count)
                .Where(i => meanAbs[i] >= threshold * medianMean && meanAbs[i] > 0 || maxAbs[i] >= threshold * medianMax && maxAbs[i] > 0)
                .ToArray();
        }

        /// <summary>Median of <paramref name="values"/> (mean of the middle two for an even count).</summary>
        public static double Median(IReadOnlyList<double> values)
        {
            if (values.Count == 0) return 0;
            var sorted = values.OrderBy(v => v).ToArray();
            int m = sorted.Length / 2;
            return sorted.Length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
        }
    }
}
