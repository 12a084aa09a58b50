using System.IO;
using GraLoRA.IO;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>The one rule writers follow before writing (cmdlets' -Force, overwrite in C# and F#), case by case.</summary>
    public class OutputTargetTests
    {
        public enum State { Missing, EmptyFolder, FolderWithAFile, EmptyFile, FileWithText }

        static string Make(TempDirectory dir, State state)
        {
            string path = dir.File("target");
            switch (state)
            {
                case State.EmptyFolder: Directory.CreateDirectory(path); break;
                case State.FolderWithAFile: Directory.CreateDirectory(path); File.WriteAllText(Path.Combine(path, "old.txt"), "old"); break;
                case State.EmptyFile: File.WriteAllText(path, ""); break;
                case State.FileWithText: File.WriteAllText(path, "old"); break;
            }
            return path;
        }

        // (what is there, overwrite) → null: written, nothing to replace; "replace": written over a non-empty target; else the error's words.
        [Theory]
        [InlineData(State.Missing, false, null)]
        [InlineData(State.EmptyFolder, false, null)]
        [InlineData(State.FolderWithAFile, false, "already exists and is not empty: add -Force")]
        [InlineData(State.FolderWithAFile, true, "replace")]
        [InlineData(State.FileWithText, false, "is a file: give a folder")]
        [InlineData(State.FileWithText, true, "is a file: give a folder")]
        public void Folders(State state, bool overwrite, string? outcome) => Check(state, overwrite, outcome, OutputTarget.CheckFolder);

        [Theory]
        [InlineData(State.Missing, false, null)]
        [InlineData(State.EmptyFile, false, null)]
        [InlineData(State.FileWithText, false, "already exists and is not empty: add -Force")]
        [InlineData(State.FileWithText, true, "replace")]
        [InlineData(State.EmptyFolder, false, "is a folder: give a file path")]
        [InlineData(State.FolderWithAFile, true, "is a folder: give a file path")]
        public void Files(State state, bool overwrite, string? outcome) => Check(state, overwrite, outcome, OutputTarget.CheckFile);

        static void Check(State state, bool overwrite, string? outcome, System.Func<string, bool, bool> check)
        {
            using var dir = new TempDirectory();
            string path = Make(dir, state);
            if (outcome is null) Assert.False(check(path, overwrite));
            else if (outcome == "replace") Assert.True(check(path, overwrite));
            else
            {
                var ex = Assert.Throws<GraloraException>(() => check(path, overwrite));
                Assert.Equal(OutputTarget.ExistsErrorId, ex.ErrorId);
                Assert.Equal(path, ex.Target);
                Assert.Contains($"'{path}'", ex.Message);
                Assert.Contains(outcome, ex.Message);
            }
        }
    }
}
