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
    
        // Every codec Parquet.Net writes reads back through the page checks, including pages that compress far beyond any
        // fixed ratio (a constant column): the checks refuse only sizes a codec cannot produce or a chunk cannot hold.
        [Theory]
        [InlineData(CompressionMethod.None)]
        [InlineData(CompressionMethod.Snappy)]
        [InlineData(CompressionMethod.Gzip)]
        [InlineData(CompressionMethod.Brotli)]
        [InlineData(CompressionMethod.LZ4)]
        [InlineData(CompressionMethod.Zstd)]
        [InlineData(CompressionMethod.Lz4Raw)]
        public async Task EveryCodecReadsBackThroughThePageChecks(CompressionMethod codec)
        {
            using var dir = new TempDirectory();
            string path = dir.File("codec.parquet");
            var rows = Enumerable.Range(0, 20_000).Select(i => new FlatRow { Text = i % 1000 == 0 ? "rare " + i : "the same sentence every time", Count = i, Big = 0, Flag = true }).ToList();
            await ParquetSerializer.SerializeAsync(rows, path, new ParquetOptions { CompressionMethod = codec, RowGroupSize = 8_000, DictionaryEncodingThreshold = 0 });

            var records = DatasetReader.Read(path).ToList();
            Assert.Equal(20_000, records.Count);
            Assert.Equal("rare 19000", records[19_000]["Text"]);
            Assert.Equal(19_999L, records[19_999]["Count"]);
            Assert.All(records, r => Assert.Equal(0L, r["Big"]));
        }

        // Footers re-encoded from a ParquetSerializer file with extra fields in column 0's ColumnMetaData (README beside them).
        static string Footer(string name) => Path.Combine(TestEnvironment.RepoRoot, "tests", "GraLoRA.Core.Tests", "Data", "parquet-crafted", name);

        [Fact]
        public void UnknownScalarAndEmptyStructFieldsInTheFooterAreSkipped()
        {
            foreach (var name in new[] { "unknown-scalar-fields.parquet", "unknown-empty-struct.parquet" })
            {
                var records = DatasetReader.Read(Footer(name)).ToList();
                Assert.Equal(new object?[] { "row 0", "row 1", "row 2" }, records.Select(r => r["Text"]).ToArray());
            }
        }

        // Parquet.Net 6.1 skips an unknown struct's field headers but not their values, then misreads or spins; a newer writer
        // can legitimately add such a field, so the error says so and how to convert the file.
        [Fact]
        public void UnknownStructFieldWithContentIsRefusedNamingTheFieldAndTheWayOut()
        {
            var ex = FailsReading(Footer("unknown-struct-with-fields.parquet"));
            Assert.Equal("DatasetUnreadable", ex.ErrorId);
            Assert.Contains("ColumnMetaData field 32 (unknown to Parquet.Net 6.1)", ex.Message);
            Assert.Contains("cannot read past", ex.Message);
            Assert.Contains("to_json", ex.Message);
        }

        // Page headers are checked before Parquet.Net reads them: it allocates what they claim up front.
        [Theory]
        [InlineData("page-claims-more-than-chunk.parquet", "row group 0, column 'Text': a page at offset 4 claims 63 bytes, but its chunk has 30 left")]
        [InlineData("page-expands-beyond-snappy.parquet", "row group 0, column 'Text': a SNAPPY page at offset 4 claims to expand 30 bytes to 5000, more than SNAPPY can")]
        public void PageHeadersClaimingWhatTheChunkOrCodecCannotHoldAreRefused(string name, string problem)
        {
            var ex = FailsReading(Footer(name));
            Assert.Equal("DatasetUnreadable", ex.ErrorId);
            Assert.Contains(problem, ex.Message);
        }

        // The fuzz find: a statistics string in a page header claiming 256 MiB in a 1.9 KB file; refused without allocating it.
        [Fact]
        public void PageHeaderStringClaimingMoreThanTheFileIsRefusedWithoutAllocatingTheClaim()
        {
            string path = Path.Combine(TestEnvironment.RepoRoot, "tests", "GraLoRA.Core.Tests", "Hardening", "fuzz-regressions", "parquet", "page-header-string-claims-256mib.parquet");
            long before = GC.GetAllocatedBytesForCurrentThread();
            var ex = FailsReading(path);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Contains("the page header at offset 4 is malformed: a 268435455-byte string", ex.Message);
            Assert.True(allocated < 16 << 20, $"allocated {allocated} bytes");
        }
}
}
