using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using static TorchSharp.torch;

namespace GraLoRA.Diagnostics
{
    /// <summary>
    /// A matrix's singular values (descending) with its numerical rank — σ_i above <see cref="Tolerance"/> =
    /// max(rows, cols) · ε · σ_max, ε the machine epsilon of the matrix's dtype (NumPy/PyTorch's matrix_rank default) —
    /// and its entropy-based effective rank exp(−Σ p_i ln p_i), p_i = σ_i / Σσ (Roy and Vetterli, 2007): equal to the rank
    /// when the non-zero singular values are equal, smaller when a few dominate.
    /// </summary>
    public sealed record SpectrumInfo(double[] SingularValues, long NumericalRank, double EffectiveRank, double Tolerance);

    /// <summary>ΔW's spectrum on one adapted layer, LoRA or GraLoRA (<see cref="RankAnalysis.Adapter"/>).</summary>
    public sealed record AdapterSpectrum(string Adapter, string Layer, AdapterMethod Method, int Rank, int K, int HybridRank,
        long OutFeatures, long InFeatures, long MaxRank, long NumericalRank, double EffectiveRank, double[] SingularValues)
    {
        /// <summary>Numerical rank over the structural bound (LoRA r; GraLoRA k·r + hybrid r; at most min(out, in)).</summary>
        public double RankUtilisation => MaxRank == 0 ? 0 : (double)NumericalRank / MaxRank;
    }

    /// <summary>Spectrum, numerical rank and effective rank of matrices and of adapters' ΔW.</summary>
    public static class RankAnalysis
    {
        /// <summary>
        /// Spectrum of <paramref name="matrix"/> [m, n], computed in <paramref name="computeType"/> (default float64; float32
        /// is faster for large float32 matrices and its rounding stays below the tolerance); ε is that of
        /// <paramref name="epsilonOf"/> (default: the matrix's dtype).
        /// </summary>
        public static SpectrumInfo Analyse(Tensor matrix, ScalarType? epsilonOf = null, ScalarType computeType = ScalarType.Float64)
        {
            if (matrix.dim() != 2)
                throw new GraloraException("NotAMatrix", GraloraErrorKind.InvalidArgument, $"Rank analysis needs a 2-D matrix, but the tensor has shape [{string.Join(", ", matrix.shape)}].", null);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            double eps = finfo(epsilonOf ?? matrix.dtype).eps;
            var values = linalg.svdvals(matrix.detach().to(computeType)).to(ScalarType.Float64).cpu().data<double>().ToArray();
            double tolerance = values.Length == 0 ? 0 : Math.Max(matrix.shape[0], matrix.shape[1]) * eps * values[0];
            return new SpectrumInfo(values, values.LongCount(v => v > tolerance), EffectiveRank(values), tolerance);
        }

        /// <summary>exp of the Shannon entropy of σ / Σσ; 0 for an all-zero spectrum.</summary>
        public static double EffectiveRank(IReadOnlyList<double> singularValues)
        {
            double sum = singularValues.Sum();
            if (!(sum > 0)) return 0;
            double entropy = 0;
            foreach (var s in singularValues)
            {
                double p = s / sum;
                if (p > 0) entropy -= p * Math.Log(p);
            }
            return Math.Exp(entropy);
        }

        /// <summary>ΔW (<see cref="AdapterLayerBase.GetDeltaWeight"/>) spectrum of adapter <paramref name="name"/> on every layer it adapts.</summary>
        public static IReadOnlyList<AdapterSpectrum> Adapter(AdapterHost host, string name)
        {
            host.Config(name);
            var result = new List<AdapterSpectrum>();
            foreach (var (layer, module) in host.Layers())
            {
                if (!module.AdapterNames.Contains(name)) continue;
                using var scope = NewDisposeScope();
                var options = module.GetOptions(name);
                int k = options is GraloraOptions g ? g.K : 1, hybrid = options is GraloraOptions gh ? gh.HybridRank : 0;
                long bound = module.MaxDeltaRank(name);
                SpectrumInfo spectrum;
                using (no_grad()) spectrum = Analyse(module.GetDeltaWeight(name));
                result.Add(new AdapterSpectrum(name, layer, module.Method, options.Rank, k, hybrid, module.OutFeatures, module.InFeatures,
                    bound, spectrum.NumericalRank, spectrum.EffectiveRank, spectrum.SingularValues));
            }
            return result;
        }
    }
}
