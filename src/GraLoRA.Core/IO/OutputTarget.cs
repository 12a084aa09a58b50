using System.IO;
using System.Linq;

namespace GraLoRA.IO
{
    /// <summary>
    /// The one rule every writer follows before it writes (cmdlets' -Force, the overwrite argument in C# and F#): a target
    /// that does not exist, or exists and is empty, is written; an existing non-empty one only with overwrite, and then
    /// replaced whole (folders are swapped in, files renamed over, see <see cref="AtomicFile"/>). Without overwrite the
    /// error (<see cref="ExistsErrorId"/>) names the path and -Force. A file where a folder is wanted, or the reverse, is
    /// always an error: replacing one kind by the other is never what was meant.
    /// </summary>
    public static class OutputTarget
    {
        /// <summary>The error id of an existing non-empty target written without overwrite.</summary>
        public const string ExistsErrorId = "OutputExists";

        /// <summary>
        /// Checks the folder a writer is about to create or replace; returns true when a non-empty folder is there (and
        /// <paramref name="overwrite"/> allows replacing it).
        /// </summary>
        public static bool CheckFolder(string folder, bool overwrite)
        {
            string target = Path.GetFullPath(folder);
            if (File.Exists(target))
                throw new GraloraException(ExistsErrorId, GraloraErrorKind.InvalidOperation, $"'{target}' is a file: give a folder to write into.", target);
            bool nonEmpty = Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any();
            if (nonEmpty && !overwrite) throw Exists(target, "folder");
            return nonEmpty;
        }

        /// <summary>
        /// Checks the file a writer is about to create or replace; returns true when a non-empty file is there (and
        /// <paramref name="overwrite"/> allows replacing it).
        /// </summary>
        public static bool CheckFile(string file, bool overwrite)
        {
            string target = Path.GetFullPath(file);
            if (Directory.Exists(target))
                throw new GraloraException(ExistsErrorId, GraloraErrorKind.InvalidOperation, $"'{target}' is a folder: give a file path to write.", target);
            bool nonEmpty = File.Exists(target) && new FileInfo(target).Length > 0;
            if (nonEmpty && !overwrite) throw Exists(target, "file");
            return nonEmpty;
        }

        static GraloraException Exists(string target, string kind) =>
            new(ExistsErrorId, GraloraErrorKind.InvalidOperation,
                $"The {kind} '{target}' already exists and is not empty: add -Force to replace it (overwrite = true from C# or F#), or choose another path.", target);
    }
}
