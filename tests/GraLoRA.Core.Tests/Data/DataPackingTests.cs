using System.Collections.Generic;
using System.Linq;
using GraLoRA.Data;
using Xunit;
using static GraLoRA.Tests.DataTestUtil;

namespace GraLoRA.Tests
{
    public class DataPackingTests
    {
        /// <summary>An example whose ids are start, start+1, …; labels −100 on the first <paramref name="prompt"/> tokens.</summary>
        static TrainingExample Example(int start, int length, int prompt = 0)
        {
            int[] ids = Enumerable.Range(start, length).ToArray();
            int[] labels = ids.Select((id, i) => i < prompt ? TrainingExample.IgnoreIndex : id).ToArray();
            return new TrainingExample(ids, labels);
        }

        [Fact]
        public void PacksInOrderWithRestartingPositionsSegmentsAndBoundaryLabels()
        {
            var examples = new[] { Example(10, 3), Example(20, 4, prompt: 2), Example(30, 5), Example(40, 2), Example(50, 8) };
            var packed = SequencePacker.Pack(examples, 8);

            // 3 + 4 fit in 8; 5 does not fit after them; 5 + 2 fit; 8 alone.
            Assert.Equal(3, packed.Count);
            var first = packed[0];
            Assert.True(first.IsPacked);
            Assert.Equal(new[] { 10, 11, 12, 20, 21, 22, 23 }, first.InputIds);
            Assert.Equal(new[] { 0, 1, 2, 0, 1, 2, 3 }, first.PositionIds);
            Assert.Equal(new[] { 1, 1, 1, 2, 2, 2, 2 }, first.SegmentIds);
            // Each sample's first label is −100 (sample 2's first two were already prompt).
            Assert.Equal(new[] { -100, 11, 12, -100, -100, 22, 23 }, first.Labels);

            Assert.Equal(new[] { 30, 31, 32, 33, 34, 40, 41 }, packed[1].InputIds);
            Assert.Equal(new[] { 0, 1, 2, 3, 4, 0, 1 }, packed[1].PositionIds);
            Assert.Equal(new[] { 1, 1, 1, 1, 1, 2, 2 }, packed[1].SegmentIds);
            Assert.Equal(new[] { -100, 31, 32, 33, 34, -100, 41 }, packed[1].Labels);

            Assert.Equal(Enumerable.Range(50, 8), packed[2].InputIds);
            Assert.Equal(Enumerable.Range(0, 8), packed[2].PositionIds!);
            Assert.All(packed[2].SegmentIds!, s => Assert.Equal(1, s));
        }

        [Fact]
        public void EveryTokenIsPackedExactlyOnceAndNoSequenceExceedsTheLimit()
        {
            var random = new System.Random(7);
            var examples = Enumerable.Range(0, 100).Select(i => Example(i * 1000, random.Next(1, 33))).ToList();
            var packed = SequencePacker.Pack(examples, 32);
            Assert.All(packed, p => Assert.InRange(p.Length, 1, 32));
            Assert.Equal(examples.SelectMany(e => e.InputIds), packed.SelectMany(p => p.InputIds));
            Assert.Equal(examples.Count, packed.Sum(p => p.SegmentIds!.Max()));
            // Fewer sequences than examples: short ones share.
            Assert.True(packed.Count < examples.Count);
        }

        [Fact]
        public void RejectsTooLongAndClassificationExamples()
        {
            Assert.Equal("InvalidDataOptions", Fails(() => SequencePacker.Pack(new[] { Example(0, 9) }, 8)).ErrorId);
            var classified = new TrainingExample(new[] { 1, 2 }, Ignored(2), classLabel: 0);
            Assert.Contains("cannot be packed", Fails(() => SequencePacker.Pack(new[] { classified }, 8)).Message);
        }
    }
}
