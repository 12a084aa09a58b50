using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using static TorchSharp.torch;

namespace GraLoRA.Diagnostics
{
    /// <summary>
    /// How far an adapter's implied one-step update U (<see cref="ImpliedUpdate"/>) departs from the full-fine-tuning
    /// gradient G of the same layer on the same data. The paper plots this and defines no number, so these are ours:
    /// <list type="bullet">
    /// <item><see cref="Deviation"/> = 1 − cos(U, G) over the whole matrix (0: same direction; 1: orthogonal).</item>
    /// <item><see cref="NormalizedError"/> = ‖c·U − G‖_F / ‖G‖_F with c = ⟨U, G⟩ / ‖U‖² the least-squares scale (the
    /// learning rate cannot make U any closer); over the whole matrix it equals √(1 − cos²) for cos ≥ 0.</item>
    /// <item><see cref="BlockDeviation"/>, <see cref="BlockError"/>: the same per block of a k×k grid [j (output block), n
    /// (input block)], the error with the layer's c, so energy U misplaces into a block where G is small shows as an
    /// error above 1.</item>
    /// <item><see cref="ChannelNorms"/>: ‖c·U[:, i]‖ per input channel i (compare the layer's G channel norms), and
    /// <see cref="OutlierShare"/>: the outlier channels' share of ‖U‖² (G's own share is on the layer result).</item>
    /// <item><see cref="ATermDeviation"/>, <see cref="BTermDeviation"/>: 1 − cos of the G·AᵀA and B·BᵀG terms alone.</item>
    /// </list>
    /// </summary>
    public sealed record UpdateDeviation(
        AdapterMethod Method, int Rank, int K, int HybridRank, bool BSubstituted,
        double Deviation, double NormalizedError, double Scale, double ATermDeviation, double BTermDeviation,
        double[,] BlockDeviation, double[,] BlockError, double[] ChannelNorms, double OutlierShare)
    {
        /// <summary>Worst block error.</summary>
        public double MaxBlockError => BlockError.Cast<double>().Max();

        /// <summary>
        /// Compares U = <paramref name="aTerm"/> + <paramref name="bTerm"/> with <paramref name="g"/> (all [out, in]) on a
        /// <paramref name="grid"/>×<paramref name="grid"/> block grid; <paramref name="outliers"/> are the input channels
        /// whose share of ‖U‖² is reported. Computed in float64.
        /// </summary>
        public static UpdateDeviation Compare(AdapterMethod method, int rank, int k, int hybridRank, bool bSubstituted,
                                              Tensor g, Tensor aTerm, Tensor bTerm, int grid, IReadOnlyCollection<int> outliers)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var g64 = g.to(ScalarType.Float64);
            var a64 = aTerm.to(ScalarType.Float64);
            var b64 = bTerm.to(ScalarType.Float64);
            var u = a64.add(b64);
            long outFeatures = g.shape[0], inFeatures = g.shape[1];
            if (grid <= 0 || outFeatures % grid != 0 || inFeatures % grid != 0)
                throw new GraloraException("InvalidBlockGrid", GraloraErrorKind.InvalidArgument,
                    $"A {grid}×{grid} block grid does not divide a {outFeatures}×{inFeatures} weight: use a k that divides both sizes.", grid);

            double uu = Dot(u, u), ug = Dot(u, g64), gg = Dot(g64, g64);
            double scale = uu > 0 ? ug / uu : 0;
            var fitted = u.mul(scale);
            var residual = fitted.sub(g64);
            double error = gg > 0 ? Math.Sqrt(Dot(residual, residual) / gg) : double.NaN;

            long ob = outFeatures / grid, ib = inFeatures / grid;
            Tensor Blocks(Tensor t) => t.view(grid, ob, grid, ib).permute(0, 2, 1, 3);          // [k(j), k(n), out/k, in/k]
            var ub = Blocks(u); var gb = Blocks(g64); var rb = Blocks(residual);
            var dims = new long[] { 2, 3 };
            var blockUg = Grid(ub.mul(gb).sum(dims), grid);
            var blockUu = Grid(ub.mul(ub).sum(dims), grid);
            var blockGg = Grid(gb.mul(gb).sum(dims), grid);
            var blockRr = Grid(rb.mul(rb).sum(dims), grid);
            var blockDeviation = new double[grid, grid];
            var blockError = new double[grid, grid];
            for (int j = 0; j < grid; j++)
                for (int n = 0; n < grid; n++)
                {
                    blockDeviation[j, n] = 1 - Cosine(blockUg[j, n], blockUu[j, n], blockGg[j, n]);
                    blockError[j, n] = blockGg[j, n] > 0 ? Math.Sqrt(blockRr[j, n] / blockGg[j, n]) : double.NaN;
                }

            var columns = fitted.mul(fitted).sum(0, false);
            var channelNorms = columns.sqrt().cpu().data<double>().ToArray();
            double share = uu > 0 ? outliers.Sum(i => columns[i].item<double>()) / Math.Max(double.Epsilon, columns.sum().item<double>()) : 0;

            return new UpdateDeviation(method, rank, k, hybridRank, bSubstituted,
                1 - Cosine(ug, uu, gg), error, scale,
                1 - Cosine(Dot(a64, g64), Dot(a64, a64), gg), 1 - Cosine(Dot(b64, g64), Dot(b64, b64), gg),
                blockDeviation, blockError, channelNorms, share);
        }

        static double Dot(Tensor x, Tensor y) => x.mul(y).sum().item<double>();

        // cos from ⟨u,g⟩, ‖u‖², ‖g‖²; an all-zero side counts as orthogonal (cos 0).
        static double Cosine(double ug, double uu, double gg) => uu > 0 && gg > 0 ? ug / Math.Sqrt(uu * gg) : 0;

        static double[,] Grid(Tensor t, int grid)
        {
            var v = t.cpu().data<double>().ToArray();
            var result = new double[grid, grid];
            for (int j = 0; j < grid; j++)
                for (int n = 0; n < grid; n++) result[j, n] = v[j * grid + n];
            return result;
        }
    }
}
