using System.Collections.Generic;
using System.Linq;
using GraLoRA.Data;
using Xunit;

namespace GraLoRA.Tests
{
    public class BatchLoaderDataTests
    {
        /// <summary>Example i has length lengths[i] and ids all equal to i (so rows can be traced back).</summary>
        static List<TrainingExample> Examples(params int[] lengths) =>
            lengths.Select((n, i) => new TrainingExample(Enumerable.Repeat(i, n).ToArray(), Enumerable.Repeat(i, n).ToArray())).ToList();

        static List<TrainingExample> RandomLengths(int count, int seed)
        {
            var r = new System.Random(seed);
            return Examples(Enumerable.Range(0, count).Select(_ => r.Next(1, 40)).ToArray());
        }

        [Fact]
        public void EpochOrderIsTheDocumentedPermutation()
        {
            var loader = new BatchLoader(RandomLengths(10, 1), 0, new BatchOptions { BatchSize = 4, Seed = 7 });
            var order = DataShuffle.Permutation(10, DataShuffle.EpochSeed(7, 3));
            var batches = loader.BatchIndices(3);
            Assert.Equal(new[] { 4, 4, 2 }, batches.Select(b => b.Length));
            Assert.Equal(order, batches.SelectMany(b => b));
            Assert.Equal(3, loader.BatchesPerEpoch);
        }

        [Fact]
        public void SameSeedAndEpochSameBatchesOtherwiseDifferent()
        {
            var examples = RandomLengths(30, 2);
            var a = new BatchLoader(examples, 0, new BatchOptions { BatchSize = 5, Seed = 1 });
            var b = new BatchLoader(examples, 0, new BatchOptions { BatchSize = 5, Seed = 1 });
            var c = new BatchLoader(examples, 0, new BatchOptions { BatchSize = 5, Seed = 2 });
            Assert.Equal(a.BatchIndices(0), b.BatchIndices(0));
            Assert.NotEqual(a.BatchIndices(0).SelectMany(x => x), a.BatchIndices(1).SelectMany(x => x));
            Assert.NotEqual(a.BatchIndices(0).SelectMany(x => x), c.BatchIndices(0).SelectMany(x => x));
        }

        [Fact]
        public void NoShuffleKeepsOrder()
        {
            var loader = new BatchLoader(RandomLengths(7, 3), 0, new BatchOptions { BatchSize = 3, Shuffle = false });
            Assert.Equal(new[] { new[] { 0, 1, 2 }, new[] { 3, 4, 5 }, new[] { 6 } }, loader.BatchIndices(5));
        }

        [Fact]
        public void DropLastDropsTheIncompleteBatch()
        {
            var loader = new BatchLoader(RandomLengths(7, 3), 0, new BatchOptions { BatchSize = 3, DropLast = true });
            Assert.Equal(2, loader.BatchesPerEpoch);
            var batches = loader.BatchIndices(0);
            Assert.Equal(2, batches.Count);
            Assert.All(batches, b => Assert.Equal(3, b.Length));
        }

        [Theory]
        [InlineData(103, 4, 5, true)]
        [InlineData(103, 4, 5, false)]
        [InlineData(64, 8, 2, true)]
        public void LengthGroupingKeepsEveryExampleExactlyOnce(int count, int batchSize, int multiplier, bool shuffle)
        {
            var examples = RandomLengths(count, 4);
            var loader = new BatchLoader(examples, 0, new BatchOptions { BatchSize = batchSize, GroupByLength = true, GroupSizeMultiplier = multiplier, Shuffle = shuffle, Seed = 3 });
            var batches = loader.BatchIndices(1);
            Assert.Equal(Enumerable.Range(0, count), batches.SelectMany(b => b).OrderBy(i => i));
            Assert.Equal(loader.BatchesPerEpoch, batches.Count);
            Assert.Equal(1, batches.Count(b => b.Length < batchSize) + (count % batchSize == 0 ? 1 : 0));
        }

        [Fact]
        public void LengthGroupingSortsWithinGroupsAndReducesPadding()
        {
            var examples = RandomLengths(200, 5);
            var options = new BatchOptions { BatchSize = 8, GroupSizeMultiplier = 5, Seed = 11 };
            var grouped = new BatchLoader(examples, 0, options with { GroupByLength = true });
            var plain = new BatchLoader(examples, 0, options);
            // Within each group of 40 (the epoch's permutation cut in runs of 40), batches come sorted longest first.
            var order = DataShuffle.Permutation(200, DataShuffle.EpochSeed(11, 0));
            var groupOf = new int[200];
            for (int k = 0; k < 200; k++) groupOf[order[k]] = k / 40;
            foreach (var batch in grouped.BatchIndices(0))
            {
                Assert.Single(batch.Select(i => groupOf[i]).Distinct());
                var lengths = batch.Select(i => examples[i].Length).ToArray();
                Assert.Equal(lengths.OrderByDescending(l => l), lengths);
            }
            long Padding(BatchLoader l) => l.Epoch(0).Sum(b => (long)b.BatchSize * b.SequenceLength - b.TokenCount);
            Assert.True(Padding(grouped) < Padding(plain) / 2, $"{Padding(grouped)} vs {Padding(plain)}");
        }

        [Fact]
        public void EpochBatchesHoldTheExamplesOfTheirIndices()
        {
            var examples = Examples(3, 1, 4, 1, 5);
            var loader = new BatchLoader(examples, 77, new BatchOptions { BatchSize = 2, Seed = 0 });
            foreach (var batch in loader.Epoch(2))
                for (int r = 0; r < batch.BatchSize; r++)
                {
                    int i = batch.ExampleIndices[r];
                    var row = batch.InputIds.Skip(r * batch.SequenceLength).Take(batch.SequenceLength).ToArray();
                    Assert.Equal(Enumerable.Repeat((long)i, examples[i].Length).Concat(Enumerable.Repeat(77L, batch.SequenceLength - examples[i].Length)), row);
                }
        }

        [Fact]
        public void RejectsBadOptions()
        {
            Assert.Equal("InvalidDataOptions", Assert.Throws<GraloraException>(() => new BatchLoader(RandomLengths(3, 1), 0, new BatchOptions { BatchSize = 0 })).ErrorId);
            Assert.Equal("InvalidDataOptions", Assert.Throws<GraloraException>(() => new BatchLoader(new List<TrainingExample>(), 0)).ErrorId);
        }
    }
}
