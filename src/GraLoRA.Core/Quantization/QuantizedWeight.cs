using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace GraLoRA.Quantization
{
    /// <summary>
    /// A frozen weight matrix [out, in] held quantised. It owns its tensors (not parameters: nothing here trains) and
    /// gives the full matrix back on demand as a new tensor, which callers free as soon as they are done with it.
    /// </summary>
    public abstract class QuantizedWeight : IDisposable
    {
        /// <summary>The weight's shape [out, in].</summary>
        public long[] Shape { get; }

        /// <summary>Creates the weight of <paramref name="shape"/>.</summary>
        protected QuantizedWeight(long[] shape) => Shape = shape;

        /// <summary>nf4 or int8.</summary>
        public abstract QuantizationScheme Scheme { get; }
        /// <summary>The device the quantised tensors live on.</summary>
        public abstract Device Device { get; }
        /// <summary>The tensors that hold the weight (for memory accounting and serialisation).</summary>
        public abstract IEnumerable<Tensor> Storage { get; }
        /// <summary>Bytes the quantised weight occupies.</summary>
        public long StorageBytes => Storage.Sum(t => t.numel() * t.ElementSize);
        /// <summary>Number of weights it stands for (out · in).</summary>
        public long Count => Shape[0] * Shape[1];

        /// <summary>The weight [out, in] in <paramref name="dtype"/>: a new tensor, computed from the quantised values.</summary>
        public abstract Tensor Dequantize(ScalarType dtype);

        /// <summary>Quantises <paramref name="weight"/> [out, in] (any floating dtype, on its device) as <paramref name="options"/> say.</summary>
        public static QuantizedWeight Quantize(Tensor weight, QuantizationOptions options) => options.Scheme switch
        {
            QuantizationScheme.Nf4 => Nf4Weight.Quantize(weight, options.BlockSize, options.DoubleQuant),
            QuantizationScheme.Int8 => Int8Weight.Quantize(weight),
            _ => throw new ArgumentOutOfRangeException(nameof(options)),
        };

        /// <summary>The same scheme and settings applied to another matrix of the same shape (re-quantising after a merge).</summary>
        public abstract QuantizedWeight Requantize(Tensor weight);

        /// <inheritdoc />
        public void Dispose()
        {
            foreach (var t in Storage) t.Dispose();
            GC.SuppressFinalize(this);
        }

        /// <summary>Checks a new matrix against this weight's shape.</summary>
        protected void CheckShape(Tensor weight)
        {
            if (weight.dim() != 2 || !weight.shape.SequenceEqual(Shape))
                throw new GraloraException("QuantizedShapeMismatch", GraloraErrorKind.InvalidArgument,
                    $"A weight of shape [{string.Join(", ", weight.shape)}] cannot replace a quantised weight of shape [{string.Join(", ", Shape)}].", weight.shape);
        }
    }

    /// <summary>The double-quantised absmax of an NF4 weight: 8-bit codes in blocks of 256, their float32 absmax, the code table and the mean subtracted first.</summary>
    public sealed record NestedAbsmax(Tensor Absmax, Tensor Code, float Offset, int BlockSize);

    /// <summary>
    /// NF4 as bitsandbytes stores it (Params4bit with quant_type nf4): blocks of <see cref="BlockSize"/> values, each
    /// scaled by its absolute maximum and rounded to the nearest of the 16 NormalFloat levels; two 4-bit indices per
    /// byte, the first value of each pair in the high nibble; packed [(n+1)/2, 1] uint8. With double quantisation the
    /// float32 absmax values are themselves quantised to 8 bits (bitsandbytes' dynamic code) in blocks of 256 after
    /// subtracting their mean.
    /// </summary>
    public sealed class Nf4Weight : QuantizedWeight
    {
        /// <summary>
        /// bitsandbytes' NF4 levels (functional.get_4bit_type("nf4"), also the CUDA kernels' table), from QLoRA
        /// (Dettmers et al. 2023, arXiv 2305.14314): quantiles of N(0, 1) normalised to [-1, 1], with an exact 0.
        /// </summary>
        public static readonly float[] CodeTable =
        {
            -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
            0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
            0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
        };

        /// <summary>Index of the level 0.0 (bitsandbytes pads an odd count with a zero value, which packs as this index).</summary>
        const int ZeroIndex = 7;

        /// <summary>Packed indices [(n+1)/2, 1] uint8.</summary>
        public Tensor Packed { get; }
        /// <summary>Per-block absmax: float32 [blocks], or the 8-bit codes [blocks] uint8 when <see cref="Nested"/> is set.</summary>
        public Tensor Absmax { get; }
        /// <summary>The double quantisation of <see cref="Absmax"/>, or null.</summary>
        public NestedAbsmax? Nested { get; }
        /// <summary>Values per absmax block.</summary>
        public int BlockSize { get; }
        /// <summary>The dtype name the weight had before quantisation (bitsandbytes' quant state "dtype").</summary>
        public string SourceDType { get; }

        /// <summary>Wraps already-quantised tensors (checked by the callers that read them).</summary>
        public Nf4Weight(long[] shape, Tensor packed, Tensor absmax, int blockSize, string sourceDType, NestedAbsmax? nested = null) : base(shape)
        {
            Packed = packed;
            Absmax = absmax;
            BlockSize = blockSize;
            SourceDType = sourceDType;
            Nested = nested;
        }

        /// <inheritdoc />
        public override QuantizationScheme Scheme => QuantizationScheme.Nf4;
        /// <inheritdoc />
        public override Device Device => Packed.device;
        /// <inheritdoc />
        public override IEnumerable<Tensor> Storage => Nested is null ? new[] { Packed, Absmax } : new[] { Packed, Absmax, Nested.Absmax, Nested.Code };

        /// <summary>The NF4 levels as a float32 tensor on <paramref name="device"/>.</summary>
        public static Tensor Code(Device device) => tensor(CodeTable, device: device);

        /// <summary>
        /// Quantises <paramref name="weight"/> [out, in] as bitsandbytes' quantize_4bit(quant_type="nf4", blocksize,
        /// compress_statistics=<paramref name="doubleQuant"/>) does; the values are taken in float32.
        /// </summary>
        public static Nf4Weight Quantize(Tensor weight, int blockSize = QuantizationOptions.DefaultBlockSize, bool doubleQuant = false)
        {
            new QuantizationOptions { BlockSize = blockSize }.Validate();
            if (weight.dim() != 2)
                throw new GraloraException("QuantizedShapeMismatch", GraloraErrorKind.InvalidArgument, $"Only weight matrices are quantised, not shape [{string.Join(", ", weight.shape)}].", weight.shape);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var code = Code(weight.device);
            var (indices, absmax) = BlockwiseCodes.Quantize(weight.detach(), code, blockSize);              // [n] int32, [blocks] float32
            if (indices.shape[0] % 2 == 1) indices = cat(new[] { indices, full(1, ZeroIndex, dtype: ScalarType.Int32, device: weight.device) }, 0);
            var pairs = indices.to(ScalarType.Byte).view(-1, 2);                                           // [(n+1)/2, 2]
            var packed = pairs.select(1, 0).bitwise_left_shift(4).bitwise_or(pairs.select(1, 1)).unsqueeze(1); // [(n+1)/2, 1]
            NestedAbsmax? nested = null;
            Tensor storedAbsmax = absmax;
            if (doubleQuant)
            {
                var offset = absmax.mean();                                                                // []
                var dynamic = BlockwiseCodes.DynamicCode().to(weight.device);                              // [256]
                var (codes, nestedAbsmax) = BlockwiseCodes.Quantize(absmax.sub(offset), dynamic, QuantizationOptions.NestedBlockSize);
                storedAbsmax = codes.to(ScalarType.Byte);
                nested = new NestedAbsmax(nestedAbsmax.MoveToOuterDisposeScope(), dynamic.MoveToOuterDisposeScope(), offset.item<float>(), QuantizationOptions.NestedBlockSize);
            }
            return new Nf4Weight(weight.shape.ToArray(), packed.contiguous().MoveToOuterDisposeScope(), storedAbsmax.MoveToOuterDisposeScope(), blockSize,
                                 Models.ModelDType.Name(weight.dtype), nested);
        }

        /// <inheritdoc />
        public override QuantizedWeight Requantize(Tensor weight)
        {
            CheckShape(weight);
            return Quantize(weight, BlockSize, Nested is not null);
        }

        /// <summary>The per-block absmax as float32 [blocks] (double quantisation undone: codes · nested absmax + offset).</summary>
        public Tensor AbsmaxValues()
        {
            if (Nested is null) return Absmax.to(ScalarType.Float32, copy: true);
            using var scope = NewDisposeScope();
            var values = BlockwiseCodes.Dequantize(Absmax, Nested.Absmax, Nested.Code, Nested.BlockSize).add(Nested.Offset);
            return values.MoveToOuterDisposeScope();
        }

        /// <inheritdoc />
        public override Tensor Dequantize(ScalarType dtype)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            long n = Count;
            var bytes = Packed.reshape(-1);                                                              // [(n+1)/2]
            var indices = stack(new[] { bytes.bitwise_right_shift(4), bytes.bitwise_and(15) }, 1).reshape(-1).narrow(0, 0, n); // high nibble first
            var values = BlockwiseCodes.Dequantize(indices, AbsmaxValues(), Code(Packed.device), BlockSize);  // [n] float32
            return values.view(Shape).to(dtype).MoveToOuterDisposeScope();
        }
    }

    /// <summary>
    /// Row-wise absmax int8 as bitsandbytes' Linear8bitLt stores its weight (LLM.int8, Dettmers et al. 2022, arXiv
    /// 2208.07339): CB = round(W · 127 / SCB) with SCB the absolute maximum of each output row (the weight taken in
    /// float16 first, as Int8Params does); W ≈ CB · SCB / 127.
    /// </summary>
    public sealed class Int8Weight : QuantizedWeight
    {
        /// <summary>bitsandbytes' 1/127 (int8_vectorwise_dequant: multiplied, not divided).</summary>
        const double InverseScale = 7.874015718698502e-3;

        /// <summary>The int8 weights [out, in].</summary>
        public Tensor Codes { get; }
        /// <summary>The absmax of each row [out], float32 (bitsandbytes' SCB).</summary>
        public Tensor RowAbsmax { get; }

        /// <summary>Wraps already-quantised tensors.</summary>
        public Int8Weight(Tensor codes, Tensor rowAbsmax) : base(codes.shape.ToArray())
        {
            Codes = codes;
            RowAbsmax = rowAbsmax;
        }

        /// <inheritdoc />
        public override QuantizationScheme Scheme => QuantizationScheme.Int8;
        /// <inheritdoc />
        public override Device Device => Codes.device;
        /// <inheritdoc />
        public override IEnumerable<Tensor> Storage => new[] { Codes, RowAbsmax };

        /// <summary>
        /// Quantises <paramref name="weight"/> [out, in] as bitsandbytes' int8_vectorwise_quant (threshold 0) of its float16
        /// copy. An all-zero row (where bitsandbytes would compute 0 · ∞) gets codes 0.
        /// </summary>
        public static Int8Weight Quantize(Tensor weight)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var half = weight.detach().to(ScalarType.Float16);                                            // [out, in]
            var rowAbsmax = half.abs().amax(new long[] { 1 }).to(ScalarType.Float32);                    // [out]
            var factor = rowAbsmax.reciprocal().mul(127.0).unsqueeze(1);                                  // 127.0 / SCB as torch computes it (reciprocal, then ×) [out, 1]
            factor = where(rowAbsmax.unsqueeze(1).eq(0), zeros_like(factor), factor);
            var codes = half.to(ScalarType.Float32).mul(factor).round().to(ScalarType.Int8);              // [out, in]
            return new Int8Weight(codes.MoveToOuterDisposeScope(), rowAbsmax.MoveToOuterDisposeScope());
        }

        /// <inheritdoc />
        public override QuantizedWeight Requantize(Tensor weight)
        {
            CheckShape(weight);
            return Quantize(weight);
        }

        /// <inheritdoc />
        public override Tensor Dequantize(ScalarType dtype)
        {
            using var scope = NewDisposeScope();
            var values = Codes.to(ScalarType.Float32).mul(RowAbsmax.view(-1, 1)).mul(InverseScale);    // [out, in]
            return values.to(dtype).MoveToOuterDisposeScope();
        }
    }
}
