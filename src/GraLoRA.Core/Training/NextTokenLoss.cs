using System.Collections.Generic;
using GraLoRA.Data;
using static TorchSharp.torch;

namespace GraLoRA.Training
{
    /// <summary>
    /// Summed next-token cross-entropy straight from the [B, L, V] logits, in float32 arithmetic, without a float32 copy
    /// of them: the vocabulary softmax runs over chunks of rows (float32 per chunk), and backward recomputes it chunk by
    /// chunk instead of keeping a [B·L, V] log-softmax. The value is nn.functional.cross_entropy(logits[:, :-1].float(),
    /// labels[:, 1:], ignore_index: −100, reduction: sum); the gradient is its gradient, in the logits' dtype.
    /// </summary>
    internal static class NextTokenLoss
    {
        /// <summary>Float32 elements of one chunk's softmax (32 MiB): rows per chunk = this / V.</summary>
        internal const long ChunkElements = 1L << 23;

        /// <summary>
        /// Σ over rows b and positions t &lt; L−1 with labels[b, t+1] ≠ −100 of −log softmax(logits[b, t])[labels[b, t+1]]
        /// (float32 scalar). <paramref name="logits"/> [B, L, V] in any float dtype; <paramref name="labels"/> [B, L] int64;
        /// <paramref name="chunkRows"/> overrides the rows per chunk (tests).
        /// </summary>
        public static Tensor Sum(Tensor logits, Tensor labels, long? chunkRows = null)
        {
            long b = logits.shape[0], l = logits.shape[1], vocab = logits.shape[2];
            // Position t predicts label t+1; the last position predicts nothing. Shifting the labels (not the logits)
            // keeps the logits a view: [B·L, V] with no copy.
            var targets = cat(new[] { labels.narrow(1, 1, l - 1), full(b, 1, TrainingExample.IgnoreIndex, dtype: ScalarType.Int64, device: labels.device) }, 1);
            long rows = chunkRows ?? System.Math.Max(1, ChunkElements / vocab);
            return ChunkedCrossEntropy.apply(logits.reshape(b * l, vocab), targets.reshape(b * l), rows);        // [B·L, V], [B·L]
        }
    }

    /// <summary>Σ cross-entropy of rows [N, V] against targets [N] (−100 ignored), with the softmax done per chunk of rows.</summary>
    internal sealed class ChunkedCrossEntropy : autograd.SingleTensorFunction<ChunkedCrossEntropy>
    {
        public override string Name => nameof(ChunkedCrossEntropy);

        static IEnumerable<(long Start, long Count)> Chunks(long rows, long step)
        {
            for (long start = 0; start < rows; start += step) yield return (start, System.Math.Min(step, rows - start));
        }

        /// <summary>A chunk's targets with ignored ones pointed at class 0 (gather must index something; their terms are dropped).</summary>
        static (Tensor Index, Tensor Valid) Targets(Tensor targets)
        {
            var valid = targets.ne(TrainingExample.IgnoreIndex);                                         // [n]
            // Ignored rows only: any other out-of-range target still fails in gather, as cross_entropy fails.
            return (where(valid, targets, zeros_like(targets)).unsqueeze(1), valid);                    // [n, 1], [n]
        }

        /// <summary>vars: logits [N, V], targets [N] (int64), rows per chunk.</summary>
        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (logits, targets, rows) = ((Tensor)vars[0], (Tensor)vars[1], (long)vars[2]);
            ctx.save_for_backward(new List<Tensor> { logits, targets });
            ctx.save_data("rows", rows);
            var total = zeros(1, dtype: ScalarType.Float32, device: logits.device);
            foreach (var (start, count) in Chunks(logits.shape[0], rows))
            {
                using var scope = NewDisposeScope();
                var (index, valid) = Targets(targets.narrow(0, start, count));
                // log_softmax as cross_entropy computes it (one fused kernel), on this chunk only.
                var picked = logits.narrow(0, start, count).to(ScalarType.Float32).log_softmax(1).gather(1, index).squeeze(1);   // [n]
                total.sub_(picked.masked_fill(valid.logical_not(), 0).sum());
            }
            return total.squeeze(0);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (logits, targets) = (saved[0], saved[1]);
            long rows = (long)ctx.get_data("rows");
            var scale = gradOutput.to(ScalarType.Float32);
            Tensor? grad = null;                                                                        // [N, V], the logits' dtype
            foreach (var (start, count) in Chunks(logits.shape[0], rows))
            {
                using var scope = NewDisposeScope();
                var (index, valid) = Targets(targets.narrow(0, start, count));
                var weight = valid.to(ScalarType.Float32).unsqueeze(1) * scale;                               // [n, 1]
                // d/dz of logsumexp(z) − z[t]: softmax(z) − onehot(t), for the rows that count.
                var g = logits.narrow(0, start, count).to(ScalarType.Float32).softmax(1).mul_(weight);         // [n, V]
                g.scatter_add_(1, index, weight.neg());
                if (count == logits.shape[0] && g.dtype == logits.dtype)
                {
                    grad = g.MoveToOuterDisposeScope();                                                   // one chunk: no copy
                    break;
                }
                grad ??= empty_like(logits).MoveToOuterDisposeScope();
                grad.narrow(0, start, count).copy_(g);
            }
            return new List<Tensor> { grad ?? zeros_like(logits), null!, null! };
        }
    }
}
