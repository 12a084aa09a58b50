using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using GraLoRA.Data;
using Parquet.Serialization;
using Xunit;
using static GraLoRA.Tests.DataTestUtil;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Pre-tokenized records (input_ids, optional labels and attention_mask, as Hugging Face datasets and TRL store them),
    /// with the byte-level tokenizer (vocabulary 261: bytes, then BOS 256 … im_end 260). Expected values follow
    /// transformers' conventions, worked by hand: labels default to the ids (DataCollatorForLanguageModeling copies
    /// input_ids), −100 is no loss, mask 0 is padding.
    /// </summary>
    public class TokenizedRecordTests(ByteTokenizerFixture fx) : IClassFixture<ByteTokenizerFixture>
    {
        const int Bos = ByteTokenizerFixture.Bos, Eos = ByteTokenizerFixture.Eos, Pad = ByteTokenizerFixture.Pad;
        static List<object?> L(params object?[] values) => values.ToList();

        TrainingExample Encode(DataRecord record, DataOptions? options = null) => new ExampleEncoder(fx.Tokenizer, DatasetFormat.Tokenized, options).Encode(record);

        [Fact]
        public void IsDetectedByInputIdsBeforeAnyOtherField()
        {
            Assert.Equal(DatasetFormat.Tokenized, DatasetFormatDetector.TryDetect(new[] { "input_ids" }));
            Assert.Equal(DatasetFormat.Tokenized, DatasetFormatDetector.TryDetect(new[] { "text", "input_ids", "attention_mask" }));
            Assert.Equal(DatasetFormat.Tokenized, DatasetFormatDetector.TryDetect(new[] { "messages", "input_ids" }));
        }

        [Fact]
        public void WithoutLabelsEveryTokenIsLearnedAndNothingIsAdded()
        {
            var e = Encode(Record(("input_ids", L(72L, 105L, Eos))));
            Assert.Equal(new[] { 72, 105, Eos }, e.InputIds);
            Assert.Equal(new[] { 72, 105, Eos }, e.Labels);
        }

        [Fact]
        public void LabelsAreUsedAsGivenAndTrainOnPromptLearnsEveryToken()
        {
            var record = Record(("input_ids", L(Bos, 81L, 58L, 65L, Eos)), ("labels", L(-100L, -100L, -100L, 65L, Eos)));
            Assert.Equal(new[] { -100, -100, -100, 65, Eos }, Encode(record).Labels);
            Assert.Equal(new[] { Bos, 81, 58, 65, Eos }, Encode(record, new DataOptions { TrainOnPrompt = true }).Labels);
        }

        [Fact]
        public void PaddingTheMaskMarksIsDroppedAtEitherEnd()
        {
            var right = Encode(Record(("input_ids", L(10L, 11L, 12L, Pad, Pad)), ("attention_mask", L(1L, 1L, 1L, 0L, 0L)), ("labels", L(10L, 11L, 12L, -100L, -100L))));
            Assert.Equal(new[] { 10, 11, 12 }, right.InputIds);
            Assert.Equal(new[] { 10, 11, 12 }, right.Labels);
            var left = Encode(Record(("input_ids", L(Pad, 10L, 11L)), ("attention_mask", L(0L, 1L, 1L))));
            Assert.Equal(new[] { 10, 11 }, left.InputIds);
            Assert.Equal(new[] { 10, 11 }, left.Labels);
        }

        [Fact]
        public void IntegralFloatingPointValuesCountAsIntegersAndMaxLengthCutsAsForEveryFormat()
        {
            var e = Encode(Record(("input_ids", L(1.0, 2.0, 3.0, 4.0))), new DataOptions { MaxLength = 3 });
            Assert.Equal(new[] { 1, 2, 3 }, e.InputIds);
        }

        /// <summary>A record that breaks one rule, and the words its error must carry besides the record's location.</summary>
        public static TheoryData<string, (string, object?)[], string> Broken => new()
        {
            { "empty", new (string, object?)[] { ("input_ids", L()) }, "input_ids is empty" },
            { "not a list", new (string, object?)[] { ("input_ids", "1 2 3") }, "field 'input_ids' must be a list of integers, not text" },
            { "fraction", new (string, object?)[] { ("input_ids", L(1L, 2.5)) }, "input_ids[1] = 2.5 is not an integer" },
            { "text id", new (string, object?)[] { ("input_ids", L(1L, "2")) }, "input_ids[1] = \"2\" is not an integer" },
            { "null id", new (string, object?)[] { ("input_ids", L(1L, null)) }, "input_ids[1] = null is not an integer" },
            { "id too large", new (string, object?)[] { ("input_ids", L(1L, 261L)) }, "input_ids[1] = 261 is not a token id of the model's tokenizer (0 to 260)" },
            { "negative id", new (string, object?)[] { ("input_ids", L(-1L)) }, "input_ids[0] = -1 is not a token id" },
            { "labels shorter", new (string, object?)[] { ("input_ids", L(1L, 2L, 3L)), ("labels", L(1L, 2L)) }, "labels has 2 values and input_ids 3" },
            { "label out of range", new (string, object?)[] { ("input_ids", L(1L, 2L)), ("labels", L(-100L, 300L)) }, "labels[1] = 300 is neither -100 (no loss) nor a token id" },
            { "label -1", new (string, object?)[] { ("input_ids", L(1L, 2L)), ("labels", L(-1L, 2L)) }, "labels[0] = -1 is neither -100" },
            { "labels all -100", new (string, object?)[] { ("input_ids", L(1L, 2L)), ("labels", L(-100L, -100L)) }, "labels are all -100" },
            { "scalar label", new (string, object?)[] { ("input_ids", L(1L, 2L)), ("labels", 1L) }, "labels is a single number (1)" },
            { "mask longer", new (string, object?)[] { ("input_ids", L(1L, 2L)), ("attention_mask", L(1L, 1L, 1L)) }, "attention_mask has 3 values and input_ids 2" },
            { "mask value 2", new (string, object?)[] { ("input_ids", L(1L, 2L)), ("attention_mask", L(1L, 2L)) }, "attention_mask[1] = 2" },
            { "mask all 0", new (string, object?)[] { ("input_ids", L(1L, 2L)), ("attention_mask", L(0L, 0L)) }, "attention_mask is all 0" },
            { "mask hole", new (string, object?)[] { ("input_ids", L(1L, 2L, 3L)), ("attention_mask", L(1L, 0L, 1L)) }, "attention_mask[1] = 0 lies between 1s" },
            { "learned only in padding", new (string, object?)[] { ("input_ids", L(1L, 2L)), ("attention_mask", L(1L, 0L)), ("labels", L(-100L, 2L)) }, "labels are all -100 where the attention mask is 1" },
            { "position ids", new (string, object?)[] { ("input_ids", L(1L)), ("position_ids", L(0L)) }, "field 'position_ids' is not supported" },
            { "token types", new (string, object?)[] { ("input_ids", L(1L)), ("token_type_ids", L(0L)) }, "field 'token_type_ids' is not supported" },
        };

        [Theory]
        [MemberData(nameof(Broken))]
        public void ABrokenRecordNamesItsPlaceAndField(string why, (string, object?)[] fields, string words)
        {
            var ex = Fails(() => Encode(Record(fields)));
            Assert.True(ex.ErrorId == "InvalidDatasetRecord", why);
            Assert.StartsWith("'test.jsonl' line 1: ", ex.Message);
            Assert.Contains(words, ex.Message);
        }

        [Fact]
        public void ARecordWithoutInputIdsInATokenizedDatasetIsAMissingField()
        {
            var ex = Fails(() => Encode(Record(("text", "hello"))));
            Assert.Equal("DatasetFieldMissing", ex.ErrorId);
            Assert.Contains("field 'input_ids' is missing", ex.Message);
        }

        [Fact]
        public void AJsonlFileTrainsTheSameExamplesAsTheTextItWasTokenizedFrom()
        {
            using var dir = new TempDirectory();
            var texts = new[] { "one two", "three", "four five six" };
            string textFile = Write(dir, "text.jsonl", string.Join("\n", texts.Select(t => $"{{\"text\": \"{t}\"}}")));
            var fromText = TrainingData.Prepare(fx.Tokenizer, DatasetSource.FromFile(textFile));
            // What a Hugging Face dataset.map(tokenize) writes with to_json: one record per line, ids as JSON integers.
            string tokenized = Write(dir, "tokenized.jsonl", string.Join("\n", fromText.Train.Select(e =>
                $"{{\"input_ids\": [{string.Join(", ", e.InputIds)}], \"attention_mask\": [{string.Join(", ", e.InputIds.Select(_ => 1))}]}}")));
            var fromIds = TrainingData.Prepare(fx.Tokenizer, DatasetSource.FromFile(tokenized));
            Assert.Equal(DatasetFormat.Tokenized, fromIds.Format);
            Assert.Equal(fromText.Train.Select(e => e.InputIds), fromIds.Train.Select(e => e.InputIds));
            Assert.Equal(fromText.Train.Select(e => e.Labels), fromIds.Train.Select(e => e.Labels));
        }

        public sealed class TokenizedRow
        {
#pragma warning disable IDE1006 // the column names Hugging Face datasets use
            public int[]? input_ids { get; set; }
            public long[]? labels { get; set; }
            public int[]? attention_mask { get; set; }
#pragma warning restore IDE1006
        }

        [Fact]
        public async Task AParquetFileIsReadAndItsErrorsNameTheRow()
        {
            using var dir = new TempDirectory();
            string path = dir.File("train.parquet");
            var rows = new List<TokenizedRow>
            {
                new() { input_ids = new[] { Bos, 65, 66, Pad }, labels = new long[] { -100, 65, 66, -100 }, attention_mask = new[] { 1, 1, 1, 0 } },
                new() { input_ids = new[] { Bos, 67, Eos, Pad }, labels = new long[] { -100, 67, Eos, -100 }, attention_mask = new[] { 1, 1, 1, 0 } },
                new() { input_ids = new[] { Bos, 68, 999, Eos }, labels = new long[] { -100, 68, 999, Eos }, attention_mask = new[] { 1, 1, 1, 1 } },
            };
            await ParquetSerializer.SerializeAsync(rows.Take(2), path);
            var data = TrainingData.Prepare(fx.Tokenizer, DatasetSource.FromFile(path));
            Assert.Equal(new[] { new[] { Bos, 65, 66 }, new[] { Bos, 67, Eos } }, data.Train.Select(e => e.InputIds));
            Assert.Equal(new[] { new[] { -100, 65, 66 }, new[] { -100, 67, Eos } }, data.Train.Select(e => e.Labels));

            File.Delete(path);
            await ParquetSerializer.SerializeAsync(rows, path);
            var ex = Fails(() => TrainingData.Prepare(fx.Tokenizer, DatasetSource.FromFile(path)));
            Assert.Equal("'train.parquet' row 2: input_ids[2] = 999 is not a token id of the model's tokenizer (0 to 260): was the dataset tokenized with another tokenizer?", ex.Message);
        }
    }
}
