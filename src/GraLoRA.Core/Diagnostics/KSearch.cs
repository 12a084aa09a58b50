using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;

namespace GraLoRA.Diagnostics
{
    /// <summary>One GraLoRA shape to try: rank r of the grid part, grid k, and the hybrid (plain LoRA) rank; r + hybrid is the total rank.</summary>
    public sealed record KCandidate(int Rank, int K, int HybridRank)
    {
        /// <summary>"k 4", or "k 2 + hybrid 8".</summary>
        public override string ToString() => HybridRank > 0 ? $"k {K} + hybrid {HybridRank}" : $"k {K}";
    }

    /// <summary>The outcome of one short training run of <see cref="KSearch.Run"/>.</summary>
    public sealed record KTrial(int Rank, int K, int HybridRank, long Parameters, int Steps, double? TrainLoss, double ValidationLoss, bool Recommended)
    {
        /// <summary>r/k² of the grid part (the paper's rule of thumb aims at about 8).</summary>
        public double RankPerBlockRatio => (double)Rank / (K * K);
    }

    /// <summary>What <see cref="KSearch.Run"/> sweeps and how long each run is.</summary>
    public sealed record KSearchOptions
    {
        /// <summary>Total rank to spend (default 32); every candidate has this total, so all have the same parameter count.</summary>
        public int Rank { get; init; } = AdapterDefaults.GraloraRank;
        /// <summary>Optimizer steps for the whole sweep (default 200), shared equally by the candidates (at least 1 step each).</summary>
        public int StepBudget { get; init; } = 200;
        /// <summary>The k values to try (default: <see cref="KSearch.DefaultKs"/> of the rank).</summary>
        public IReadOnlyList<int>? Ks { get; init; }
        /// <summary>Also try hybrid splits (half the rank as plain LoRA) for k ≥ 2 (default true).</summary>
        public bool IncludeHybrid { get; init; } = true;
        /// <summary>Where the adapters go and their alpha, dropout... (Method, Rank, K and HybridRank are set per candidate). Default: all-linear.</summary>
        public AdapterConfig? Adapter { get; init; }
        /// <summary>Learning rate, schedule, seed... of each run (MaxSteps is set per candidate; OutputDirectory is ignored).</summary>
        public TrainingOptions? Training { get; init; }
    }

    /// <summary>
    /// Chooses GraLoRA's k by measurement: the paper leaves k to sweeping (its rule of thumb r/k² ≈ 8 is
    /// <see cref="AdapterConfig.AutoK"/>). Each candidate gets a fresh adapter trained for an equal share of the step
    /// budget with the same seed, and is scored by validation loss; the adapter is removed afterwards, so the model is
    /// left as it was.
    /// </summary>
    public static class KSearch
    {
        /// <summary>Powers of two k dividing r with k² ≤ r (each block keeps rank r/k ≥ k): r 16 → 1, 2, 4; r 64 → 1, 2, 4, 8.</summary>
        public static IReadOnlyList<int> DefaultKs(int rank) =>
            Enumerable.Range(0, 8).Select(i => 1 << i).Where(k => rank % k == 0 && k * k <= rank).ToList();

        /// <summary>
        /// The paper's suggestion for small ranks (r ≤ 16): Hybrid GraLoRA. Our split — the paper gives no single ratio — is
        /// half the rank as the plain-LoRA part; 0 (pure GraLoRA) above 16.
        /// </summary>
        public static int SuggestedHybridRank(int rank) => rank <= 16 && rank >= 4 ? rank / 2 : 0;

        /// <summary>The candidates for <paramref name="options"/>: each k pure, and for k ≥ 2 a hybrid split when the grid part's rank stays divisible by k.</summary>
        public static IReadOnlyList<KCandidate> Candidates(KSearchOptions options)
        {
            int r = options.Rank;
            if (r <= 0) throw new GraloraException("InvalidRank", GraloraErrorKind.InvalidArgument, $"Rank (r) must be a positive whole number, but it is {r}.", r);
            var ks = options.Ks ?? DefaultKs(r);
            var list = new List<KCandidate>();
            foreach (var k in ks.Distinct())
            {
                if (k <= 0 || r % k != 0)
                    throw new GraloraException("InvalidK", GraloraErrorKind.InvalidArgument, $"K {k} does not divide rank {r}: give k values that divide the rank (e.g. {string.Join(", ", DefaultKs(r))}).", k);
                list.Add(new KCandidate(r, k, 0));
                int h = r / 2;
                if (options.IncludeHybrid && k >= 2 && h > 0 && (r - h) % k == 0) list.Add(new KCandidate(r - h, k, h));
            }
            return list;
        }

        /// <summary>Runs the sweep; returns one trial per candidate, the lowest validation loss marked <see cref="KTrial.Recommended"/>.</summary>
        public static IReadOnlyList<KTrial> Run(BaseModel model, IBatchSource train, IBatchSource validation, KSearchOptions? options = null, IProgress<KTrial>? progress = null)
        {
            options ??= new KSearchOptions();
            var candidates = Candidates(options);
            if (options.StepBudget < candidates.Count)
                throw new GraloraException("StepBudgetTooSmall", GraloraErrorKind.InvalidArgument,
                    $"A step budget of {options.StepBudget} cannot give each of the {candidates.Count} candidates ({string.Join("; ", candidates)}) a step: raise it to at least {candidates.Count}, or try fewer k values.", options.StepBudget);
            int steps = options.StepBudget / candidates.Count;
            var template = options.Adapter ?? new AdapterConfig { TargetModules = new[] { AdapterConfig.AllLinear } };
            var training = (options.Training ?? new TrainingOptions()) with { MaxSteps = steps, OutputDirectory = null, EvalSteps = null, SaveSteps = null, EarlyStoppingPatience = null };
            var previousActive = model.Adapters.Active.ToList();
            var requiresGrad = model.Module.parameters().Select(p => (p, p.requires_grad)).ToList();
            var trials = new List<KTrial>();
            string name = "ksearch";
            while (model.Adapters.Names.Contains(name)) name += "_";
            try
            {
                foreach (var c in candidates)
                {
                    var config = template with { Method = AdapterMethod.GraLoRA, Rank = c.Rank, K = c.K, HybridRank = c.HybridRank, InitWeights = true };
                    TorchSharp.torch.manual_seed(training.Seed);   // the same adapter initialisation stream for every candidate
                    model.AddAdapter(name, config);
                    try
                    {
                        var result = new Trainer(model, name, training).Train(train);
                        double validationLoss = Trainer.Evaluate(model, validation).Loss;
                        long parameters = model.Adapters.List().First(a => a.Name == name).Parameters;
                        var trial = new KTrial(c.Rank, c.K, c.HybridRank, parameters, result.Steps, result.FinalLoss, validationLoss, false);
                        trials.Add(trial);
                        progress?.Report(trial);
                    }
                    finally
                    {
                        model.Adapters.Remove(name);
                    }
                }
            }
            finally
            {
                if (previousActive.Count > 0) model.Adapters.SetActive(previousActive);
                foreach (var (p, flag) in requiresGrad) p.requires_grad = flag;
            }
            var best = trials.Where(t => !double.IsNaN(t.ValidationLoss)).OrderBy(t => t.ValidationLoss).FirstOrDefault();
            return trials.Select(t => t == best ? t with { Recommended = true } : t).ToList();
        }
    }
}
