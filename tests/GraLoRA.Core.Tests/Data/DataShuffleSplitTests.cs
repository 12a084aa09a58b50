using System.Collections.Generic;
using System.Linq;
using GraLoRA.Data;
using Xunit;

namespace GraLoRA.Tests
{
    public class DataShuffleSplitTests
    {
        [Fact]
        public void PermutationIsFisherYatesWithSeededRandom()
        {
            // The documented algorithm, spelled out independently.
            var expected = Enumerable.Range(0, 20).ToArray();
            var random = new System.Random(123);
            for (int i = expected.Length - 1; i > 0; i--)
            {
                int j = random.Next(i + 1);
                (expected[i], expected[j]) = (expected[j], expected[i]);
            }
            Assert.Equal(expected, DataShuffle.Permutation(20, 123));
        }

        [Fact]
        public void SameSeedSameOrderOtherSeedOtherOrder()
        {
            var a = DataShuffle.Permutation(50, 1);
            Assert.Equal(a, DataShuffle.Permutation(50, 1));
            Assert.NotEqual(a, DataShuffle.Permutation(50, 2));
            Assert.Equal(Enumerable.Range(0, 50), a.OrderBy(x => x));
            Assert.NotEqual(Enumerable.Range(0, 50), a);
        }

        [Fact]
        public void EpochSeedsDifferAcrossEpochsAndSeeds()
        {
            var seeds = new HashSet<int>();
            for (int seed = 0; seed < 10; seed++)
                for (int epoch = 0; epoch < 10; epoch++)
                    seeds.Add(DataShuffle.EpochSeed(seed, epoch));
            Assert.Equal(100, seeds.Count);
            Assert.Equal(DataShuffle.EpochSeed(5, 3), DataShuffle.EpochSeed(5, 3));
        }

        [Theory]
        [InlineData(100, 0.1, 10)]
        [InlineData(10, 0.25, 3)]   // 2.5 rounds away from zero
        [InlineData(10, 0.01, 1)]   // at least one
        [InlineData(3, 0.9, 2)]     // at most count - 1
        [InlineData(1, 0.5, 0)]     // nothing to split
        [InlineData(50, 0, 0)]
        public void ValidationCount(int count, double fraction, int expected) =>
            Assert.Equal(expected, DatasetSplit.ValidationCount(count, fraction));

        [Fact]
        public void SplitPartitionsTheShuffledItems()
        {
            var items = Enumerable.Range(0, 40).ToList();
            var (train, validation) = DatasetSplit.Split(items, 0.2, 9);
            Assert.Equal(32, train.Count);
            Assert.Equal(8, validation.Count);
            Assert.Equal(items, train.Concat(validation).OrderBy(x => x));
            var order = DataShuffle.Permutation(40, 9);
            Assert.Equal(order.Take(32), train);
            Assert.Equal(order.Skip(32), validation);
            var (train2, _) = DatasetSplit.Split(items, 0.2, 9);
            Assert.Equal(train, train2);
        }

        [Theory]
        [InlineData(-0.1)]
        [InlineData(1.0)]
        [InlineData(double.NaN)]
        public void FractionOutOfRangeFails(double fraction) =>
            Assert.Equal("InvalidDataOptions", Assert.Throws<GraloraException>(() => DatasetSplit.ValidationCount(10, fraction)).ErrorId);
    }
}
