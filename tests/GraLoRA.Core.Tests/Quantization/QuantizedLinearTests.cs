using System.Linq;
using GraLoRA.Quantization;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests.Quantization
{
    /// <summary>
    /// The quantised layer computes what a plain Linear holding the dequantised weight computes — forward, the input's
    /// gradient and the bias's — in its compute dtype, and returns the input's dtype.
    /// </summary>
    public class QuantizedLinearTests
    {
        public static TheoryData<string> Schemes() => new() { "nf4", "nf4-dq", "int8" };

        static QuantizationOptions Options(string scheme) => scheme switch
        {
            "nf4" => new QuantizationOptions(),
            "nf4-dq" => new QuantizationOptions { DoubleQuant = true },
            _ => new QuantizationOptions { Scheme = QuantizationScheme.Int8 },
        };

        [Theory, MemberData(nameof(Schemes))]
        public void ForwardAndGradientsMatchALinearOverTheDequantisedWeight(string scheme)
        {
            torch.manual_seed(11);
            using var scope = NewDisposeScope();
            var linear = nn.Linear(64, 48, hasBias: true);
            var layer = QuantizedLinear.FromLinear(linear, Options(scheme));
            var reference = nn.Linear(64, 48, hasBias: true);
            using (no_grad())
            {
                reference.weight!.copy_(layer.DequantizedWeight(ScalarType.Float32));
                reference.bias!.copy_(linear.bias!);
            }
            var x = randn(3, 5, 64);
            var x1 = x.clone().requires_grad_(true);
            var x2 = x.clone().requires_grad_(true);
            var y1 = layer.forward(x1);
            var y2 = reference.forward(x2);
            TensorAssert.Close(y1, y2, 1e-6, "forward");
            var g = randn(3, 5, 48);
            y1.backward(new[] { g });
            y2.backward(new[] { g });
            TensorAssert.Close(x1.grad!, x2.grad!, 1e-6, "input gradient");
            TensorAssert.Close(linear.bias!.grad!, reference.bias!.grad!, 1e-6, "bias gradient");
        }

        [Fact]
        public void ComputesInItsComputeDTypeAndReturnsTheInputsDType()
        {
            torch.manual_seed(2);
            using var scope = NewDisposeScope();
            var linear = nn.Linear(64, 32, hasBias: false);
            var layer = QuantizedLinear.FromLinear(linear, new QuantizationOptions(), ScalarType.BFloat16);
            var x = randn(4, 64);
            var y = layer.forward(x);
            Assert.Equal(ScalarType.Float32, y.dtype);
            var expected = nn.functional.linear(x.to(ScalarType.BFloat16), layer.DequantizedWeight(ScalarType.BFloat16)).to(ScalarType.Float32);
            Assert.True(TensorAssert.Identical(y, expected), "bfloat16 product, cast back");
        }

        [Fact]
        public void ALayerWithoutItsWeightSaysSo()
        {
            using var layer = new QuantizedLinear(8, 4, null, ScalarType.Float32);
            using var x = randn(2, 8);
            Assert.Equal("QuantizedWeightMissing", Assert.Throws<GraloraException>(() => layer.forward(x)).ErrorId);
            using var wrong = Nf4Weight.Quantize(randn(4, 16));
            Assert.Equal("QuantizedShapeMismatch", Assert.Throws<GraloraException>(() => layer.Load(wrong)).ErrorId);
        }

        [Fact]
        public void OnlyTheBiasIsAParameter()
        {
            using var linear = nn.Linear(64, 16, hasBias: true);
            using var layer = QuantizedLinear.FromLinear(linear, new QuantizationOptions());
            Assert.Equal(new[] { "bias" }, layer.named_parameters().Select(p => p.name).ToArray());
        }
    }
}
