using System.Text;
using System.Text.Json;
using GraLoRA.Training;

namespace GraLoRA.Tests
{
    /// <summary>metrics.jsonl is appended to, never rewritten, and a resumed run leaves each step once, in order.</summary>
    public sealed class MetricsLogTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        string File => tmp.File(MetricsLog.FileName);

        static TrainingProgress Report(int step) =>
            new(step, 10, 0, 1.0 / step, 1e-3, 0.5, 100, TimeSpan.FromSeconds(step), TimeSpan.Zero, 1, step % 3 == 0 ? 2.0 : null);

        void Log(int? resumedAt, params int[] steps)
        {
            using var log = new MetricsLog(tmp.Path, resumedAt);
            foreach (int step in steps) log.Write(Report(step));
        }

        int[] Steps() => System.IO.File.ReadAllLines(File).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32()).ToArray();

        [Fact]
        public void LinesAreAppendedToTheSameFile()
        {
            using var log = new MetricsLog(tmp.Path, null);
            log.Write(Report(1));
            log.Write(Report(2));
            // A handle opened now still reads the file after the next report: it grew in place (a rewrite swaps in a new file).
            using var reader = new FileStream(File, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            log.Write(Report(3));
            using var text = new StreamReader(reader, Encoding.UTF8);
            var lines = text.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3, lines.Length);
            Assert.Equal(3, JsonDocument.Parse(lines[2]).RootElement.GetProperty("step").GetInt32());
            Assert.Equal(2.0, JsonDocument.Parse(lines[2]).RootElement.GetProperty("eval_loss").GetDouble());
        }

        [Fact]
        public void AResumeCutsTheLinesAfterItsStepAndKeepsTheRestByteForByte()
        {
            Log(null, 1, 2, 3, 4, 5, 6);
            var before = System.IO.File.ReadAllLines(File);
            Log(3, 4, 5);
            Assert.Equal(new[] { 1, 2, 3, 4, 5 }, Steps());
            Assert.Equal(before.Take(3), System.IO.File.ReadAllLines(File).Take(3));
        }

        [Fact]
        public void AResumeBeforeTheFirstLoggedStepStartsTheLogAfresh()
        {
            Log(null, 10, 20);
            Log(5, 10);
            Assert.Equal(new[] { 10 }, Steps());
        }

        [Fact]
        public void AnOlderRunInTheSameFolderStaysAndOnlyTheTrailingStepsAreCut()
        {
            Log(null, 1, 2, 3, 4, 5);
            Log(null, 1, 2, 3);                                   // a fresh run appends after the old one
            Log(2, 3);
            Assert.Equal(new[] { 1, 2, 3, 4, 5, 1, 2, 3 }, Steps());
        }

        [Theory]
        [InlineData(null)]
        [InlineData(6)]
        public void ATornLastLineIsCutOff(int? resumedAt)
        {
            Log(null, 1, 2);
            System.IO.File.AppendAllText(File, "{\"step\": 3, \"lo");            // a crash in the middle of a line
            Log(resumedAt, 3);
            Assert.Equal(new[] { 1, 2, 3 }, Steps());
        }
    }
}
