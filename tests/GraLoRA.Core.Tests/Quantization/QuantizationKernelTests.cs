using System;
using System.Linq;
using GraLoRA.Quantization;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests.Quantization
{
    /// <summary>
    /// NF4 and int8 kernels against values derived by hand from the published tables and formulas: bitsandbytes'
    /// NF4 levels (functional.get_4bit_type("nf4"), QLoRA arXiv 2305.14314 appendix E), its packing (backends/default
    /// ops.py quantize_4bit: the first value of each pair in the high nibble), its dynamic 8-bit code
    /// (functional.create_dynamic_map) and LLM.int8's row-wise absmax (arXiv 2208.07339: round(127·w/absmax)).
    /// </summary>
    public class QuantizationKernelTests
    {
        // The 16 NF4 levels as bitsandbytes prints them (float32), copied from functional.get_4bit_type.
        static readonly double[] PublishedNf4 =
        {
            -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
            -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
            0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
        };

        static float[] Floats(Tensor t) => t.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        static byte[] Bytes(Tensor t) => t.cpu().contiguous().data<byte>().ToArray();

        [Fact]
        public void TheCodeTableIsBitsandbytesNf4()
        {
            Assert.Equal(PublishedNf4.Select(v => (float)v), Nf4Weight.CodeTable);
        }

        [Fact]
        public void ValuesOnTheLevelsRoundTripExactlyAndPackHighNibbleFirst()
        {
            // One block of 64: 2 · level[i mod 16]. absmax = 2 (the levels include ±1), every value sits on a level.
            var values = Enumerable.Range(0, 64).Select(i => (float)(2 * PublishedNf4[i % 16])).ToArray();
            using var w = tensor(values).view(1, 64);
            using var q = Nf4Weight.Quantize(w);
            Assert.Equal(new long[] { 32, 1 }, q.Packed.shape);
            Assert.Equal(new[] { 2f }, Floats(q.Absmax));
            // Indices 0,1 → 0x01; 2,3 → 0x23; … 14,15 → 0xEF; repeated four times.
            var expected = Enumerable.Repeat(new byte[] { 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF }, 4).SelectMany(b => b).ToArray();
            Assert.Equal(expected, Bytes(q.Packed));
            using var back = q.Dequantize(ScalarType.Float32);
            Assert.Equal(values, Floats(back));
        }

        [Fact]
        public void ValuesRoundToTheNearestLevelOfTheirBlock()
        {
            // Block absmax 1 (the first value). 0.04 lies above the midpoint of levels 0 and 0.0796 (0.0398): level 8;
            // 0.039 below it: level 7 (0). -0.6 is nearer -0.5251 than -0.6962 (midpoint -0.6106): level 2.
            // 0.9 is nearer 1 than 0.7230 (midpoint 0.8615): level 15. Rest zeros.
            var values = new float[64];
            values[0] = 1f; values[1] = 0.04f; values[2] = 0.039f; values[3] = -0.6f; values[4] = 0.9f;
            using var w = tensor(values).view(2, 32);
            using var q = Nf4Weight.Quantize(w);
            var bytes = Bytes(q.Packed);
            Assert.Equal(new byte[] { 0xF8, 0x72, 0xF7 }, bytes.Take(3).ToArray());
            using var back = q.Dequantize(ScalarType.Float32);
            var got = Floats(back);
            Assert.Equal(new[] { 1f, (float)PublishedNf4[8], 0f, (float)PublishedNf4[2], 1f, 0f }, got.Take(6).ToArray());
        }

        [Fact]
        public void AShortLastBlockHasItsOwnAbsmaxAndAnOddCountPadsWithTheZeroLevel()
        {
            // 65 values: one block of 64 (absmax 3) and a block of one value (-0.5): its absmax is 0.5 and it dequantises to -0.5.
            var values = Enumerable.Range(0, 65).Select(i => i == 0 ? 3f : i == 64 ? -0.5f : 0f).ToArray();
            using var w = tensor(values).view(5, 13);
            using var q = Nf4Weight.Quantize(w);
            Assert.Equal(new[] { 3f, 0.5f }, Floats(q.Absmax));
            var bytes = Bytes(q.Packed);
            Assert.Equal(33, bytes.Length);
            Assert.Equal(0x07, bytes[32]);          // value 64 → level 0 (-1) in the high nibble, the padding → level 7 (0) low
            using var back = q.Dequantize(ScalarType.Float32);
            Assert.Equal(values, Floats(back));
        }

        // Largest distance from a value in [-1, 1] to its nearest NF4 level: half the widest gap (-1 → -0.6962).
        static readonly double Nf4HalfGap = (1.0 - 0.6961928009986877) / 2;

        [Theory]
        [InlineData(64, false)]
        [InlineData(128, false)]
        [InlineData(64, true)]
        public void QuantiseDequantiseErrorStaysWithinEachBlocksBound(int blockSize, bool doubleQuant)
        {
            torch.manual_seed(7);
            using var scope = NewDisposeScope();
            var w = randn(48, 256).mul(0.05);
            w[3, 17] = tensor(0.9f);                                                                    // one outlier block
            using var q = Nf4Weight.Quantize(w, blockSize, doubleQuant);
            var error = q.Dequantize(ScalarType.Float32).sub(w).abs().view(-1, blockSize).amax(new long[] { 1 });   // per block
            var trueAbsmax = w.abs().view(-1, blockSize).amax(new long[] { 1 });
            var bound = trueAbsmax.mul(Nf4HalfGap).add(1e-6);
            if (doubleQuant)
            {
                // |w − c·â| ≤ |w − c·a| + |a − â|: the absmax itself is off by at most half a gap of the 8-bit dynamic code
                // around 1 (0.9/64/2) times its nested block's absmax.
                Assert.NotNull(q.Nested);
                Assert.Equal(ScalarType.Byte, q.Absmax.dtype);
                var absmaxError = q.AbsmaxValues().sub(trueAbsmax).abs();
                var nestedBound = q.Nested!.Absmax.max().mul(0.9 / 64 / 2).add(1e-7);
                Assert.True(absmaxError.max().item<float>() <= nestedBound.item<float>(), $"absmax error {absmaxError.max().item<float>()} > {nestedBound.item<float>()}");
                bound = bound.add(absmaxError);
            }
            var excess = error.sub(bound).max().item<float>();
            Assert.True(excess <= 0, $"a block's error exceeds its bound by {excess}");
            Assert.True(error.max().item<float>() > 0, "quantisation should not be lossless on random values");
        }

        [Fact]
        public void TheDynamicCodeFollowsCreateDynamicMap()
        {
            // 127 negatives, 0, 127 positives, 1. Largest fraction level: the last midpoint of linspace(0.1, 1, 65) =
            // 1 − 0.9/128; smallest positive: the one midpoint of linspace(0.1, 1, 2) times 10^-6.
            using var code = BlockwiseCodes.DynamicCode();
            var v = Floats(code);
            Assert.Equal(256, v.Length);
            Assert.True(v.Zip(v.Skip(1)).All(p => p.First < p.Second), "sorted, no repeats");
            Assert.Equal(0f, v[127]);
            Assert.Equal(1f, v[255]);
            Assert.Equal(1 - 0.9 / 128, v[254], 6);
            Assert.Equal(-(1 - 0.9 / 128), v[0], 6);
            Assert.Equal(0.55e-6, v[128], 12);
            Assert.Equal(v.Take(127).Select(x => -x).Reverse(), v.Skip(128).Take(127));
        }

        [Fact]
        public void Int8KeepsOneAbsmaxPerRowAndRoundsHalfToEven()
        {
            // Row 0: absmax 2, codes round(63.5·[-2, 1, 0.5, 0]) = [-127, 64 (63.5 to even), 32 (31.75), 0].
            // Row 1 is all zero: codes 0, absmax 0 (bitsandbytes would divide by it). Row 2: absmax 0.25.
            using var w = tensor(new float[] { -2, 1, 0.5f, 0, 0, 0, 0, 0, 0.25f, -0.125f, 0.0625f, 0 }).view(3, 4);
            using var q = Int8Weight.Quantize(w);
            Assert.Equal(new sbyte[] { -127, 64, 32, 0, 0, 0, 0, 0, 127, -64, 32, 0 }, q.Codes.data<sbyte>().ToArray());
            Assert.Equal(new[] { 2f, 0f, 0.25f }, Floats(q.RowAbsmax));
            using var back = q.Dequantize(ScalarType.Float32);
            var expected = new[] { -127, 64, 32, 0, 0, 0, 0, 0, 127, -64, 32, 0 }.Select((c, i) => (float)(c * new[] { 2.0, 0, 0.25 }[i / 4] / 127)).ToArray();
            var got = Floats(back);
            for (int i = 0; i < got.Length; i++) Assert.Equal(expected[i], got[i], 6);
        }

        [Fact]
        public void Int8ErrorStaysWithinHalfAStepOfEachRow()
        {
            torch.manual_seed(3);
            using var scope = NewDisposeScope();
            var w = randn(64, 96).mul(0.1);
            using var q = Int8Weight.Quantize(w);
            var error = q.Dequantize(ScalarType.Float32).sub(w).abs().amax(new long[] { 1 });             // [rows]
            var absmax = w.abs().amax(new long[] { 1 });
            // Half a step (absmax/254) plus the float16 rounding of the weight before quantising (2^-11 relative).
            var bound = absmax.div(254).add(absmax.mul(Math.Pow(2, -11))).add(1e-7);
            Assert.True(error.sub(bound).max().item<float>() <= 0);
        }

        [Fact]
        public void StorageIsAboutHalfAByteAWeightForNf4AndOneByteForInt8()
        {
            using var w = randn(128, 512);
            using var nf4 = Nf4Weight.Quantize(w);
            using var nested = Nf4Weight.Quantize(w, doubleQuant: true);
            using var int8 = Int8Weight.Quantize(w);
            long n = 128 * 512;
            Assert.Equal(n / 2 + 4 * n / 64, nf4.StorageBytes);                                      // packed + float32 absmax
            Assert.Equal(n / 2 + n / 64 + 4 * (n / 64 / 256) + 4 * 256, nested.StorageBytes);       // + 8-bit absmax, nested absmax, code
            Assert.Equal(n + 4 * 128, int8.StorageBytes);
        }

        [Fact]
        public void RequantiseKeepsTheSchemeAndRefusesAnotherShape()
        {
            using var w = randn(16, 64);
            using var q = Nf4Weight.Quantize(w, 32, doubleQuant: true);
            using var again = (Nf4Weight)q.Requantize(w.mul(2));
            Assert.Equal((32, true), (again.BlockSize, again.Nested is not null));
            using var other = randn(8, 64);
            Assert.Equal("QuantizedShapeMismatch", Assert.Throws<GraloraException>(() => q.Requantize(other)).ErrorId);
        }

        [Theory]
        [InlineData("gptq")]
        [InlineData("awq")]
        [InlineData("fp8")]
        public void UnimplementedSchemesAreRefusedByName(string name)
        {
            var ex = Assert.Throws<GraloraException>(() => QuantizationOptions.ParseScheme(name));
            Assert.Equal("UnsupportedQuantization", ex.ErrorId);
            foreach (var named in new[] { name, "GPTQ", "AWQ", "FP8", "nf4", "int8" }) Assert.Contains(named, ex.Message);
            Assert.Equal(QuantizationScheme.Nf4, QuantizationOptions.ParseScheme("NF4"));
            Assert.Equal(QuantizationScheme.Int8, QuantizationOptions.ParseScheme("int8"));
        }
    }
}
