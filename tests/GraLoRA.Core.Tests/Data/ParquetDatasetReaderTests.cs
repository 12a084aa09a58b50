using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using System.IO;
using System.Linq;
using GraLoRA.Data;
using Parquet;
using Parquet.Serialization;
using Xunit;
using static GraLoRA.Tests.DataTestUtil;

namespace GraLoRA.Tests
{
    public class ParquetDatasetReaderTests
    {
        public sealed class FlatRow
        {
            public string? Text { get; set; }
            public int Count { get; set; }
            public long Big { get; set; }
            public float Ratio { get; set; }
            public double Score { get; set; }
            public bool Flag { get; set; }
            public string? Maybe { get; set; }
        }

        public sealed class Message
        {
            public string? Role { get; set; }
            public string? Content { get; set; }
        }

        public sealed class ChatRow
        {
            public List<Message>? Messages { get; set; }
            public string? Source { get; set; }
        }

        [Fact]
        public async Task ReadsScalarColumnsAcrossRowGroups()
        {
            using var dir = new TempDirectory();
            string path = dir.File("train.parquet");
            var rows = Enumerable.Range(0, 5).Select(i => new FlatRow
            {
                Text = "row " + i, Count = i, Big = 10_000_000_000L + i, Ratio = i / 4f, Score = i * 1.5, Flag = i % 2 == 0, Maybe = i == 3 ? null : "m" + i,
            }).ToList();
            await ParquetSerializer.SerializeAsync(rows, path, new ParquetOptions { RowGroupSize = 2 });

            var records = DatasetReader.Read(path).ToList();
            Assert.Equal(5, records.Count);
            for (int i = 0; i < 5; i++)
            {
                var r = records[i];
                Assert.Equal(i, r.Position);
                Assert.Equal(RecordPositionKind.Row, r.PositionKind);
                Assert.Equal("row " + i, r["Text"]);
                Assert.Equal((long)i, r["Count"]);
                Assert.Equal(10_000_000_000L + i, r["Big"]);
                Assert.Equal(i / 4.0, r["Ratio"]);
                Assert.Equal(i * 1.5, r["Score"]);
                Assert.Equal(i % 2 == 0, r["Flag"]);
                Assert.Equal(i == 3 ? null : "m" + i, r["Maybe"]);
            }
            Assert.Equal("'train.parquet' row 4", records[4].Location);
        }

        [Fact]
        public async Task ReadsMessagesAsListOfStructs()
        {
            using var dir = new TempDirectory();
            string path = dir.File("chat.parquet");
            var rows = new List<ChatRow>
            {
                new() { Source = "a", Messages = new() { new() { Role = "user", Content = "2 + 2?" }, new() { Role = "assistant", Content = "4" } } },
                new() { Source = "b", Messages = new() { new() { Role = "system", Content = "Be brief." }, new() { Role = "user", Content = "Hi" }, new() { Role = "assistant", Content = "Hello" } } },
            };
            await ParquetSerializer.SerializeAsync(rows, path);

            var records = DatasetReader.Read(path).ToList();
            Assert.Equal(2, records.Count);
            for (int i = 0; i < rows.Count; i++)
            {
                var messages = Assert.IsAssignableFrom<IReadOnlyList<object?>>(records[i]["Messages"]);
                Assert.Equal(rows[i].Messages!.Count, messages.Count);
                for (int m = 0; m < messages.Count; m++)
                {
                    var d = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(messages[m]);
                    Assert.Equal(rows[i].Messages![m].Role, d["Role"]);
                    Assert.Equal(rows[i].Messages![m].Content, d["Content"]);
                }
            }
        }

        [Fact]
        public async Task LowerCaseMessagesColumnIsDetectedAsChat()
        {
            using var dir = new TempDirectory();
            string path = dir.File("chat.parquet");
            var schema = new Parquet.Schema.ParquetSchema(
                new Parquet.Schema.ListField("messages", new Parquet.Schema.StructField("element",
                    new Parquet.Schema.DataField<string>("role"), new Parquet.Schema.DataField<string>("content"))));
            var data = new List<IDictionary<string, object?>>
            {
                new Dictionary<string, object?>
                {
                    ["messages"] = new List<Dictionary<string, object>>
                    {
                        new() { ["role"] = "user", ["content"] = "1 + 1?" },
                        new() { ["role"] = "assistant", ["content"] = "2" },
                    },
                },
            };
            await using (var stream = File.Create(path))
                await ParquetSerializer.SerializeUntypedAsync(data, schema, stream);
            var record = Assert.Single(DatasetReader.Read(path));
            Assert.Equal(DatasetFormat.Chat, DatasetFormatDetector.Detect(record));
            var messages = Assert.IsAssignableFrom<IReadOnlyList<object?>>(record["messages"]);
            Assert.Equal("2", Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(messages[1])["content"]);
        }

        [Fact]
        public void CorruptParquetIsUnreadable()
        {
            using var dir = new TempDirectory();
            string path = dir.File("broken.parquet");
            File.WriteAllBytes(path, Enumerable.Range(0, 300).Select(i => (byte)(i * 7)).ToArray());
            var ex = FailsReading(path);
            Assert.Equal("DatasetUnreadable", ex.ErrorId);
            Assert.Contains("'broken.parquet'", ex.Message);
            Assert.Contains("not a valid Parquet file", ex.Message);
        }

        [Fact]
        public async Task TruncatedParquetIsUnreadable()
        {
            using var dir = new TempDirectory();
            string good = dir.File("good.parquet"), cut = dir.File("cut.parquet");
            await ParquetSerializer.SerializeAsync(new[] { new FlatRow { Text = "a" }, new FlatRow { Text = "b" } }, good);
            byte[] bytes = File.ReadAllBytes(good);
            File.WriteAllBytes(cut, bytes.AsSpan(0, bytes.Length / 2).ToArray());
            var ex = FailsReading(cut);
            Assert.Equal("DatasetUnreadable", ex.ErrorId);
            Assert.Contains("'cut.parquet'", ex.Message);
        }
    }
}
