using GraLoRA.Training;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>Metrics against values worked out by hand (and as scikit-learn defines them).</summary>
    public class ClassificationMetricsTests
    {
        [Fact]
        public void BinaryCaseByHand()
        {
            // true:      1 1 1 1 0 0 0 0 0 0
            // predicted: 1 1 1 0 1 0 0 0 0 0   → TP 3, FN 1, FP 1, TN 5
            var m = ClassificationMetrics.Compute(new[] { 1, 1, 1, 1, 0, 0, 0, 0, 0, 0 }, new[] { 1, 1, 1, 0, 1, 0, 0, 0, 0, 0 }, new[] { "ham", "spam" });
            Assert.Equal(0.8, m.Accuracy, 12);
            // F1(spam) = 2·3/(6+1+1) = 0.75; F1(ham) = 2·5/(10+1+1) = 10/12; macro = (0.75 + 0.8333…)/2.
            Assert.Equal((0.75 + 10.0 / 12) / 2, m.MacroF1, 12);
            // MCC = (TP·TN − FP·FN)/√((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (15 − 1)/√(4·4·6·6) = 14/24.
            Assert.Equal(14.0 / 24, m.MatthewsCorrelation, 12);
            Assert.Equal(new[] { new long[] { 5, 1 }, new long[] { 1, 3 } }, m.ConfusionMatrix);
        }

        [Fact]
        public void MultiClassCaseByHand()
        {
            // Confusion [true][pred]: a: [2,1,0], b: [0,1,1], c: [1,0,2]  (8 examples, 5 correct)
            int[] actual = { 0, 0, 0, 1, 1, 2, 2, 2 };
            int[] predicted = { 0, 0, 1, 1, 2, 0, 2, 2 };
            var m = ClassificationMetrics.Compute(actual, predicted, new[] { "a", "b", "c" });
            Assert.Equal(5.0 / 8, m.Accuracy, 12);
            // F1: a = 4/(4+1+1) = 2/3; b = 2/(2+1+1) = 1/2; c = 4/(4+1+1) = 2/3.
            Assert.Equal((2.0 / 3 + 0.5 + 2.0 / 3) / 3, m.MacroF1, 12);
            // R_K: c·s − Σ p_k t_k = 5·8 − (3·3 + 2·2 + 3·3) = 18; s² − Σp² = 64 − 22 = 42; s² − Σt² = 64 − 22 = 42 → 18/42.
            Assert.Equal(18.0 / 42, m.MatthewsCorrelation, 12);
        }

        [Fact]
        public void DegenerateCasesFollowScikitLearn()
        {
            // Everything predicted as one class: MCC undefined → 0; the never-seen class is left out of macro-F1.
            var m = ClassificationMetrics.Compute(new[] { 0, 0, 0 }, new[] { 0, 0, 0 }, new[] { "x", "y", "z" });
            Assert.Equal(1.0, m.Accuracy);
            Assert.Equal(0.0, m.MatthewsCorrelation);
            Assert.Equal(1.0, m.MacroF1);
            var wrong = ClassificationMetrics.Compute(new[] { 0, 1 }, new[] { 1, 0 }, new[] { "x", "y" });
            Assert.Equal(-1.0, wrong.MatthewsCorrelation, 12);
            Assert.Equal(0.0, wrong.MacroF1);
            Assert.Equal("InvalidMetricsInput", Assert.Throws<GraloraException>(() => ClassificationMetrics.Compute(new[] { 0 }, new[] { 3 }, new[] { "x", "y" })).ErrorId);
            Assert.Equal("InvalidMetricsInput", Assert.Throws<GraloraException>(() => ClassificationMetrics.Compute(new[] { 0, 1 }, new[] { 0 }, new[] { "x", "y" })).ErrorId);
        }
    }
}
