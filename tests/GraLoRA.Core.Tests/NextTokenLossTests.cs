using System;
using GraLoRA.Data;
using GraLoRA.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// The chunked next-token loss against libtorch's own nn.functional.cross_entropy on the shifted, float32 logits
    /// (what the trainer computed before, and what transformers computes): same value and same gradient.
    /// </summary>
    public class NextTokenLossTests
    {
        /// <summary>Logits [3, 9, 50] and labels with ignored positions (a padded row, a prompt).</summary>
        static (Tensor Logits, Tensor Labels) Batch(ScalarType dtype)
        {
            manual_seed(11);
            var logits = (randn(3, 9, 50) * 4).to(dtype);
            var labels = randint(0, 50, new long[] { 3, 9 });
            labels[0, TensorIndex.Slice(0, 4)] = tensor((long)TrainingExample.IgnoreIndex);   // prompt
            labels[2, TensorIndex.Slice(6, 9)] = tensor((long)TrainingExample.IgnoreIndex);   // right padding
            return (logits, labels);
        }

        static (Tensor Loss, Tensor Grad) Reference(Tensor logits, Tensor labels)
        {
            var x = logits.detach().clone().requires_grad_(true);
            long l = logits.shape[1], v = logits.shape[2];
            var loss = nn.functional.cross_entropy(x.narrow(1, 0, l - 1).reshape(-1, v).to(ScalarType.Float32), labels.narrow(1, 1, l - 1).reshape(-1),
                ignore_index: TrainingExample.IgnoreIndex, reduction: nn.Reduction.Sum);
            (loss * 0.37).backward();
            return (loss.detach(), x.grad!);
        }

        static (Tensor Loss, Tensor Grad) Chunked(Tensor logits, Tensor labels, long? chunkRows)
        {
            var x = logits.detach().clone().requires_grad_(true);
            var loss = NextTokenLoss.Sum(x, labels, chunkRows);
            (loss * 0.37).backward();
            return (loss.detach(), x.grad!);
        }

        [Theory]
        [InlineData(null)]      // one chunk
        [InlineData(4L)]        // 27 rows in chunks of 4 (the last one short)
        [InlineData(1L)]
        public void MatchesCrossEntropyInFloat32(long? chunkRows)
        {
            using var scope = NewDisposeScope();
            var (logits, labels) = Batch(ScalarType.Float32);
            var (expected, expectedGrad) = Reference(logits, labels);
            var (actual, grad) = Chunked(logits, labels, chunkRows);
            Assert.Equal(ScalarType.Float32, actual.dtype);
            Assert.Empty(actual.shape);
            TensorAssert.Close(actual, expected, 1e-6, "loss");
            TensorAssert.Close(grad, expectedGrad, 1e-6, "gradient");
            Assert.True(grad[TensorIndex.Colon, -1].eq(0).all().item<bool>());              // the last position predicts nothing
            using (no_grad())
                TensorAssert.Close(NextTokenLoss.Sum(logits, labels, chunkRows), expected, 1e-6, "loss without grad (evaluation)");
        }

        [Fact]
        public void BFloat16LogitsGiveAFloat32LossAndABFloat16Gradient()
        {
            using var scope = NewDisposeScope();
            var (logits, labels) = Batch(ScalarType.BFloat16);
            var (expected, expectedGrad) = Reference(logits, labels);                        // via a float32 copy
            var (actual, grad) = Chunked(logits, labels, 5);
            Assert.Equal(ScalarType.Float32, actual.dtype);
            Assert.Equal(ScalarType.BFloat16, grad.dtype);
            TensorAssert.Close(actual, expected, 1e-6, "loss");
            TensorAssert.Close(grad, expectedGrad, 1e-2, "gradient (bfloat16 rounding)");
        }

        [Fact]
        public void NothingToPredictGivesZero()
        {
            using var scope = NewDisposeScope();
            var (logits, _) = Batch(ScalarType.Float32);
            var labels = full(3, 9, TrainingExample.IgnoreIndex, dtype: ScalarType.Int64);
            var (loss, grad) = Chunked(logits, labels, 4);
            Assert.Equal(0f, loss.item<float>());
            Assert.True(grad.eq(0).all().item<bool>());
        }

        [Fact]
        public void AnOutOfRangeLabelFailsAsCrossEntropyDoes()
        {
            using var scope = NewDisposeScope();
            var (logits, labels) = Batch(ScalarType.Float32);
            labels[1, 3] = tensor(50L);                                                       // vocabulary is 0..49
            Assert.ThrowsAny<Exception>(() => Reference(logits, labels));
            Assert.ThrowsAny<Exception>(() => NextTokenLoss.Sum(logits, labels, 4));
            labels[1, 3] = tensor(-7L);
            Assert.ThrowsAny<Exception>(() => NextTokenLoss.Sum(logits, labels, 4));
        }
    }
}
