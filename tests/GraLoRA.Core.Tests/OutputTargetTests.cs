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

        // What is there and overwrite → for a folder target and for a file target: null: written, nothing to replace;
        // "replace": written over a non-empty target; else the words of the error.
        [Theory]
        [InlineData(State.Missing, false, null, null)]
        [InlineData(State.EmptyFolder, false, null, "is a folder: give a file path")]
        [InlineData(State.FolderWithAFile, false, "already exists and is not empty: add -Force", "is a folder: give a file path")]
        [InlineData(State.FolderWithAFile, true, "replace", "is a folder: give a file path")]
        [InlineData(State.EmptyFile, false, "is a file: give a folder", null)]
        [InlineData(State.FileWithText, false, "is a file: give a folder", "already exists and is not empty: add -Force")]
        [InlineData(State.FileWithText, true, "is a file: give a folder", "replace")]
        public void TheRule(State state, bool overwrite, string? asFolder, string? asFile)
        {
            Check(state, overwrite, asFolder, OutputTarget.CheckFolder);
            Check(state, overwrite, asFile, OutputTarget.CheckFile);
        }

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
