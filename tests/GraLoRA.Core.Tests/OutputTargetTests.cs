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

        // (kind of target, what is there, overwrite) → null: written, nothing to replace; "replace": written over a
        // non-empty target; else the words of the error.
        [Theory]
        [InlineData("folder", State.Missing, false, null)]
        [InlineData("folder", State.EmptyFolder, false, null)]
        [InlineData("folder", State.FolderWithAFile, false, "already exists and is not empty: add -Force")]
        [InlineData("folder", State.FolderWithAFile, true, "replace")]
        [InlineData("folder", State.FileWithText, false, "is a file: give a folder")]
        [InlineData("folder", State.FileWithText, true, "is a file: give a folder")]
        [InlineData("file", State.Missing, false, null)]
        [InlineData("file", State.EmptyFile, false, null)]
        [InlineData("file", State.FileWithText, false, "already exists and is not empty: add -Force")]
        [InlineData("file", State.FileWithText, true, "replace")]
        [InlineData("file", State.EmptyFolder, false, "is a folder: give a file path")]
        [InlineData("file", State.FolderWithAFile, true, "is a folder: give a file path")]
        public void TheRule(string kind, State state, bool overwrite, string? outcome)
        {
            System.Func<string, bool, bool> check = kind == "folder" ? OutputTarget.CheckFolder : OutputTarget.CheckFile;
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
