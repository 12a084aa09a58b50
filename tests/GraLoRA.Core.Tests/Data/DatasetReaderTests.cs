using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using GraLoRA.Data;
using Xunit;
using static GraLoRA.Tests.DataTestUtil;

namespace GraLoRA.Tests
{
    public class DatasetReaderTests
    {
        [Fact]
        public void JsonlReadsOneObjectPerLineSkippingBlankLinesAndKeepsLineNumbers()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.jsonl",
                "{\"text\": \"a\", \"n\": 3, \"x\": 1.5, \"ok\": true, \"none\": null}\r\n\n   \n{\"text\": \"b\", \"list\": [1, \"two\"], \"obj\": {\"k\": \"v\"}}\n");
            var records = DatasetReader.Read(path).ToList();
            Assert.Equal(2, records.Count);
            Assert.Equal(new long[] { 1, 4 }, records.Select(r => r.Position));
            Assert.All(records, r => Assert.Equal(RecordPositionKind.Line, r.PositionKind));
            Assert.Equal("'train.jsonl' line 4", records[1].Location);
            Assert.Equal(Path.GetFullPath(path), records[0].Source);
            var first = records[0];
            Assert.Equal("a", first["text"]);
            Assert.Equal(3L, first["n"]);
            Assert.Equal(1.5, first["x"]);
            Assert.Equal(true, first["ok"]);
            Assert.True(first.Fields.ContainsKey("none"));
            Assert.Null(first["none"]);
            Assert.False(first.Has("none"));
            var list = Assert.IsAssignableFrom<IReadOnlyList<object?>>(records[1]["list"]);
            Assert.Equal(new object?[] { 1L, "two" }, list);
            var obj = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(records[1]["obj"]);
            Assert.Equal("v", obj["k"]);
        }

        [Fact]
        public void JsonlWithByteOrderMarkAndNoFinalNewline()
        {
            using var dir = new TempDirectory();
            string path = dir.File("bom.jsonl");
            File.WriteAllText(path, "{\"text\": \"é\"}\n{\"text\": \"z\"}", new UTF8Encoding(true));
            var records = DatasetReader.Read(path).ToList();
            Assert.Equal(new object?[] { "é", "z" }, records.Select(r => r["text"]));
        }

        [Fact]
        public void InvalidJsonLineNamesFileAndLine()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.jsonl", "{\"text\": \"a\"}\n\n{\"text\": \"b\"\n");
            var ex = FailsReading(path);
            Assert.Equal("InvalidDatasetRecord", ex.ErrorId);
            Assert.StartsWith("'train.jsonl' line 3: not valid JSON", ex.Message);
            Assert.Equal(GraloraErrorKind.InvalidData, ex.Kind);
        }

        [Fact]
        public void JsonlLineThatIsNotAnObjectNamesTheLine()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.jsonl", "{\"text\": \"a\"}\n[1, 2]\n");
            var ex = FailsReading(path);
            Assert.StartsWith("'train.jsonl' line 2: a JSON array where an object was expected", ex.Message);
        }

        [Theory]
        [InlineData("empty.jsonl", "")]
        [InlineData("blank.jsonl", "\n  \n\n")]
        [InlineData("empty.json", "")]
        [InlineData("empty-array.json", "[]")]
        [InlineData("empty.csv", "")]
        [InlineData("header-only.csv", "text,label\n")]
        [InlineData("empty.parquet", "")]
        public void EmptyFileFailsNamingIt(string name, string content)
        {
            using var dir = new TempDirectory();
            string path = Write(dir, name, content);
            var ex = FailsReading(path);
            Assert.Equal("DatasetEmpty", ex.ErrorId);
            Assert.Contains($"'{name}' is empty", ex.Message);
            Assert.Equal(Path.GetFullPath(path), ex.Target);
        }

        [Fact]
        public void MissingFileFailsAtReadWithItsPath()
        {
            using var dir = new TempDirectory();
            string path = dir.File("nope.jsonl");
            var ex = Fails(() => DatasetReader.Read(path));
            Assert.Equal("DatasetNotFound", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.NotFound, ex.Kind);
            Assert.Contains(path, ex.Message);
        }

        [Fact]
        public void BinaryFileWithTextExtensionIsUnreadable()
        {
            using var dir = new TempDirectory();
            string path = dir.File("train.jsonl");
            File.WriteAllBytes(path, new byte[] { 0x7B, 0xFF, 0xFE, 0x00, 0xC3, 0x28, 0x0A });
            var ex = FailsReading(path);
            Assert.Equal("DatasetUnreadable", ex.ErrorId);
            Assert.Contains("'train.jsonl'", ex.Message);
            Assert.Contains("not UTF-8", ex.Message);
        }

        [Fact]
        public void UnknownExtensionAsksForTheFormatButNamedFormatWorks()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "data.txt", "{\"text\": \"a\"}\n");
            var ex = Fails(() => DatasetReader.Read(path));
            Assert.Equal("UnknownDatasetFileFormat", ex.ErrorId);
            Assert.Contains("'data.txt'", ex.Message);
            Assert.Equal("a", Assert.Single(DatasetReader.Read(path, DatasetFileFormat.Jsonl))["text"]);
        }

        [Theory]
        [InlineData("a.jsonl", DatasetFileFormat.Jsonl)]
        [InlineData("a.NDJSON", DatasetFileFormat.Jsonl)]
        [InlineData("dir/a.json", DatasetFileFormat.Json)]
        [InlineData("a.csv", DatasetFileFormat.Csv)]
        [InlineData("a.tsv", DatasetFileFormat.Csv)]
        [InlineData("a.parquet", DatasetFileFormat.Parquet)]
        public void FormatFromExtension(string path, DatasetFileFormat expected) =>
            Assert.Equal(expected, DatasetReader.FormatFromExtension(path));

        [Fact]
        public void JsonTopLevelArrayUsesZeroBasedIndices()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.json", "[\n {\"text\": \"a\"},\n {\"text\": \"b\"}\n]");
            var records = DatasetReader.Read(path).ToList();
            Assert.Equal(new object?[] { "a", "b" }, records.Select(r => r["text"]));
            Assert.Equal("'train.json' index 1", records[1].Location);
        }

        [Theory]
        [InlineData("data")]
        [InlineData("train")]
        public void JsonObjectWithDataOrTrainArray(string key)
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.json", $"{{\"version\": 1, \"{key}\": [{{\"prompt\": \"p\", \"completion\": \"c\"}}]}}");
            var r = Assert.Single(DatasetReader.Read(path));
            Assert.Equal("c", r["completion"]);
        }

        [Fact]
        public void JsonArrayItemThatIsNotAnObjectNamesItsIndex()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.json", "[{\"text\": \"a\"}, {\"text\": \"b\"}, 3]");
            var ex = FailsReading(path);
            Assert.StartsWith("'train.json' index 2: a JSON number", ex.Message);
        }

        [Fact]
        public void MalformedJsonNamesTheLine()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.json", "[\n{\"text\": \"a\"},\n{\"text\" \"b\"}\n]");
            var ex = FailsReading(path);
            Assert.Equal("InvalidDatasetRecord", ex.ErrorId);
            Assert.StartsWith("'train.json' line 3: not valid JSON", ex.Message);
        }

        [Fact]
        public void JsonWithOtherTopLevelIsUnreadable()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.json", "{\"rows\": []}");
            var ex = FailsReading(path);
            Assert.Equal("DatasetUnreadable", ex.ErrorId);
            Assert.Contains("\"data\" or \"train\"", ex.Message);
        }

        [Fact]
        public void CsvHandlesQuotesEscapedQuotesSeparatorsAndNewlinesInFields()
        {
            using var dir = new TempDirectory();
            string csv =
                "text,label\r\n" +
                "plain,a\r\n" +
                "\"with, comma\",b\r\n" +
                "\"say \"\"hi\"\"\",c\r\n" +
                "\"two\nlines\",d\r\n" +
                "\"crlf\r\ninside\",e\r\n" +
                "\r\n" +
                ",f\r\n" +
                "\"\",g\r\n" +
                "last,\"h\"";
            string path = Write(dir, "train.csv", csv);
            var records = DatasetReader.Read(path).ToList();
            Assert.Equal(new object?[] { "plain", "with, comma", "say \"hi\"", "two\nlines", "crlf\r\ninside", "", "", "last" }, records.Select(r => r["text"]));
            Assert.Equal(new object?[] { "a", "b", "c", "d", "e", "f", "g", "h" }, records.Select(r => r["label"]));
            // Each record is numbered by the line it starts on; quoted line breaks count.
            Assert.Equal(new long[] { 2, 3, 4, 5, 7, 10, 11, 12 }, records.Select(r => r.Position));
        }

        [Fact]
        public void CsvWithByteOrderMarkAndLfLineEnds()
        {
            using var dir = new TempDirectory();
            string path = dir.File("bom.csv");
            File.WriteAllText(path, "instruction,input,output\nadd,1 2,3\n", new UTF8Encoding(true));
            var r = Assert.Single(DatasetReader.Read(path));
            Assert.Equal(new[] { "instruction", "input", "output" }, r.Fields.Keys);
            Assert.Equal("1 2", r["input"]);
        }

        [Fact]
        public void TsvUsesTabs()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.tsv", "text\tlabel\na, b\tx\n");
            var r = Assert.Single(DatasetReader.Read(path));
            Assert.Equal("a, b", r["text"]);
            Assert.Equal("x", r["label"]);
        }

        [Fact]
        public void CsvRowWithWrongFieldCountNamesTheLine()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.csv", "text,label\n\"a\nb\",x\nc,d,e\n");
            var ex = FailsReading(path);
            Assert.StartsWith("'train.csv' line 4: 3 fields where the header has 2", ex.Message);
        }

        [Fact]
        public void CsvUnterminatedQuoteNamesWhereItOpened()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.csv", "text,label\nok,1\n\"never closed,2\nmore,3\n");
            var ex = FailsReading(path);
            Assert.StartsWith("'train.csv' line 3: a quoted field is never closed", ex.Message);
        }

        [Fact]
        public void CsvTextAfterClosingQuoteFails()
        {
            using var dir = new TempDirectory();
            string path = Write(dir, "train.csv", "text,label\n\"a\"b,1\n");
            var ex = FailsReading(path);
            Assert.StartsWith("'train.csv' line 2: text after the closing quote", ex.Message);
        }

        [Fact]
        public void CsvDuplicateOrEmptyHeaderFails()
        {
            using var dir = new TempDirectory();
            Assert.Contains("names column 'text' twice", FailsReading(Write(dir, "dup.csv", "text,text\na,b\n")).Message);
            Assert.StartsWith("'empty-name.csv' line 1: header column 2 has no name", FailsReading(Write(dir, "empty-name.csv", "text,\na,b\n")).Message);
        }

        [Fact]
        public void InMemoryRecordsAreNormalisedAndNumberedFromZero()
        {
            var input = new List<IReadOnlyDictionary<string, object?>?>
            {
                new Dictionary<string, object?> { ["text"] = "a", ["label"] = 3, ["score"] = 0.5f },
                new Dictionary<string, object?> { ["messages"] = new object[] { new System.Collections.Hashtable { ["role"] = "user", ["content"] = "hi" } } },
            };
            var records = DatasetReader.FromRecords(input, "pipeline").ToList();
            Assert.Equal(3L, records[0]["label"]);
            Assert.Equal(0.5, records[0]["score"]);
            var messages = Assert.IsAssignableFrom<IReadOnlyList<object?>>(records[1]["messages"]);
            var m = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(Assert.Single(messages));
            Assert.Equal("hi", m["content"]);
            Assert.Equal("'pipeline' record 1", records[1].Location);
        }

        [Fact]
        public void InMemoryEmptyOrNullRecordFails()
        {
            var empty = Fails(() => DatasetReader.FromRecords(new List<IReadOnlyDictionary<string, object?>?>(), "piped").ToList());
            Assert.Equal("DatasetEmpty", empty.ErrorId);
            Assert.Contains("'piped'", empty.Message);
            var withNull = Fails(() => DatasetReader.FromRecords(new List<IReadOnlyDictionary<string, object?>?> { new Dictionary<string, object?> { ["text"] = "a" }, null }).ToList());
            Assert.StartsWith("'input' record 1: the record is null", withNull.Message);
        }
    }
}
