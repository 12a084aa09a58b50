using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Diagnostics;
using GraLoRA.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>Gradient-entanglement diagnostics and rank analysis on constructed cases with known answers.</summary>
    public sealed class DiagnosticsTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        // ---------- activation statistics ----------

        [Fact]
        public void OneInjectedOutlierChannelIsExactlyTheOneFlagged()
        {
            using var scope = NewDisposeScope();
            var generator = new Generator(7);
            var stats = new ChannelStatistics(32);
            for (int batch = 0; batch < 3; batch++)
            {
                var x = randn(new long[] { 4, 50, 32 }, generator: generator);
                x[TensorIndex.Ellipsis, 11] *= 20;
                stats.Add(x);
            }
            var result = stats.Result();
            Assert.Equal(new[] { 11 }, result.Outliers);
            Assert.Equal(600, result.Tokens);
            Assert.InRange(result.MeanAbs[11] / result.MeanAbs[0], 10, 40);
        }

        [Fact]
        public void PaddingRowsAreLeftOutAndKurtosisMatchesItsDefinition()
        {
            using var scope = NewDisposeScope();
            // Channel 0: +1, −1, +1, −1 → mean 0, m2 1, m4 1 → excess kurtosis −2. Channel 1: 0, 0, 0, 4 → μ 1, m2 3, m4 (81+3)/4 = 21 → 21/9 − 3.
            // Row 4 is padding with a huge value that must not count.
            var x = tensor(new float[] { 1, 0, -1, 0, 1, 0, -1, 4, 1000, 1000 }, new long[] { 5, 2 });
            var keep = tensor(new[] { true, true, true, true, false });
            var stats = new ChannelStatistics(2);
            stats.Add(x, keep);
            var r = stats.Result();
            Assert.Equal(4, r.Tokens);
            Assert.Equal(-2, r.Kurtosis[0], 9);
            Assert.Equal(21.0 / 9 - 3, r.Kurtosis[1], 9);
            Assert.Equal(new[] { 1.0, 1.0 }, r.MeanAbs);
            Assert.Equal(new[] { 1.0, 4.0 }, r.MaxAbs);
        }

        [Fact]
        public void TheOutlierRuleComparesWithTheMedianChannel()
        {
            double[] mean = { 1, 1.2, 0.9, 6.1, 1, 5.9 };
            double[] max = { 3, 3, 3, 3, 3, 30 };
            // median mean = 1.1 → 6.6 needed; channel 5's max 30 ≥ 6·3.
            Assert.Equal(new[] { 5 }, ChannelStatistics.FlagOutliers(mean, max));
            Assert.Equal(new[] { 3, 5 }, ChannelStatistics.FlagOutliers(mean, max, 5));
            Assert.Equal("InvalidOutlierThreshold", Assert.Throws<GraloraException>(() => ChannelStatistics.FlagOutliers(mean, max, 1)).ErrorId);
            Assert.Equal("NoActivations", Assert.Throws<GraloraException>(() => new ChannelStatistics(3).Result()).ErrorId);
        }

        // ---------- implied updates: hand calculations ----------

        static double[,] Mat(Tensor t)
        {
            var v = t.to(ScalarType.Float64).data<double>().ToArray();
            int rows = (int)t.shape[0], cols = (int)t.shape[1];
            var m = new double[rows, cols];
            for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) m[i, j] = v[i * cols + j];
            return m;
        }

        [Fact]
        public void TwoBlockGraloraUpdateMatchesAHandCalculation()
        {
            using var scope = NewDisposeScope();
            // W 4×4, k = 2, r = 2 → s = 1: each block (j, n) has a row a_jn (length in/k = 2) and a column b_jn (out/k = 2).
            var gen = new Generator(3);
            var g = randn(new long[] { 4, 4 }, ScalarType.Float64, generator: gen);
            var a = randn(new long[] { 2, 2, 2 }, ScalarType.Float64, generator: gen);   // gralora_A [k(n), in/k, r]
            var b = randn(new long[] { 2, 2, 2 }, ScalarType.Float64, generator: gen);   // gralora_B [k(j), r, out/k]
            var G = Mat(g);
            var A = a.data<double>().ToArray();
            var B = b.data<double>().ToArray();
            // By the layer's definition: block (j, n) reads input block n through A[n][:, j] and writes output block j through B[j][n, :].
            double Arow(int j, int n, int c) => A[n * 4 + c * 2 + j];            // A[n][c, j]
            double Bcol(int j, int n, int o) => B[j * 4 + n * 2 + o];            // B[j][n, o]
            var expectedA = new double[4, 4];
            var expectedB = new double[4, 4];
            for (int j = 0; j < 2; j++)
                for (int n = 0; n < 2; n++)
                    for (int o = 0; o < 2; o++)
                        for (int c = 0; c < 2; c++)
                        {
                            // (G_jn · aᵀa)[o, c] = Σ_c' G_jn[o, c'] a[c'] a[c];   (b bᵀ · G_jn)[o, c] = Σ_o' b[o] b[o'] G_jn[o', c]
                            double sa = 0, sb = 0;
                            for (int t = 0; t < 2; t++)
                            {
                                sa += G[2 * j + o, 2 * n + t] * Arow(j, n, t) * Arow(j, n, c);
                                sb += Bcol(j, n, o) * Bcol(j, n, t) * G[2 * j + t, 2 * n + c];
                            }
                            expectedA[2 * j + o, 2 * n + c] = sa;
                            expectedB[2 * j + o, 2 * n + c] = sb;
                        }
            var (aBlocks, bBlocks) = GraloraLinear.BlockFactors(a, b, 2);
            var (aTerm, bTerm) = ImpliedUpdate.Gralora(g, aBlocks, bBlocks);
            var actualA = Mat(aTerm);
            var actualB = Mat(bTerm);
            for (int i = 0; i < 4; i++)
                for (int c = 0; c < 4; c++)
                {
                    Assert.Equal(expectedA[i, c], actualA[i, c], 10);
                    Assert.Equal(expectedB[i, c], actualB[i, c], 10);
                }

            // The reported numbers, recomputed from the hand-made U.
            double ug = 0, uu = 0, gg = 0;
            for (int i = 0; i < 4; i++)
                for (int c = 0; c < 4; c++)
                {
                    double u = expectedA[i, c] + expectedB[i, c];
                    ug += u * G[i, c]; uu += u * u; gg += G[i, c] * G[i, c];
                }
            double scale = ug / uu;
            var report = UpdateDeviation.Compare(AdapterMethod.GraLoRA, 2, 2, 0, false, g, aTerm, bTerm, 2, new[] { 1 });
            Assert.Equal(1 - ug / Math.Sqrt(uu * gg), report.Deviation, 10);
            Assert.Equal(scale, report.Scale, 10);
            double rr = 0;
            for (int i = 0; i < 4; i++) for (int c = 0; c < 4; c++) rr += Math.Pow(scale * (expectedA[i, c] + expectedB[i, c]) - G[i, c], 2);
            Assert.Equal(Math.Sqrt(rr / gg), report.NormalizedError, 10);
            for (int j = 0; j < 2; j++)
                for (int n = 0; n < 2; n++)
                {
                    double bug = 0, buu = 0, bgg = 0, brr = 0;
                    for (int o = 0; o < 2; o++)
                        for (int c = 0; c < 2; c++)
                        {
                            double u = expectedA[2 * j + o, 2 * n + c] + expectedB[2 * j + o, 2 * n + c], gv = G[2 * j + o, 2 * n + c];
                            bug += u * gv; buu += u * u; bgg += gv * gv; brr += Math.Pow(scale * u - gv, 2);
                        }
                    Assert.Equal(1 - bug / Math.Sqrt(buu * bgg), report.BlockDeviation[j, n], 10);
                    Assert.Equal(Math.Sqrt(brr / bgg), report.BlockError[j, n], 10);
                }
            double col1 = 0, all = 0;
            for (int c = 0; c < 4; c++)
                for (int i = 0; i < 4; i++)
                {
                    double u2 = Math.Pow(expectedA[i, c] + expectedB[i, c], 2);
                    all += u2;
                    if (c == 1) col1 += u2;
                }
            Assert.Equal(col1 / all, report.OutlierShare, 10);
            Assert.Equal(Math.Abs(scale) * Math.Sqrt(col1), report.ChannelNorms[1], 10);
        }

        [Fact]
        public void LoraUpdateMatchesAHandCalculation()
        {
            using var scope = NewDisposeScope();
            var gen = new Generator(4);
            var g = randn(new long[] { 3, 5 }, ScalarType.Float64, generator: gen);
            var a = randn(new long[] { 2, 5 }, ScalarType.Float64, generator: gen);   // [r, in]
            var b = randn(new long[] { 3, 2 }, ScalarType.Float64, generator: gen);   // [out, r]
            double[,] G = Mat(g), A = Mat(a), B = Mat(b);
            var (aTerm, bTerm) = ImpliedUpdate.Lora(g, a, b);
            double[,] ua = Mat(aTerm), ub = Mat(bTerm);
            for (int o = 0; o < 3; o++)
                for (int c = 0; c < 5; c++)
                {
                    double sa = 0, sb = 0;
                    for (int t = 0; t < 5; t++) for (int q = 0; q < 2; q++) sa += G[o, t] * A[q, t] * A[q, c];   // G·Aᵀ·A
                    for (int t = 0; t < 3; t++) for (int q = 0; q < 2; q++) sb += B[o, q] * B[t, q] * G[t, c];   // B·Bᵀ·G
                    Assert.Equal(sa, ua[o, c], 10);
                    Assert.Equal(sb, ub[o, c], 10);
                }
        }

        [Fact]
        public void BlockFactorsRebuildTheLayersDeltaWeight()
        {
            using var scope = NewDisposeScope();
            manual_seed(11);
            var layer = new GraloraLinear(nn.Linear(24, 16), "default", new GraloraOptions { Rank = 8, K = 4, Alpha = 8, InitWeights = false });
            var (a, b) = GraloraLinear.BlockFactors(layer.A("default"), layer.B("default"), 4);
            var rebuilt = b.matmul(a).permute(0, 2, 1, 3).reshape(16, 24);        // block (j, n) at rows j, columns n
            using var _ = no_grad();
            TensorAssert.Close(rebuilt.mul(layer.Options("default").Scaling), layer.GetDeltaWeight("default"), 1e-6);
        }

        public static TheoryData<string> Methods() => new() { "lora", "gralora", "gralora-hybrid" };

        /// <summary>The formula is the first-order change one SGD step on the layer's own factors makes to its ΔW.</summary>
        [Theory]
        [MemberData(nameof(Methods))]
        public void ImpliedUpdateIsWhatOneSgdStepDoesToDeltaW(string method)
        {
            using var scope = NewDisposeScope();
            manual_seed(21);
            var linear = nn.Linear(16, 8, hasBias: false, dtype: ScalarType.Float64);
            AdapterLayerBase layer = method == "lora"
                ? new LoraLinear(linear, "d", new LoraOptions { Rank = 4, Alpha = 8, InitWeights = false }, ScalarType.Float64)
                : new GraloraLinear(linear, "d", new GraloraOptions { Rank = 4, K = 2, Alpha = 8, HybridRank = method == "gralora-hybrid" ? 2 : 0, InitWeights = false }, ScalarType.Float64);
            var x = randn(new long[] { 10, 16 }, ScalarType.Float64);
            var target = randn(new long[] { 10, 8 }, ScalarType.Float64);
            // G: gradient of the loss with respect to the effective weight W0 + ΔW.
            Tensor g;
            using (no_grad()) g = linear.weight!.add(layer.GetDeltaWeight("d")).detach().requires_grad_(true);
            nn.functional.mse_loss(x.mm(g.t()), target, nn.Reduction.Sum).backward();
            var gradient = g.grad!.detach().clone();
            // One SGD step on the adapter's parameters through the layer's own forward.
            linear.weight!.requires_grad = false;
            nn.functional.mse_loss(layer.call(x), target, nn.Reduction.Sum).backward();
            double eta = 1e-8, s = layer.GetOptions("d").Scaling;
            Tensor before, after;
            using (no_grad())
            {
                before = layer.GetDeltaWeight("d");
                foreach (var p in layer.AdapterParameters("d")) p.sub_(p.grad!.mul(eta));
                after = layer.GetDeltaWeight("d");
            }
            Tensor aTerm, bTerm;
            if (layer is LoraLinear l) (aTerm, bTerm) = ImpliedUpdate.Lora(gradient, l.A("d").detach(), l.B("d").detach());
            else
            {
                var gl = (GraloraLinear)layer;
                var (ab, bb) = GraloraLinear.BlockFactors(gl.A("d").detach(), gl.B("d").detach(), 2);
                (aTerm, bTerm) = ImpliedUpdate.Gralora(gradient, ab, bb, gl.AGeneral("d")?.detach(), gl.BGeneral("d")?.detach());
            }
            // The parameters moved by η, so the factors above are the stepped ones; the difference is O(η²).
            var predicted = aTerm.add(bTerm).mul(-eta * s * s);
            TensorAssert.Close(after.sub(before), predicted, 1e-4, method);
        }

        // ---------- the model-level measurement ----------

        BaseModel Tiny() => BaseModel.Load(_folder ??= TinyModelFactory.Save(tmp.File("tiny"), new TinyModelOptions { Seed = 5, HiddenSize = 32, IntermediateSize = 64 }));
        string? _folder;

        static IBatchSource Batches(int count)
        {
            var list = new List<DataBatch>();
            for (int i = 0; i < count; i++)
            {
                int rows = 2, columns = 10;
                var ids = Enumerable.Range(0, rows * columns).Select(t => (long)(30 + (t * 7 + i * 3) % 90)).ToArray();
                var labels = ids.ToArray();
                var mask = Enumerable.Repeat(1L, rows * columns).ToArray();
                mask[^1] = mask[^2] = 0;                    // two padding positions
                labels[^1] = labels[^2] = TrainingExample.IgnoreIndex;
                var positions = Enumerable.Range(0, rows).SelectMany(_ => Enumerable.Range(0, columns).Select(c => (long)c)).ToArray();
                list.Add(new DataBatch(rows, columns, ids, labels, mask, positions, null, null, Enumerable.Range(0, rows).ToArray()));
            }
            return new FixedBatches(list);
        }

        [Fact]
        public void MeasureFlagsAnInjectedOutlierAndLeavesTheModelAsItWas()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var ids = new[] { new[] { 40, 41, 42, 43 } };
            var before = model.Forward(ids).Logits.SelectMany(r => r.SelectMany(v => v)).ToArray();
            var requiresGrad = model.Module.parameters().Select(p => p.requires_grad).ToArray();
            var results = GradientEntanglement.Measure(model, Batches(2), new EntanglementOptions
            {
                Layers = new[] { "layers.0.mlp.down_proj" }, Rank = 8, K = 2, Batches = 2, Seed = 1,
                InjectOutliers = new Dictionary<int, double> { [13] = 80 },
            });
            var layer = Assert.Single(results);
            Assert.Equal("model.layers.0.mlp.down_proj", layer.Layer);
            Assert.Equal(64, layer.InFeatures);
            Assert.Equal(32, layer.OutFeatures);
            Assert.Equal(2 * (2 * 10 - 2), layer.Activations.Tokens);    // padding left out
            Assert.Contains(13, layer.OutlierChannels);
            Assert.True(layer.GradientOutlierShare > 0.5, $"G's share in the outlier channel: {layer.GradientOutlierShare}");
            Assert.NotNull(layer.Lora);
            Assert.NotNull(layer.Gralora);
            Assert.Equal(8, layer.Lora!.Rank);
            Assert.Equal(2, layer.Gralora!.K);
            Assert.Equal(2, layer.Gralora.BlockError.GetLength(0));
            Assert.InRange(layer.Lora.Deviation, 0, 2);
            Assert.InRange(layer.Gralora.Deviation, 0, 2);
            // Slots, flags and outputs are restored; no gradient is left on any weight.
            Assert.IsType<TorchSharp.Modules.Linear>(model.Module.model.layers[0].mlp.GetSlot("down_proj"));
            Assert.Equal(requiresGrad, model.Module.parameters().Select(p => p.requires_grad).ToArray());
            Assert.All(model.Module.parameters(), p => Assert.Null(p.grad));
            Assert.Equal(before, model.Forward(ids).Logits.SelectMany(r => r.SelectMany(v => v)).ToArray());

            var charted = DiagnosticCharts.SaveEntanglement(layer, tmp.File("charts"));
            Assert.Equal(3, charted.Charts.Count);
            Assert.All(charted.Charts, p => Assert.True(new FileInfo(p).Length > 1000, p));
        }

        [Fact]
        public void MeasureUsesAnAdaptersOwnFactorsAndSaysWhenBWasSubstituted()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            manual_seed(2);
            model.AddAdapter("g", new AdapterConfig { Rank = 8, K = 2, TargetModules = new[] { "down_proj" } });
            var result = GradientEntanglement.Measure(model, Batches(1), new EntanglementOptions { Adapter = "g", Batches = 1, Layers = new[] { "layers.1.mlp.down_proj" } });
            var layer = Assert.Single(result);
            Assert.Null(layer.Lora);
            Assert.True(layer.Gralora!.BSubstituted);          // a fresh adapter's B is zero
            Assert.IsType<GraloraLinear>(model.Module.model.layers[1].mlp.GetSlot("down_proj"));
            // B = 0 kept: U is the A term alone, so the B term (all zero) counts as orthogonal.
            var zero = GradientEntanglement.Measure(model, Batches(1), new EntanglementOptions { Adapter = "g", Batches = 1, Layers = new[] { "layers.1.mlp.down_proj" }, ZeroB = true }).Single().Gralora!;
            Assert.False(zero.BSubstituted);
            Assert.Equal(1, zero.BTermDeviation);
            Assert.Equal(zero.ATermDeviation, zero.Deviation, 12);
            Assert.Equal("AdapterNotOnLayer", Assert.Throws<GraloraException>(() =>
                GradientEntanglement.Measure(model, Batches(1), new EntanglementOptions { Adapter = "g", Layers = new[] { "q_proj" } })).ErrorId);
            Assert.Equal("NoMatchingLayer", Assert.Throws<GraloraException>(() =>
                GradientEntanglement.Measure(model, Batches(1), new EntanglementOptions { Layers = new[] { "nothing_proj" } })).ErrorId);
            Assert.Equal("AdapterNotFound", Assert.Throws<GraloraException>(() =>
                GradientEntanglement.Measure(model, Batches(1), new EntanglementOptions { Adapter = "missing" })).ErrorId);
        }

        // ---------- rank analysis ----------

        [Fact]
        public void RankAnalysisFindsKnownRanks()
        {
            using var scope = NewDisposeScope();
            var gen = new Generator(9);
            var lowRank = randn(new long[] { 40, 3 }, generator: gen).mm(randn(new long[] { 3, 30 }, generator: gen));
            var spectrum = RankAnalysis.Analyse(lowRank);
            Assert.Equal(3, spectrum.NumericalRank);
            Assert.Equal(30, spectrum.SingularValues.Length);
            // Equal singular values: effective rank = rank; one dominant value: close to 1.
            Assert.Equal(5, RankAnalysis.Analyse(eye(5, dtype: ScalarType.Float64)).EffectiveRank, 9);
            Assert.Equal(5, RankAnalysis.Analyse(eye(5, dtype: ScalarType.Float64)).NumericalRank);
            Assert.Equal(1, RankAnalysis.EffectiveRank(new double[] { 7, 0, 0 }), 12);
            // p = (1/2, 1/4, 1/4): exp(−Σ p ln p) = exp(1.5 ln 2) = 2^1.5.
            Assert.Equal(Math.Pow(2, 1.5), RankAnalysis.EffectiveRank(new double[] { 2, 1, 1 }), 12);
            Assert.Equal(0, RankAnalysis.Analyse(zeros(4, 4)).NumericalRank);
        }

        [Fact]
        public void AdapterSpectraShowLoraRankRAndGraloraRankKR()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            manual_seed(3);
            model.AddAdapter("lora", new AdapterConfig { Method = AdapterMethod.LoRA, Rank = 4, TargetModules = new[] { "down_proj" }, InitWeights = false });
            model.AddAdapter("gra", new AdapterConfig { Rank = 4, K = 2, TargetModules = new[] { "up_proj" }, InitWeights = false });
            var lora = RankAnalysis.Adapter(model.Adapters, "lora");
            var gra = RankAnalysis.Adapter(model.Adapters, "gra");
            Assert.Equal(2, lora.Count);
            Assert.All(lora, s => Assert.Equal(4, s.NumericalRank));
            Assert.All(gra, s => Assert.Equal(8, s.NumericalRank));
            Assert.All(gra, s => Assert.Equal(8, s.MaxRank));
            Assert.All(gra, s => Assert.InRange(s.EffectiveRank, 1, 8));
            var layer = model.Adapters.Layers().First(l => l.Layer.AdapterNames.Contains("gra")).Layer;
            Assert.Equal(8, layer.DeltaWeightRank("gra"));
            string png = DiagnosticCharts.SaveSpectra(lora.Concat(gra).ToList(), tmp.File("spectra.png"));
            Assert.True(new FileInfo(png).Length > 1000);
        }
            // ---------- k selection ----------

        [Theory]
        // r, AutoK, r/k², suggested hybrid rank, default sweep
        [InlineData(4, 1, 4.0, 2, "1,2")]
        [InlineData(8, 1, 8.0, 4, "1,2")]
        [InlineData(16, 2, 4.0, 8, "1,2,4")]
        [InlineData(32, 2, 8.0, 0, "1,2,4")]
        [InlineData(64, 4, 4.0, 0, "1,2,4,8")]
        [InlineData(128, 4, 8.0, 0, "1,2,4,8")]
        [InlineData(256, 8, 4.0, 0, "1,2,4,8,16")]      // r/k² 16 and 4 are equally far from 8 on a log scale: ties go to the larger k
        public void KSelectionTable(int rank, int autoK, double ratio, int hybrid, string sweep)
        {
            Assert.Equal(autoK, AdapterConfig.AutoK(rank));
            Assert.Equal(ratio, (double)rank / (autoK * autoK));
            Assert.Equal(hybrid, KSearch.SuggestedHybridRank(rank));
            Assert.Equal(sweep, string.Join(",", KSearch.DefaultKs(rank)));
        }

        [Fact]
        public void CandidatesKeepTheTotalRankAndRejectBadK()
        {
            var c = KSearch.Candidates(new KSearchOptions { Rank = 16 });
            Assert.Equal(new[] { "k 1", "k 2", "k 2 + hybrid 8", "k 4", "k 4 + hybrid 8" }, c.Select(x => x.ToString()));
            Assert.All(c, x => Assert.Equal(16, x.Rank + x.HybridRank));
            Assert.Equal("InvalidK", Assert.Throws<GraloraException>(() => KSearch.Candidates(new KSearchOptions { Rank = 16, Ks = new[] { 3 } })).ErrorId);
        }

        [Fact]
        public void FindKRunsEveryCandidateWithinTheBudgetAndRecommendsTheLowestValidationLoss()
        {
            using var scope = NewDisposeScope();
            using var model = Tiny();
            var flags = model.Module.parameters().Select(p => p.requires_grad).ToArray();
            var seen = new List<KTrial>();
            var trials = KSearch.Run(model, Batches(2), Batches(1), new KSearchOptions
            {
                Rank = 8, StepBudget = 9, Ks = new[] { 1, 2 },
                Adapter = new AdapterConfig { TargetModules = new[] { "q_proj", "down_proj" } },
                Training = new Training.TrainingOptions { LearningRate = 1e-2 },
            }, new Progress(seen.Add));
            Assert.Equal(3, trials.Count);                                   // k 1, k 2, k 2 + hybrid 4
            Assert.Equal(3, seen.Count);
            Assert.All(trials, t => Assert.Equal(3, t.Steps));                // 9 steps shared by 3
            Assert.Single(trials, t => t.Recommended);
            Assert.Equal(trials.Min(t => t.ValidationLoss), trials.Single(t => t.Recommended).ValidationLoss);
            Assert.Single(trials.Select(t => t.Parameters).Distinct());      // same parameter count for all
            Assert.Empty(model.Adapters.Names);
            Assert.Equal(flags, model.Module.parameters().Select(p => p.requires_grad).ToArray());
            Assert.Equal("StepBudgetTooSmall", Assert.Throws<GraloraException>(() => KSearch.Run(model, Batches(1), Batches(1), new KSearchOptions { Rank = 8, StepBudget = 2 })).ErrorId);
        }

        sealed class Progress : IProgress<KTrial>
        {
            readonly Action<KTrial> _report;
            public Progress(Action<KTrial> report) => _report = report;
            public void Report(KTrial value) => _report(value);
        }
    }
}
