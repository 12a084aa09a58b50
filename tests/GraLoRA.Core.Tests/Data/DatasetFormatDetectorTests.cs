using System.Collections.Generic;
using GraLoRA.Data;
using Xunit;
using static GraLoRA.Tests.DataTestUtil;

namespace GraLoRA.Tests
{
    public class DatasetFormatDetectorTests
    {
        [Theory]
        [InlineData(DatasetFormat.Chat, "messages")]
        [InlineData(DatasetFormat.Chat, "messages", "text")]
        [InlineData(DatasetFormat.Alpaca, "instruction", "input", "output")]
        [InlineData(DatasetFormat.Alpaca, "instruction", "output")]
        [InlineData(DatasetFormat.PromptCompletion, "prompt", "completion")]
        [InlineData(DatasetFormat.Classification, "text", "label")]
        [InlineData(DatasetFormat.Text, "text")]
        [InlineData(DatasetFormat.Text, "text", "id", "source")]
        public void DetectsFromFieldNames(DatasetFormat expected, params string[] fields) =>
            Assert.Equal(expected, DatasetFormatDetector.TryDetect(fields));

        [Fact]
        public void FieldNamesAreCaseSensitive() => Assert.Null(DatasetFormatDetector.TryDetect(new[] { "Text" }));

        [Fact]
        public void UnknownFieldsFailNamingRecordAndFields()
        {
            var ex = Assert.Throws<GraloraException>(() => DatasetFormatDetector.Detect(Record(("question", "q"), ("answer", "a"))));
            Assert.Equal("UnknownDatasetFormat", ex.ErrorId);
            Assert.StartsWith("'test.jsonl' line 1: cannot tell the dataset format from the fields 'question', 'answer'", ex.Message);
        }
    }
}
