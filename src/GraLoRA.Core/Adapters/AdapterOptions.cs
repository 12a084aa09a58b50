using System;
using System.Collections.Generic;
using System.Linq;

namespace GraLoRA.Adapters
{
    /// <summary>Which adaptation method an adapter uses.</summary>
    public enum AdapterMethod
    {
        /// <summary>Granular low-rank adaptation (k×k grid of rank r/k blocks).</summary>
        GraLoRA,
        /// <summary>Plain low-rank adaptation, the baseline.</summary>
        LoRA,
        /// <summary>Weight-decomposed LoRA (PEFT's use_dora): a LoRA direction update renormalised per output row, times a trained magnitude.</summary>
        DoRA,
        /// <summary>High-rank updating with one square matrix and fixed compression/decompression (the MoRA authors' PEFT fork).</summary>
        MoRA,
        /// <summary>Rank-sharing LoRA: private ranks per layer plus a pool shared by every layer of a module type (the RaSA authors' PEFT fork).</summary>
        RaSA,
        /// <summary>Full fine-tuning of the selected linear layers (the upper reference).</summary>
        Full,
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

    /// <summary>Plain LoRA settings, named as in PEFT's LoraConfig (r, lora_alpha, lora_dropout, use_rslora, use_dora).</summary>
    public sealed record LoraOptions : IAdapterOptions
    {
        /// <summary>LoRA, or DoRA with <see cref="UseDora"/> (a LoRA variant in PEFT too).</summary>
        public AdapterMethod Method => UseDora ? AdapterMethod.DoRA : AdapterMethod.LoRA;
        /// <summary>DoRA (PEFT's use_dora): adds a trained magnitude per output row; see <see cref="DoraLinear"/>.</summary>
        public bool UseDora { get; init; }
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

    /// <summary>
    /// MoRA settings as the MoRA authors' PEFT fork reads them from LoraConfig (r, use_mora, mora_type, lora_dropout):
    /// one square matrix of size r̂ = ⌊√((in + out)·r) + ½⌋ (type 6: rounded down to even), so it has about as many
    /// parameters as LoRA at rank r. No alpha: the fork scales by 1.
    /// </summary>
    public sealed record MoraOptions : IAdapterOptions
    {
        /// <summary>The compression types implemented (the fork's 2, 3 and 4 are not).</summary>
        public static readonly IReadOnlyList<int> SupportedTypes = new[] { 1, 6 };

        /// <inheritdoc />
        public AdapterMethod Method => AdapterMethod.MoRA;
        /// <summary>The LoRA rank whose parameter budget r̂ matches. The fork's default 8.</summary>
        public int Rank { get; init; } = AdapterDefaults.LoraRank;
        /// <summary>1: sum the input blocks, repeat the output (the fork's default); 6: rotate each block by its position as RoPE does, concatenate the outputs.</summary>
        public int MoraType { get; init; } = AdapterDefaults.MoraType;
        /// <summary>MoRA has no alpha; 1, so the scale is 1.</summary>
        public double Alpha => 1;
        /// <inheritdoc />
        public double Dropout { get; init; }
        /// <summary>True (default): the square matrix starts at zero, as the fork always does. False: random (tests).</summary>
        public bool InitWeights { get; init; } = true;
        /// <summary>1, as in the fork.</summary>
        public double Scaling => 1;

        /// <summary>r̂ for a layer of this shape: ⌊√((in + out)·r) + ½⌋, for type 6 rounded down to even (RoPE pairs).</summary>
        public long SquareSize(long inFeatures, long outFeatures)
        {
            long size = (long)(Math.Sqrt((double)(inFeatures + outFeatures) * Rank) + 0.5);
            return MoraType == 6 ? size / 2 * 2 : size;
        }

        /// <inheritdoc />
        public void Validate(long inFeatures, long outFeatures, string? moduleName = null)
        {
            AdapterValidation.CheckCommon(this, moduleName);
            string where = AdapterValidation.Where(moduleName);
            if (!SupportedTypes.Contains(MoraType))
                throw AdapterValidation.Fail("InvalidMoraType", $"MoraType (mora_type) {MoraType}{where} is not supported: use 1 (sum and repeat) or 6 (RoPE-rotated blocks), the types the MoRA paper recommends.", MoraType);
            long size = SquareSize(inFeatures, outFeatures);
            if (size < 2)
                throw AdapterValidation.Fail("MoraRankTooSmall", $"Rank {Rank}{where} gives MoRA a square matrix of size {size}: raise the rank.", Rank);
            // The fork extends the input by repeating its first (nb·r̂ − in) features once; beyond 2·in it fails.
            if (size > 2 * inFeatures)
                throw AdapterValidation.Fail("MoraRankTooLarge", $"Rank {Rank}{where} gives MoRA a square matrix of size {size}, more than twice in_features {inFeatures}, which the MoRA authors' code cannot extend its input to. Lower the rank to at most {MaxRank(inFeatures, outFeatures)} or exclude this module.", Rank);
        }

        // The largest r whose r̂ stays within 2·in.
        long MaxRank(long inFeatures, long outFeatures)
        {
            long r = Rank;
            while (r > 1 && (this with { Rank = (int)r }).SquareSize(inFeatures, outFeatures) > 2 * inFeatures) r--;
            return r;
        }
    }

    /// <summary>
    /// RaSA settings as the RaSA authors' RasaConfig names them (r, rasa_k, rasa_alpha, rasa_dropout; their defaults 256,
    /// 1, 8, 0). Each layer keeps r − k private ranks and shares a pool of k·L ranks with the other L − 1 layers of its
    /// module type; <see cref="SharedLayers"/> (L) is set by the model, which owns the pool.
    /// </summary>
    public sealed record RasaOptions : IAdapterOptions
    {
        /// <inheritdoc />
        public AdapterMethod Method => AdapterMethod.RaSA;
        /// <summary>Rank r (private r − k plus k given to the pool). The authors' default 256.</summary>
        public int Rank { get; init; } = AdapterDefaults.RasaRank;
        /// <summary>Ranks each layer gives to the shared pool (rasa_k). The authors' default 1; their scripts use r/8.</summary>
        public int K { get; init; } = AdapterDefaults.RasaK;
        /// <summary>rasa_alpha: sets only the initial mixing weights, (α/2)/(r − k) private and (α/2)/(k·L) shared. Default 8.</summary>
        public double Alpha { get; init; } = AdapterDefaults.RasaAlpha;
        /// <inheritdoc />
        public double Dropout { get; init; }
        /// <summary>True (default): B and shared B start at zero. False: random too (tests).</summary>
        public bool InitWeights { get; init; } = true;
        /// <summary>L: how many layers share the pool of this module type (set by the model).</summary>
        public int SharedLayers { get; init; } = 1;
        /// <summary>1: RaSA's mixing weights carry the scale.</summary>
        public double Scaling => 1;
        /// <summary>r − k.</summary>
        public int PrivateRank => Rank - K;
        /// <summary>k·L, the pool's size.</summary>
        public int SharedRank => K * SharedLayers;

        /// <inheritdoc />
        public void Validate(long inFeatures, long outFeatures, string? moduleName = null)
        {
            AdapterValidation.CheckCommon(this, moduleName);
            string where = AdapterValidation.Where(moduleName);
            if (K < 1 || K > Rank)
                throw AdapterValidation.Fail("InvalidRasaK", $"RasaK (rasa_k) must be between 1 and the rank {Rank}{where}, but it is {K}. The RaSA authors use r/8.", K);
            if (SharedLayers < 1)
                throw AdapterValidation.Fail("InvalidRasaLayers", $"RaSA needs at least one layer per module type{where}, but SharedLayers is {SharedLayers}.", SharedLayers);
        }
    }

    /// <summary>Full fine-tuning of a linear layer: its weight is trained as a copy (no rank, no dropout, no alpha).</summary>
    public sealed record FullOptions : IAdapterOptions
    {
        /// <inheritdoc />
        public AdapterMethod Method => AdapterMethod.Full;
        /// <summary>Not low rank: 0.</summary>
        public int Rank => 0;
        /// <summary>1.</summary>
        public double Alpha => 1;
        /// <summary>0: full fine-tuning has no adapter dropout.</summary>
        public double Dropout => 0;
        /// <summary>True (default): the copy starts equal to the base weight. False: perturbed (tests).</summary>
        public bool InitWeights { get; init; } = true;
        /// <summary>1.</summary>
        public double Scaling => 1;

        /// <inheritdoc />
        public void Validate(long inFeatures, long outFeatures, string? moduleName = null) { }
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
