using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA.Data;
using Xunit;
using static GraLoRA.Tests.DataTestUtil;

namespace GraLoRA.Tests
{
    public class TrainingDataTests : IClassFixture<ByteTokenizerFixture>
    {
        readonly ByteTokenizerFixture _fx;
        public TrainingDataTests(ByteTokenizerFixture fx) => _fx = fx;

        static string Example(string name) => Path.Combine(TestEnvironment.RepoRoot, "examples", "data", name);

        [Fact]
        public void QuickstartChatDataLearnsExactlyTheAssistantTurns()
        {
            string path = Example("tiny-chat.jsonl");
            var data = TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromFile(path));
            Assert.Equal(DatasetFormat.Chat, data.Format);
            Assert.Equal(200, data.Train.Count);
            Assert.Empty(data.Validation);
            Assert.Equal(new DataPreparationStats(200, 200, 0, 0, 0), data.TrainStats);
            Assert.True(new FileInfo(path).Length < 100_000);

            var lines = File.ReadAllLines(path);
            int multiTurn = 0;
            for (int i = 0; i < lines.Length; i++)
            {
                using var doc = JsonDocument.Parse(lines[i]);
                var assistant = doc.RootElement.GetProperty("messages").EnumerateArray()
                    .Where(m => m.GetProperty("role").GetString() == "assistant")
                    .Select(m => m.GetProperty("content").GetString() + "<|im_end|>").ToList();
                if (assistant.Count > 1) multiTurn++;
                var learned = data.Train[i].Labels.Where(l => l >= 0);
                Assert.Equal(string.Concat(assistant), _fx.Tokenizer.Decode(learned, skipSpecialTokens: false));
            }
            Assert.Equal(50, multiTurn);
        }

        [Fact]
        public void QuickstartAlpacaData()
        {
            string path = Example("tiny-alpaca.jsonl");
            var data = TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromFile(path), options: new DataOptions { ValidationFraction = 0.1, Seed = 5 });
            Assert.Equal(DatasetFormat.Alpaca, data.Format);
            Assert.Equal(90, data.Train.Count);
            Assert.Equal(10, data.Validation.Count);
            Assert.True(new FileInfo(path).Length < 100_000);
            // Every learned span is an output followed by EOS.
            var outputs = File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("output").GetString() + "<|end_of_text|>").ToHashSet();
            foreach (var e in data.Train.Concat(data.Validation))
                Assert.Contains(_fx.Tokenizer.Decode(e.Labels.Where(l => l >= 0), skipSpecialTokens: false), outputs);
        }

        [Fact]
        public void SplitIsReproducibleFromTheSeed()
        {
            var source = DatasetSource.FromFile(Example("tiny-alpaca.jsonl"));
            var a = TrainingData.Prepare(_fx.Tokenizer, source, options: new DataOptions { ValidationFraction = 0.2, Seed = 1 });
            var b = TrainingData.Prepare(_fx.Tokenizer, source, options: new DataOptions { ValidationFraction = 0.2, Seed = 1 });
            var c = TrainingData.Prepare(_fx.Tokenizer, source, options: new DataOptions { ValidationFraction = 0.2, Seed = 2 });
            Assert.Equal(a.Validation.Select(e => e.InputIds), b.Validation.Select(e => e.InputIds));
            Assert.NotEqual(a.Validation.Select(e => e.InputIds), c.Validation.Select(e => e.InputIds));
            Assert.Equal(20, a.ValidationStats.Records);
        }

        [Fact]
        public void MissingFieldInAFileNamesFileAndLine()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.jsonl",
                "{\"instruction\": \"a\", \"output\": \"b\"}\n\n{\"instruction\": \"c\", \"input\": \"d\"}\n");
            var ex = Fails(() => TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromFile(path)));
            Assert.Equal("DatasetFieldMissing", ex.ErrorId);
            Assert.StartsWith("'train.jsonl' line 3: field 'output' is missing (alpaca records need instruction and output", ex.Message);
        }

        [Fact]
        public void ClassificationLabelsComeSortedFromTrainingDataAndValidationLabelsMustBeKnown()
        {
            using var dir = new TempDirectory();
            string train = Write(dir, "train.jsonl", "{\"text\": \"a\", \"label\": 10}\n{\"text\": \"b\", \"label\": 2}\n{\"text\": \"c\", \"label\": 1}\n{\"text\": \"d\", \"label\": 2}\n");
            var data = TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromFile(train));
            Assert.Equal(DatasetFormat.Classification, data.Format);
            // Numeric order, not ordinal ("1", "10", "2").
            Assert.Equal(new[] { "1", "2", "10" }, data.ClassLabels!.Labels);
            Assert.Equal(new int?[] { 2, 1, 0, 1 }, data.Train.Select(e => e.ClassLabel));

            string valid = Write(dir, "valid.csv", "text,label\nok,2\nodd,7\n");
            var ex = Fails(() => TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromFile(train), DatasetSource.FromFile(valid)));
            Assert.Equal("UnknownClassLabel", ex.ErrorId);
            Assert.StartsWith("'valid.csv' line 3: label '7' is not one of the 3 training labels ('1', '2', '10')", ex.Message);
        }

        [Fact]
        public void TextLabelsSortOrdinallyOrAsGiven()
        {
            var records = new[] { ("b", "pos"), ("c", "neg"), ("d", "Neutral") }
                .Select(t => (IReadOnlyDictionary<string, object?>?)new Dictionary<string, object?> { ["text"] = t.Item1, ["label"] = t.Item2 }).ToList();
            var sorted = TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromRecords(records));
            Assert.Equal(new[] { "Neutral", "neg", "pos" }, sorted.ClassLabels!.Labels);
            var given = TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromRecords(records), options: new DataOptions { ClassLabels = new[] { "neg", "Neutral", "pos", "spam" } });
            Assert.Equal(new int?[] { 2, 0, 1 }, given.Train.Select(e => e.ClassLabel));
        }

        [Fact]
        public void ExamplesWhoseResponseIsTruncatedAwayAreDroppedAndCounted()
        {
            var records = new List<IReadOnlyDictionary<string, object?>?>
            {
                new Dictionary<string, object?> { ["prompt"] = "short", ["completion"] = "ok" },
                new Dictionary<string, object?> { ["prompt"] = new string('x', 40), ["completion"] = "lost" },
            };
            var data = TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromRecords(records), options: new DataOptions { MaxLength = 16 });
            Assert.Single(data.Train);
            Assert.Equal(new DataPreparationStats(2, 1, 1, 1, 0), data.TrainStats);
            // Kept when asked.
            var kept = TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromRecords(records), options: new DataOptions { MaxLength = 16, DropExamplesWithoutTargets = false });
            Assert.Equal(2, kept.Train.Count);
            // Nothing left to learn at all is an error.
            var ex = Fails(() => TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromRecords(records.Skip(1).ToList(), "piped"), options: new DataOptions { MaxLength = 16 }));
            Assert.Equal("DatasetEmpty", ex.ErrorId);
            Assert.Contains("'piped'", ex.Message);
        }

        [Fact]
        public void PackingPacksTrainingButNotValidation()
        {
            var source = DatasetSource.FromFile(Example("tiny-chat.jsonl"));
            var plain = TrainingData.Prepare(_fx.Tokenizer, source, options: new DataOptions { ValidationFraction = 0.1 });
            var packed = TrainingData.Prepare(_fx.Tokenizer, source, options: new DataOptions { ValidationFraction = 0.1, Packing = true, MaxLength = 512 });
            Assert.All(packed.Train, e => Assert.True(e.IsPacked && e.Length <= 512));
            Assert.All(packed.Validation, e => Assert.False(e.IsPacked));
            Assert.Equal(plain.Train.Sum(e => e.Length), packed.Train.Sum(e => e.Length));
            Assert.Equal(plain.Train.Count, packed.Train.Sum(e => e.SegmentIds!.Max()));
            Assert.Equal(packed.Train.Count, packed.TrainStats.PackedSequences);
            Assert.True(packed.Train.Count < plain.Train.Count / 3);
            // Packing only moves the first label of each sample to −100.
            Assert.Equal(plain.Train.Sum(e => e.TargetCount), packed.Train.Sum(e => e.TargetCount));

            var batch = packed.CreateTrainLoader(new BatchOptions { BatchSize = 4 }).Epoch(0).First();
            Assert.NotNull(batch.SegmentIds);
            Assert.Equal(ByteTokenizerFixture.Pad, packed.PadTokenId);
        }

        [Fact]
        public void ClassificationCannotBePacked()
        {
            var records = new List<IReadOnlyDictionary<string, object?>?> { new Dictionary<string, object?> { ["text"] = "a", ["label"] = "x" } };
            Assert.Equal("InvalidDataOptions", Fails(() => TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromRecords(records), options: new DataOptions { Packing = true })).ErrorId);
        }

        [Fact]
        public void NamedFormatOverridesDetection()
        {
            var records = new List<IReadOnlyDictionary<string, object?>?> { new Dictionary<string, object?> { ["text"] = "a", ["label"] = "x" } };
            var data = TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromRecords(records), options: new DataOptions { Format = DatasetFormat.Text });
            Assert.Equal(DatasetFormat.Text, data.Format);
            Assert.Null(data.Train[0].ClassLabel);
            Assert.Equal(data.Train[0].InputIds, data.Train[0].Labels);
        }

        [Fact]
        public void ValidationLoaderKeepsOrder()
        {
            var data = TrainingData.Prepare(_fx.Tokenizer, DatasetSource.FromFile(Example("tiny-alpaca.jsonl")), options: new DataOptions { ValidationFraction = 0.1 });
            var loader = data.CreateValidationLoader(new BatchOptions { BatchSize = 3, DropLast = true });
            Assert.Equal(Enumerable.Range(0, 10), loader.BatchIndices(4).SelectMany(b => b));
        }
    }
}
