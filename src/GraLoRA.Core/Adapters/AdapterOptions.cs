using System;

namespace GraLoRA.Adapters
{
    /// <summary>Which adaptation method an adapter uses.</summary>
    public enum AdapterMethod
    {
        /// <summary>Granular low-rank adaptation (k×k grid of rank r/k blocks).</summary>
        GraLoRA,
        /// <summary>Plain low-rank adaptation, the baseline.</summary>
        LoRA,
    }

    /// <summary>Settings shared by every adapter kind.</summary>
    public interface IAdapterOptions
    {
        /// <summary>The method these settings configure.</summary>
        AdapterMethod Method { get; }
        /// <summary>Rank r.</summary>
        int Rank { get; }
        /// <summary>Scale numerator α.</summary>
        double Alpha { get; }
        /// <summary>Dropout probability on the adapter input.</summary>
        double Dropout { get; }
        /// <summary>The factor the adapter's output is multiplied by.</summary>
        double Scaling { get; }
        /// <summary>
        /// True (default): A kaiming-uniform(a=√5), B zero, so the model starts unchanged. False: B random
        /// too, for tests that need a non-zero ΔW.
        /// </summary>
        bool InitWeights { get; }
        /// <summary>Throws a <see cref="GraloraException"/> naming the value and the fix when these settings cannot adapt a layer of this shape.</summary>
        void Validate(long inFeatures, long outFeatures, string? moduleName = null);
    }

    /// <summary>GraLoRA settings, named as in PEFT's GraloraConfig (r, gralora_k, hybrid_r, alpha, gralora_dropout).</summary>
    public sealed record GraloraOptions : IAdapterOptions
    {
        /// <inheritdoc />
        public AdapterMethod Method => AdapterMethod.GraLoRA;
        /// <summary>Total GraLoRA rank r; each of the k×k blocks gets rank r/k. PEFT default 32.</summary>
        public int Rank { get; init; } = AdapterDefaults.GraloraRank;
        /// <summary>Grid size k (PEFT's gralora_k). Rule of thumb: r/k² ≈ 8. PEFT default 2.</summary>
        public int K { get; init; } = AdapterDefaults.GraloraK;
        /// <summary>Rank of the plain LoRA pair added in hybrid mode (0 = none).</summary>
        public int HybridRank { get; init; }
        /// <inheritdoc />
        public double Alpha { get; init; } = AdapterDefaults.GraloraAlpha;
        /// <inheritdoc />
        public double Dropout { get; init; }
        /// <inheritdoc />
        public bool InitWeights { get; init; } = true;
        /// <summary>alpha / (r + hybrid_r), as PEFT computes it (a hybrid rank also shrinks the GraLoRA part's scale).</summary>
        public double Scaling => Alpha / (Rank + HybridRank);

        /// <inheritdoc />
        public void Validate(long inFeatures, long outFeatures, string? moduleName = null)
        {
            AdapterValidation.CheckCommon(this, moduleName);
            string where = AdapterValidation.Where(moduleName);
            if (K <= 0)
                throw AdapterValidation.Fail("InvalidK", $"K (gralora_k) must be a positive whole number{where}, but it is {K}. Use 2 for r 16–32 or 4 for r 64–128.", K);
            if (HybridRank < 0)
                throw AdapterValidation.Fail("InvalidHybridRank", $"HybridRank (hybrid_r) must be 0 or more{where}, but it is {HybridRank}.", HybridRank);
            if (Rank % K != 0)
                throw AdapterValidation.Fail("RankNotDivisibleByK", $"Rank {Rank} must be divisible by K {K}{where} (each of the k×k blocks gets rank r/k). Choose a rank that is a multiple of {K}.", Rank);
            if (inFeatures % K != 0)
                throw AdapterValidation.Fail("InFeaturesNotDivisibleByK", $"in_features {inFeatures}{where} must be divisible by K {K}. Choose a K that divides {inFeatures}, or exclude this module.", inFeatures);
            if (outFeatures % K != 0)
                throw AdapterValidation.Fail("OutFeaturesNotDivisibleByK", $"out_features {outFeatures}{where} must be divisible by K {K}. Choose a K that divides {outFeatures}, or exclude this module.", outFeatures);
        }
    }

    /// <summary>Plain LoRA settings, named as in PEFT's LoraConfig (r, lora_alpha, lora_dropout, use_rslora).</summary>
    public sealed record LoraOptions : IAdapterOptions
    {
        /// <inheritdoc />
        public AdapterMethod Method => AdapterMethod.LoRA;
        /// <summary>Rank r. PEFT default 8.</summary>
        public int Rank { get; init; } = AdapterDefaults.LoraRank;
        /// <inheritdoc />
        public double Alpha { get; init; } = AdapterDefaults.LoraAlpha;
        /// <inheritdoc />
        public double Dropout { get; init; }
        /// <summary>rsLoRA: scale by alpha/√r instead of alpha/r.</summary>
        public bool UseRsLora { get; init; }
        /// <inheritdoc />
        public bool InitWeights { get; init; } = true;
        /// <inheritdoc />
        public double Scaling => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

        /// <inheritdoc />
        public void Validate(long inFeatures, long outFeatures, string? moduleName = null) => AdapterValidation.CheckCommon(this, moduleName);
    }

    /// <summary>The checks every adapter kind shares, in one place.</summary>
    internal static class AdapterValidation
    {
        internal static string Where(string? moduleName) => moduleName == null ? "" : $" for module '{moduleName}'";

        internal static GraloraException Fail(string id, string message, object value) =>
            new(id, GraloraErrorKind.InvalidArgument, message, value);

        internal static void CheckCommon(IAdapterOptions o, string? moduleName)
        {
            string where = Where(moduleName);
            if (o.Rank <= 0)
                throw Fail("InvalidRank", $"Rank (r) must be a positive whole number{where}, but it is {o.Rank}.", o.Rank);
            if (!(o.Dropout >= 0 && o.Dropout < 1))
                throw Fail("InvalidDropout", $"Dropout must be at least 0 and below 1{where}, but it is {o.Dropout}.", o.Dropout);
            if (!double.IsFinite(o.Alpha))
                throw Fail("InvalidAlpha", $"Alpha must be a finite number{where}, but it is {o.Alpha}.", o.Alpha);
        }
    }
}
