using System;
using System.Linq;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    internal static class TensorAssert
    {
        /// <summary>max|actual − expected| / max|expected| (in float64).</summary>
        public static double RelativeError(Tensor actual, Tensor expected)
        {
            using var scope = NewDisposeScope();
            var a = actual.detach().cpu().to(ScalarType.Float64);
            var e = expected.detach().cpu().to(ScalarType.Float64);
            Assert.Equal(e.shape, a.shape);
            double scale = Math.Max(e.abs().max().item<double>(), 1e-30);
            return (a - e).abs().max().item<double>() / scale;
        }

        /// <summary>Same shape and bitwise-equal values.</summary>
        public static bool Identical(Tensor a, Tensor b) =>
            a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.eq(b).all().item<bool>();

        public static void Close(Tensor actual, Tensor expected, double relativeTolerance, string what = "")
        {
            double err = RelativeError(actual, expected);
            Assert.True(err <= relativeTolerance, $"{what}: relative error {err:E3} > {relativeTolerance:E1}");
        }
    }
}
