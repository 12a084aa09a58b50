using System.Linq;
using GraLoRA.Data;
using GraLoRA.Text;
using Xunit;
using static GraLoRA.Tests.DataTestUtil;

namespace GraLoRA.Tests
{
    public class DataCollatorTests
    {
        const int Pad = 99;

        [Fact]
        public void PadsRightWithMaskAndIgnoredLabels()
        {
            var a = new TrainingExample(new[] { 1, 2, 3 }, new[] { -100, 2, 3 });
            var b = new TrainingExample(new[] { 4 }, new[] { 4 });
            var batch = new DataCollator(Pad).Collate(new[] { a, b });
            Assert.Equal(2, batch.BatchSize);
            Assert.Equal(3, batch.SequenceLength);
            Assert.Equal(new long[] { 2, 3 }, batch.Shape);
            Assert.Equal(new long[] { 1, 2, 3, 4, Pad, Pad }, batch.InputIds);
            Assert.Equal(new long[] { -100, 2, 3, 4, -100, -100 }, batch.Labels);
            Assert.Equal(new long[] { 1, 1, 1, 1, 0, 0 }, batch.AttentionMask);
            Assert.Equal(new long[] { 0, 1, 2, 0, 0, 0 }, batch.PositionIds);
            Assert.Null(batch.SegmentIds);
            Assert.Null(batch.ClassLabels);
            Assert.Equal(4, batch.TokenCount);
            Assert.Equal(3, batch.TargetCount);
            Assert.Equal(new[] { 0, 1 }, batch.ExampleIndices);
        }

        [Fact]
        public void PadsToMultiple()
        {
            var batch = new DataCollator(Pad, padToMultipleOf: 4).Collate(new[] { new TrainingExample(new[] { 1, 2, 3, 4, 5 }, new[] { 1, 2, 3, 4, 5 }) });
            Assert.Equal(8, batch.SequenceLength);
            Assert.Equal(new long[] { 1, 1, 1, 1, 1, 0, 0, 0 }, batch.AttentionMask);
        }

        [Fact]
        public void PackedRowsKeepPositionsAndSegments()
        {
            var packed = SequencePacker.Pack(new[] { new TrainingExample(new[] { 1, 2 }, new[] { 1, 2 }), new TrainingExample(new[] { 3 }, new[] { 3 }) }, 4);
            var plain = new TrainingExample(new[] { 7, 8, 9, 10 }, new[] { 7, 8, 9, 10 });
            var batch = new DataCollator(Pad).Collate(new[] { packed.Single(), plain });
            Assert.Equal(4, batch.SequenceLength);
            Assert.Equal(new long[] { 0, 1, 0, 0, 0, 1, 2, 3 }, batch.PositionIds);
            Assert.Equal(new long[] { 1, 1, 2, 0, 1, 1, 1, 1 }, batch.SegmentIds);
            Assert.Equal(new long[] { -100, 2, -100, -100, 7, 8, 9, 10 }, batch.Labels);
            Assert.Equal(new long[] { 1, 1, 1, 0, 1, 1, 1, 1 }, batch.AttentionMask);
        }

        [Fact]
        public void ClassificationBatchCarriesClassLabels()
        {
            var batch = new DataCollator(0).Collate(new[]
            {
                new TrainingExample(new[] { 5, 6 }, Ignored(2), classLabel: 2),
                new TrainingExample(new[] { 7 }, Ignored(1), classLabel: 0),
            }, new[] { 10, 4 });
            Assert.Equal(new long[] { 2, 0 }, batch.ClassLabels);
            Assert.Equal(new[] { 10, 4 }, batch.ExampleIndices);
        }

        [Fact]
        public void PadIdFallsBackToEosThenZero()
        {
            using var dir = new TempDirectory();
            ByteLevelTokenizerFactory.Write(dir.File("pad"), new ByteLevelTokenizerOptions());
            ByteLevelTokenizerFactory.Write(dir.File("eos"), new ByteLevelTokenizerOptions { PadToken = null });
            ByteLevelTokenizerFactory.Write(dir.File("none"), new ByteLevelTokenizerOptions { PadToken = null, EosToken = null });
            using var withPad = HfTokenizer.Load(dir.File("pad"));
            using var withEos = HfTokenizer.Load(dir.File("eos"));
            using var neither = HfTokenizer.Load(dir.File("none"));
            Assert.Equal(ByteTokenizerFixture.Pad, DataCollator.PadIdOf(withPad));
            Assert.Equal(ByteTokenizerFixture.Eos, DataCollator.PadIdOf(withEos));
            Assert.Equal(0, DataCollator.PadIdOf(neither));
        }

        [Fact]
        public void ToTensorsHasTheShapesAndValues()
        {
            var batch = new DataCollator(Pad).Collate(new[] { new TrainingExample(new[] { 1, 2 }, new[] { -100, 2 }), new TrainingExample(new[] { 3 }, new[] { 3 }) });
            using var t = batch.ToTensors();
            Assert.Equal(new long[] { 2, 2 }, t.InputIds.shape);
            Assert.Equal(TorchSharp.torch.int64, t.InputIds.dtype);
            Assert.Equal(batch.InputIds, t.InputIds.data<long>().ToArray());
            Assert.Equal(batch.Labels, t.Labels.data<long>().ToArray());
            Assert.Equal(batch.AttentionMask, t.AttentionMask.data<long>().ToArray());
            Assert.Equal(batch.PositionIds, t.PositionIds.data<long>().ToArray());
            Assert.Null(t.SegmentIds);
        }
    }
}
