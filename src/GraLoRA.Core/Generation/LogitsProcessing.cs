using static TorchSharp.torch;

namespace GraLoRA.Generation
{
    /// <summary>The logits processors and warpers of transformers' generate(), on float32 scores [B, vocab].</summary>
    public static class LogitsProcessing
    {
        /// <summary>CTRL's repetition penalty: scores of tokens in <paramref name="previous"/> [B, T] are divided by p when positive, multiplied when negative.</summary>
        public static Tensor RepetitionPenalty(Tensor scores, Tensor previous, double penalty)
        {
            var seen = scores.gather(1, previous);
            var penalised = where(seen < 0, seen * penalty, seen / penalty);
            return scores.scatter(1, previous, penalised);
        }

        /// <summary>Scores below the k-th largest of each row become -inf.</summary>
        public static Tensor TopK(Tensor scores, int k)
        {
            k = (int)System.Math.Min(k, scores.shape[^1]);
            var kth = scores.topk(k).values.narrow(-1, k - 1, 1);                      // [B, 1]
            return scores.masked_fill(scores < kth, double.NegativeInfinity);
        }

        /// <summary>Nucleus filtering: keeps the most likely tokens whose cumulative probability first reaches p (at least one).</summary>
        public static Tensor TopP(Tensor scores, double p)
        {
            var (sorted, indices) = scores.sort(-1, descending: false);
            var cumulative = sorted.softmax(-1).cumsum(-1);
            var remove = cumulative <= 1 - p;
            remove.narrow(-1, remove.shape[^1] - 1, 1).fill_(false);                   // always keep the most likely
            var removeInPlace = remove.scatter(1, indices, remove);
            return scores.masked_fill(removeInPlace, double.NegativeInfinity);
        }
    }
}
