using System;
using System.Linq;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>
    /// Rotary position embedding as transformers computes it (modeling_rope_utils): inverse frequencies for the rope
    /// type, cos/sin multiplied by the type's attention factor, and the dynamic (NTK) and longrope updates that depend
    /// on the current sequence length.
    /// </summary>
    public sealed class RotaryEmbedding
    {
        readonly DecoderConfig _config;
        readonly double _theta;
        readonly RopeScaling? _scaling;
        readonly Device? _device;
        readonly Tensor _original;
        Tensor? _long;
        long _maxSeqLenCached;

        /// <summary>Inverse frequencies [rotary_dim / 2] (float32) in use now.</summary>
        public Tensor InvFreq { get; private set; }
        /// <summary>The factor cos and sin are multiplied by (yarn, longrope; 1 otherwise).</summary>
        public double AttentionScaling { get; private set; }
        /// <summary>Rotated width of each head.</summary>
        public long RotaryDim { get; }

        /// <summary>The global rotary embedding of <paramref name="config"/> (rope_theta and rope_scaling).</summary>
        public RotaryEmbedding(DecoderConfig config, Device? device = null) : this(config, config.RopeTheta, config.RopeScaling, device) { }

        /// <summary>A rotary embedding with base <paramref name="theta"/> and <paramref name="scaling"/> (Gemma 3's local layers: rope_local_base_freq, no scaling).</summary>
        public RotaryEmbedding(DecoderConfig config, double theta, RopeScaling? scaling, Device? device = null)
        {
            _config = config;
            _theta = theta;
            _scaling = scaling;
            _device = device;
            RotaryDim = config.RotaryDim;
            (InvFreq, AttentionScaling) = Frequencies(null);
            _original = InvFreq;
            _maxSeqLenCached = config.MaxPositionEmbeddings;
        }

        /// <summary>
        /// transformers' rope init function for this type, for a current sequence length <paramref name="seqLen"/>
        /// (dynamic and longrope use it; null: at initialisation).
        /// </summary>
        (Tensor InvFreq, double AttentionFactor) Frequencies(long? seqLen)
        {
            using var scope = NewDisposeScope();
            long dim = RotaryDim;
            var exponents = arange(0, dim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32) / dim;      // [dim/2]
            var s = _scaling;
            Tensor inv;
            double attention = 1.0;
            switch (s?.Type)
            {
                case null:
                    inv = 1.0f / pow(_theta, exponents);
                    break;
                case "linear":
                    inv = 1.0f / pow(_theta, exponents) / s.Factor;
                    break;
                case "dynamic":
                {
                    // NTK: the base grows with the sequence once it passes max_position_embeddings.
                    double max = _config.MaxPositionEmbeddings, length = Math.Max(seqLen ?? (long)max, (long)max);
                    double scaledBase = _theta * Math.Pow(s.Factor * length / max - (s.Factor - 1), (double)dim / (dim - 2));
                    inv = 1.0f / pow(scaledBase, exponents);
                    break;
                }
                case "llama3":
                {
                    inv = 1.0f / pow(_theta, exponents);
                    double old = s.OriginalMaxPositions!.Value, lowWavelen = old / s.LowFreqFactor, highWavelen = old / s.HighFreqFactor;
                    var wavelen = 2 * Math.PI / inv;
                    var scaled = where(wavelen > lowWavelen, inv / s.Factor, inv);
                    var smooth = (old / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                    var smoothed = (1 - smooth) * scaled / s.Factor + smooth * scaled;
                    var medium = (wavelen >= highWavelen).logical_and(wavelen <= lowWavelen);
                    inv = where(medium, smoothed, scaled);
                    break;
                }
                case "yarn":
                {
                    double original = s.OriginalMaxPositions ?? _config.MaxPositionEmbeddings;
                    static double MScale(double scale, double m) => scale <= 1 ? 1.0 : 0.1 * m * Math.Log(scale) + 1.0;
                    attention = s.AttentionFactor
                                ?? (s.Mscale is { } m && m != 0 && s.MscaleAllDim is { } mAll && mAll != 0 ? MScale(s.Factor, m) / MScale(s.Factor, mAll) : MScale(s.Factor, 1));
                    double betaFast = s.BetaFast is { } bf && bf != 0 ? bf : 32, betaSlow = s.BetaSlow is { } bs && bs != 0 ? bs : 1;
                    // The dimension whose wavelength turns `rotations` times over the original context.
                    double CorrectionDim(double rotations) => dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(_theta));
                    double low = CorrectionDim(betaFast), high = CorrectionDim(betaSlow);
                    if (s.Truncate) { low = Math.Floor(low); high = Math.Ceiling(high); }
                    low = Math.Max(low, 0);
                    high = Math.Min(high, dim - 1);
                    if (low == high) high += 0.001;
                    var posFreqs = pow(_theta, exponents);
                    var extrapolation = 1.0f / posFreqs;
                    var interpolation = 1.0f / (s.Factor * posFreqs);
                    var ramp = ((arange(dim / 2, dtype: ScalarType.Float32) - low) / (high - low)).clamp(0, 1);
                    var extrapolationWeight = 1 - ramp;
                    inv = interpolation * (1 - extrapolationWeight) + extrapolation * extrapolationWeight;
                    break;
                }
                case "longrope":
                {
                    // Phi-3: config.original_max_position_embeddings is the pretrained context; the factor is the ratio.
                    double original = _config.OriginalMaxPositionEmbeddings ?? _config.MaxPositionEmbeddings;
                    double factor = _config.OriginalMaxPositionEmbeddings is { } o ? _config.MaxPositionEmbeddings / (double)o : s.Factor;
                    attention = s.AttentionFactor ?? (factor <= 1.0 ? 1.0 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original)));
                    var ext = tensor(seqLen is { } n && n > original ? s.LongFactor!.ToArray() : s.ShortFactor!.ToArray(), dtype: ScalarType.Float32);
                    inv = 1.0f / (ext * pow(_theta, exponents));
                    break;
                }
                default:
                    throw new InvalidOperationException("rope type " + s.Type);
            }
            inv = inv.to(ScalarType.Float32);
            return ((_device is null ? inv : inv.to(_device)).MoveToOuterDisposeScope().DetachFromDisposeScope(), attention);
        }

        /// <summary>
        /// transformers' dynamic_rope_update: dynamic recomputes the frequencies when the sequence grows past what was
        /// seen (and resets below max_position_embeddings); longrope switches to the long factors past the original context.
        /// </summary>
        void Update(Tensor positionIds)
        {
            if (_scaling?.Type is not ("dynamic" or "longrope")) return;
            long seqLen = positionIds.max().item<long>() + 1;
            if (_scaling.Type == "dynamic")
            {
                long original = _config.MaxPositionEmbeddings;
                if (seqLen > _maxSeqLenCached)
                {
                    (InvFreq, AttentionScaling) = Frequencies(seqLen);
                    _maxSeqLenCached = seqLen;
                }
                if (seqLen < original && _maxSeqLenCached > original)
                {
                    InvFreq = _original;
                    _maxSeqLenCached = original;
                }
                return;
            }
            long pretrained = _config.OriginalMaxPositionEmbeddings ?? _config.MaxPositionEmbeddings;
            InvFreq = seqLen > pretrained ? (_long ??= Frequencies(pretrained + 1).InvFreq) : _original;
        }

        /// <summary>cos and sin [B, L, rotary_dim] for position ids [B, L], in <paramref name="dtype"/>.</summary>
        public (Tensor Cos, Tensor Sin) Compute(Tensor positionIds, ScalarType dtype)
        {
            Update(positionIds);
            var freqs = positionIds.to(ScalarType.Float32).unsqueeze(-1) * InvFreq.to(positionIds.device);   // [B, L, dim/2]
            var emb = cat(new[] { freqs, freqs }, -1);
            if (AttentionScaling == 1.0) return (emb.cos().to(dtype), emb.sin().to(dtype));
            return ((emb.cos() * AttentionScaling).to(dtype), (emb.sin() * AttentionScaling).to(dtype));
        }

        static Tensor RotateHalf(Tensor x)
        {
            long half = x.shape[^1] / 2;
            return cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1);
        }

        /// <summary>Applies the rotation to x [B, H, L, D] (the first rotary_dim features; the rest pass through).</summary>
        public Tensor Apply(Tensor x, Tensor cos, Tensor sin)
        {
            cos = cos.unsqueeze(1);
            sin = sin.unsqueeze(1);
            if (RotaryDim == x.shape[^1]) return x * cos + RotateHalf(x) * sin;
            var rot = x.narrow(-1, 0, RotaryDim);
            var pass = x.narrow(-1, RotaryDim, x.shape[^1] - RotaryDim);
            return cat(new[] { rot * cos + RotateHalf(rot) * sin, pass }, -1);
        }
    }
}
