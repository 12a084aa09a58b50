using System.Collections.Generic;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Quantization
{
    /// <summary>
    /// A frozen linear layer whose weight is held quantised (bitsandbytes' Linear4bit / Linear8bitLt): each forward
    /// dequantises the weight to <see cref="ComputeDType"/>, multiplies, and frees it; the backward dequantises again
    /// for the input's gradient, so no full-precision weight outlives the layer's call. The bias, when there is one,
    /// is an ordinary parameter registered as "bias". Adapters wrap it exactly as they wrap a Linear.
    /// </summary>
    public sealed class QuantizedLinear : nn.Module<Tensor, Tensor>
    {
        QuantizedWeight? _weight;
        readonly Parameter? _bias;

        /// <summary>A layer of the given shape whose weight a loader supplies later (<see cref="Load"/>).</summary>
        public QuantizedLinear(long inFeatures, long outFeatures, Parameter? bias, ScalarType computeDType) : base(nameof(QuantizedLinear))
        {
            InFeatures = inFeatures;
            OutFeatures = outFeatures;
            ComputeDType = computeDType;
            _bias = bias;
            if (bias is not null) register_parameter("bias", bias);
        }

        /// <summary>A layer holding <paramref name="weight"/> (owned from now on).</summary>
        public QuantizedLinear(QuantizedWeight weight, Parameter? bias, ScalarType computeDType) : this(weight.Shape[1], weight.Shape[0], bias, computeDType)
            => Load(weight);

        /// <summary>
        /// Quantises <paramref name="linear"/>'s weight; the bias is shared (not copied). Compute dtype: the weight's own
        /// unless given.
        /// </summary>
        public static QuantizedLinear FromLinear(Linear linear, QuantizationOptions options, ScalarType? computeDType = null) =>
            new(QuantizedWeight.Quantize(linear.weight!, options), linear.bias, computeDType ?? linear.weight!.dtype);

        /// <summary>Input width.</summary>
        public long InFeatures { get; }
        /// <summary>Output width.</summary>
        public long OutFeatures { get; }
        /// <summary>The dtype the weight is dequantised to and the product computed in (bitsandbytes' compute_dtype).</summary>
        public ScalarType ComputeDType { get; }
        /// <summary>The bias, or null.</summary>
        public Parameter? Bias => _bias;
        /// <summary>True once the weight has been supplied.</summary>
        public bool IsLoaded => _weight is not null;

        /// <summary>The quantised weight.</summary>
        public QuantizedWeight Weight => _weight ?? throw new GraloraException("QuantizedWeightMissing", GraloraErrorKind.InvalidOperation,
            $"This quantised layer [{OutFeatures} × {InFeatures}] has no weight yet: the checkpoint did not supply it.");

        /// <summary>The device of the quantised weight.</summary>
        public Device Device => Weight.Device;

        /// <summary>Puts <paramref name="weight"/> in place (owned from now on), disposing the previous one.</summary>
        public void Load(QuantizedWeight weight)
        {
            if (weight.Shape[0] != OutFeatures || weight.Shape[1] != InFeatures)
                throw new GraloraException("QuantizedShapeMismatch", GraloraErrorKind.InvalidData,
                    $"A quantised weight of shape [{string.Join(", ", weight.Shape)}] does not fit a layer [{OutFeatures} × {InFeatures}].", weight.Shape);
            if (ReferenceEquals(weight, _weight)) return;
            foreach (var t in weight.Storage) t.DetachFromDisposeScope();     // owned by the layer from now on, as Linear owns its weight
            _weight?.Dispose();
            _weight = weight;
        }

        /// <summary>The full weight [out, in] in <paramref name="dtype"/> (default: the compute dtype), as a new tensor.</summary>
        public Tensor DequantizedWeight(ScalarType? dtype = null) => Weight.Dequantize(dtype ?? ComputeDType);

        /// <summary>x [..., in] → x·Wᵀ + b [..., out], computed in the compute dtype and returned in x's dtype.</summary>
        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var input = x.to(ComputeDType);
            var bias = _bias?.to(ComputeDType);
            var output = is_grad_enabled() && (input.requires_grad || bias is { requires_grad: true })
                ? DequantizedMatmul.Apply(this, input, bias)
                : nn.functional.linear(input, Weight.Dequantize(ComputeDType), bias);
            return output.to(x.dtype).MoveToOuterDisposeScope();
        }

        /// <inheritdoc />
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _weight?.Dispose();
                _weight = null;
            }
            base.Dispose(disposing);
        }

        /// <summary>
        /// y = x·Wᵀ (+ b) with W dequantised in forward and again in backward (bitsandbytes' MatMul4Bit), so autograd keeps
        /// no full-precision copy of W between them: only the layer, to read its quantised weight again.
        /// </summary>
        sealed class DequantizedMatmul : autograd.SingleTensorFunction<DequantizedMatmul>
        {
            public override string Name => nameof(DequantizedMatmul);

            // Which gradients backward computes, decided before apply (inside forward the inputs no longer say).
            sealed record Needs(bool Input, bool Bias);

            public static Tensor Apply(QuantizedLinear layer, Tensor x, Tensor? bias)
            {
                var needs = new Needs(x.requires_grad, bias is { requires_grad: true });
                return bias is null ? apply(layer, needs, x) : apply(layer, needs, x, bias);
            }

            /// <summary>vars: layer, what needs a gradient, x [..., in], and the bias [out] when there is one.</summary>
            public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
            {
                var layer = (QuantizedLinear)vars[0];
                var x = (Tensor)vars[2];
                var bias = vars.Length > 3 ? (Tensor)vars[3] : null;
                ctx.save_data("layer", layer);
                ctx.save_data("needs", vars[1]);
                using var scope = NewDisposeScope();
                return nn.functional.linear(x, layer.Weight.Dequantize(x.dtype), bias).MoveToOuterDisposeScope();   // [..., out]
            }

            public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
            {
                var layer = (QuantizedLinear)ctx.get_data("layer");
                var needs = (Needs)ctx.get_data("needs");
                Tensor? gradInput = null, gradBias = null;
                if (needs.Input)
                    using (var weight = layer.Weight.Dequantize(gradOutput.dtype))                         // [out, in]
                        gradInput = gradOutput.matmul(weight);                                             // [..., in]
                if (needs.Bias) gradBias = gradOutput.reshape(-1, gradOutput.shape[^1]).sum(0, false);    // [out]
                var grads = new List<Tensor> { null!, null!, gradInput! };
                if (layer._bias is not null) grads.Add(gradBias!);
                return grads;
            }
        }
    }
}
