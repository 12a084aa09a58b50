using System;
using static TorchSharp.torch;

namespace GraLoRA.Quantization
{
    /// <summary>
    /// Blockwise absmax quantisation against a sorted code table, as bitsandbytes' reference kernels compute it
    /// (backends/default/ops.py: quantize_blockwise, quantize_4bit, dequantize_blockwise): the flat values are cut into
    /// blocks of <c>blockSize</c> (the last may be shorter), each block is scaled by the reciprocal of its absolute
    /// maximum into [-1, 1], and each value becomes the index of the nearest code (a value exactly between two codes
    /// takes the lower, torch.bucketize on the midpoints). Dequantisation is code[index] · absmax, in float32.
    /// NF4 weights and the double-quantised absmax values share these two functions.
    /// </summary>
    internal static class BlockwiseCodes
    {
        /// <summary>
        /// Code indices [n] (int32) and per-block absmax [blocks] (float32) of <paramref name="flat"/> [n]. As bitsandbytes:
        /// full blocks multiply by 1/max(absmax, 1e-38) and keep absmax as is; a shorter last block divides by its absmax
        /// clamped to 1e-38, which is what it stores.
        /// </summary>
        public static (Tensor Indices, Tensor Absmax) Quantize(Tensor flat, Tensor code, int blockSize)
        {
            using var scope = NewDisposeScope();
            var values = flat.reshape(-1).to(ScalarType.Float32);
            long n = values.shape[0], rem = n % blockSize, full = n - rem, blocks = full / blockSize;
            var parts = new System.Collections.Generic.List<Tensor>();
            var maxima = new System.Collections.Generic.List<Tensor>();
            if (blocks > 0)
            {
                var grid = values.narrow(0, 0, full).view(blocks, blockSize);                       // [blocks, blockSize]
                var absmax = grid.abs().amax(new long[] { 1 });                                     // [blocks]
                var scale = absmax.clamp_min(1e-38).reciprocal().view(-1, 1);                       // [blocks, 1]
                parts.Add(grid.mul(scale).clamp(-1, 1).reshape(-1));
                maxima.Add(absmax);
            }
            if (rem > 0)
            {
                var tail = values.narrow(0, full, rem);                                             // [rem]
                var absmax = tail.abs().max().clamp_min(1e-38);                                     // []
                parts.Add(tail.div(absmax).clamp(-1, 1));
                maxima.Add(absmax.unsqueeze(0));
            }
            var scaled = parts.Count == 1 ? parts[0] : cat(parts.ToArray(), 0);                     // [n]
            var bounds = code.narrow(0, 0, code.shape[0] - 1).add(code.narrow(0, 1, code.shape[0] - 1)).div(2);
            var indices = bucketize(scaled, bounds, true, false);                 // [n]
            var all = maxima.Count == 1 ? maxima[0] : cat(maxima.ToArray(), 0);                     // [blocks (+1)]
            return (indices.MoveToOuterDisposeScope(), all.MoveToOuterDisposeScope());
        }

        /// <summary>code[indices] · absmax of each value's block, as float32 [n] (indices [n], any integer dtype).</summary>
        public static Tensor Dequantize(Tensor indices, Tensor absmax, Tensor code, int blockSize)
        {
            using var scope = NewDisposeScope();
            var values = code.index_select(0, indices.reshape(-1).to(ScalarType.Int64));          // [n] float32
            long n = values.shape[0], rem = n % blockSize, full = n - rem, blocks = full / blockSize;
            var scale = absmax.to(ScalarType.Float32);
            Tensor result;
            if (rem == 0) result = values.view(blocks, blockSize).mul(scale.view(-1, 1)).reshape(n);
            else
            {
                var head = values.narrow(0, 0, full).view(blocks, blockSize).mul(scale.narrow(0, 0, blocks).view(-1, 1)).reshape(full);
                var tail = values.narrow(0, full, rem).mul(scale[blocks]);
                result = cat(new[] { head, tail }, 0);
            }
            return result.MoveToOuterDisposeScope();
        }

        /// <summary>Number of blocks of <paramref name="count"/> values.</summary>
        public static long BlockCount(long count, int blockSize) => (count + blockSize - 1) / blockSize;

        /// <summary>bitsandbytes' 8-bit dynamic code (functional.create_dynamic_map, signed, 7 exponent bits): 256 sorted values in [-1, 1].</summary>
        public static Tensor DynamicCode()
        {
            // For exponent i = 0..6, 2^i linear fractions: the midpoints of linspace(0.1, 1, 2^i + 1) times 10^(i-6),
            // with both signs; then 0 and 1. 2·(1 + 2 + … + 64) + 2 = 256 values. Computed in float32, as torch does.
            using var scope = NewDisposeScope();
            var pieces = new System.Collections.Generic.List<Tensor>();
            for (int i = 0; i < 7; i++)
            {
                var bounds = linspace(0.1, 1, (1 << i) + 1, dtype: ScalarType.Float32);
                var means = bounds.narrow(0, 0, 1 << i).add(bounds.narrow(0, 1, 1 << i)).div(2.0);
                var magnitude = means.mul(Math.Pow(10, i - 6));
                pieces.Add(magnitude);
                pieces.Add(magnitude.neg());
            }
            pieces.Add(tensor(new[] { 0f, 1f }));
            var (sorted, _) = cat(pieces.ToArray(), 0).sort();
            return sorted.MoveToOuterDisposeScope();
        }
    }
}
