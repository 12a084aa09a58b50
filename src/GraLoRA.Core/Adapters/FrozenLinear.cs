using System;
using GraLoRA.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// How far quantising moved a weight W' away from the value it was given: the largest entry of Q(W') − W', and
    /// ‖Q(W') − W'‖ relative to the change it stored, ‖W' − W‖ (after a merge: the update ΔW, so 1 means the rounding is
    /// as large as the update itself), or to ‖W'‖ when there is no previous weight (a quantised export).
    /// </summary>
    public readonly record struct Requantization(double MaxAbs, double RelativeError)
    {
        /// <summary>Measures <paramref name="quantized"/> against the value <paramref name="target"/> it was made from.</summary>
        public static Requantization Measure(QuantizedWeight quantized, Tensor target, Tensor? before)
        {
            using var scope = NewDisposeScope();
            var wanted = target.to(ScalarType.Float32);
            var difference = quantized.Dequantize(ScalarType.Float32).sub(wanted);                            // [out, in]
            var reference = before is null ? wanted : wanted.sub(before.to(ScalarType.Float32));
            double scale = Math.Max(reference.norm().item<float>(), 1e-30);
            return new Requantization(difference.abs().max().item<float>(), difference.norm().item<float>() / scale);
        }
    }

    /// <summary>
    /// The frozen layers adapters wrap — a <see cref="Linear"/> or a <see cref="QuantizedLinear"/> — seen through one face,
    /// so every rule that reads or writes a base weight (merges, DoRA's norm, exports, shapes) works on both.
    /// </summary>
    public static class FrozenLinear
    {
        /// <summary>Whether <paramref name="module"/> is a layer adapters can wrap.</summary>
        public static bool Is(nn.Module module) => module is Linear or QuantizedLinear;

        static Exception NotLinear(nn.Module module) => new ArgumentException($"expected a Linear or QuantizedLinear, got {module.GetType().Name}", nameof(module));

        /// <summary>Output width.</summary>
        public static long OutFeatures(nn.Module module) => module switch
        {
            Linear l => l.weight!.shape[0],
            QuantizedLinear q => q.OutFeatures,
            _ => throw NotLinear(module),
        };

        /// <summary>Input width.</summary>
        public static long InFeatures(nn.Module module) => module switch
        {
            Linear l => l.weight!.shape[1],
            QuantizedLinear q => q.InFeatures,
            _ => throw NotLinear(module),
        };

        /// <summary>
        /// The weight [out, in] the forward multiplies by: a Linear's parameter itself, or a quantised layer's weight
        /// dequantised to its compute dtype (a new tensor). Read it inside a dispose scope and never dispose it directly:
        /// the scope frees a dequantised copy and leaves a parameter alone.
        /// </summary>
        public static Tensor Weight(nn.Module module) => module switch
        {
            Linear l => l.weight!,
            QuantizedLinear q => q.DequantizedWeight(),
            _ => throw NotLinear(module),
        };

        /// <summary>The bias, or null.</summary>
        public static Parameter? Bias(nn.Module module) => module switch
        {
            Linear l => l.bias,
            QuantizedLinear q => q.Bias,
            _ => throw NotLinear(module),
        };

        /// <summary>The dtype the layer computes in: a Linear's weight dtype, a quantised layer's compute dtype.</summary>
        public static ScalarType DType(nn.Module module) => module switch
        {
            Linear l => l.weight!.dtype,
            QuantizedLinear q => q.ComputeDType,
            _ => throw NotLinear(module),
        };

        /// <summary>The device the weight lives on.</summary>
        public static Device Device(nn.Module module) => module switch
        {
            Linear l => l.weight!.device,
            QuantizedLinear q => q.Device,
            _ => throw NotLinear(module),
        };

        /// <summary>
        /// Replaces the weight by <paramref name="weight"/> [out, in]: copied into a Linear's parameter (rounded to its
        /// dtype); a quantised layer is re-quantised with its own scheme and settings, and the rounding that adds is
        /// returned, relative to the change from <paramref name="before"/> (null for a Linear).
        /// </summary>
        public static Requantization? Store(nn.Module module, Tensor weight, Tensor before)
        {
            using var _ = no_grad();
            switch (module)
            {
                case Linear l:
                    l.weight!.copy_(weight);
                    return null;
                case QuantizedLinear q:
                {
                    using var scope = NewDisposeScope();
                    var requantized = q.Weight.Requantize(weight);
                    var rounding = Requantization.Measure(requantized, weight, before);
                    q.Load(requantized);
                    return rounding;
                }
                default:
                    throw NotLinear(module);
            }
        }
    }
}
