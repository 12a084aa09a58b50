using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;

namespace GraLoRA.IO
{
    /// <summary>
    /// Writes files and swaps folders so that a crash (SIGKILL, power loss) leaves the old content or the new, never
    /// a part: data goes to a temporary name in the same folder, is flushed to disk (fsync), renamed into place, and
    /// the folder holding the new name is fsynced too, so the rename itself survives a power loss.
    /// </summary>
    public static class AtomicFile
    {
        static readonly AsyncLocal<Func<Stream, Stream>?> streamHook = new();

        /// <summary>
        /// Test hook: wraps the stream every <see cref="Write"/> of the current async flow writes through (tests use it to
        /// simulate a full disk). Flows started by other tests are not affected.
        /// </summary>
        internal static Func<Stream, Stream>? StreamHook
        {
            get => streamHook.Value;
            set => streamHook.Value = value;
        }

        /// <summary>Test hook: told each folder SyncDirectory flushes (full path), so tests can check which writes are made durable.</summary>
        internal static event Action<string>? DirectorySynced;

        /// <summary>Writes through <paramref name="write"/> into a temporary file beside <paramref name="path"/>, fsyncs it, renames it into place and fsyncs the folder.</summary>
        public static void Write(string path, Action<Stream> write)
        {
            string full = Path.GetFullPath(path);
            string dir = Path.GetDirectoryName(full)!;
            if (!Directory.Exists(dir))
                throw new GraloraException("DirectoryNotFound", GraloraErrorKind.NotFound, $"Cannot write '{full}': folder '{dir}' does not exist.", full);
            string temp = Path.Combine(dir, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N") + ".tmp");
            try
            {
                using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
                {
                    var stream = StreamHook?.Invoke(file) ?? file;
                    write(stream);
                    stream.Flush();
                    file.Flush(true);
                }
                File.Move(temp, full, overwrite: true);
                SyncDirectory(dir);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw new GraloraException("WriteFailed", GraloraErrorKind.IOFailure, $"Could not write '{full}': {ex.Message}", full, ex);
            }
            finally
            {
                try { if (File.Exists(temp)) File.Delete(temp); } catch (IOException) { }
            }
        }

        /// <summary>Flushes a file that something else (e.g. libtorch) wrote to disk.</summary>
        public static void SyncFile(string path)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            stream.Flush(true);
        }

        /// <summary>
        /// Builds folder <paramref name="target"/> whole: <paramref name="fill"/> writes into a hidden staging sibling
        /// (".name.guid.partial") that <see cref="ReplaceDirectory"/> then swaps in. An I/O failure becomes
        /// <paramref name="fail"/>(exception); the staging folder never outlives the call.
        /// </summary>
        public static void WriteDirectory(string target, Action<string> fill, Func<Exception, GraloraException> fail)
        {
            string full = Path.GetFullPath(target);
            string staging = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.partial");
            try
            {
                Directory.CreateDirectory(staging);
                fill(staging);
                ReplaceDirectory(staging, full);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw fail(ex);
            }
            finally
            {
                try { if (Directory.Exists(staging)) Directory.Delete(staging, true); } catch (IOException) { }
            }
        }

        /// <summary>
        /// Moves the finished folder <paramref name="staging"/> to <paramref name="target"/> (replacing a folder there: the
        /// old one is moved aside first and deleted only once the new one is in place), fsyncing the staging folder's
        /// entries and the parent folder, so after a crash either the old or the new folder is found under the name.
        /// </summary>
        public static void ReplaceDirectory(string staging, string target)
        {
            string parent = Path.GetDirectoryName(Path.GetFullPath(target))!;
            SyncDirectory(staging);
            string? backup = null;
            if (Directory.Exists(target))
            {
                backup = Path.Combine(parent, "." + Path.GetFileName(target) + "." + Guid.NewGuid().ToString("N") + ".previous");
                Directory.Move(target, backup);
            }
            try { Directory.Move(staging, target); }
            catch
            {
                if (backup is not null) Directory.Move(backup, target);
                throw;
            }
            SyncDirectory(parent);
            if (backup is not null) DeleteDirectory(backup);
        }

        /// <summary>
        /// Deletes a folder so that a crash half-way never leaves a partly deleted folder under its own name: it is first
        /// renamed to a hidden ".deleting" name (fsynced), then removed.
        /// </summary>
        public static void DeleteDirectory(string folder)
        {
            string full = Path.GetFullPath(folder);
            string parent = Path.GetDirectoryName(full)!;
            string name = Path.GetFileName(full);
            string doomed = name.EndsWith(".deleting", StringComparison.Ordinal) ? full
                : Path.Combine(parent, "." + name.TrimStart('.') + "." + Guid.NewGuid().ToString("N") + ".deleting");
            if (doomed != full)
            {
                Directory.Move(full, doomed);
                SyncDirectory(parent);
            }
            Directory.Delete(doomed, true);
        }

        /// <summary>
        /// fsyncs a folder, which makes the names created, renamed or removed in it durable (POSIX; a no-op on Windows,
        /// where NTFS journals renames).
        /// </summary>
        public static void SyncDirectory(string folder)
        {
            DirectorySynced?.Invoke(Path.GetFullPath(folder));
            if (OperatingSystem.IsWindows()) return;
            int fd = Native.Open(folder, 0 /* O_RDONLY */);
            if (fd < 0)
                throw new IOException($"Could not open folder '{folder}' to flush it (errno {Marshal.GetLastPInvokeError()}).");
            try
            {
                // Some file systems cannot fsync folders (EINVAL); nothing more can be done there.
                if (Native.Fsync(fd) != 0 && Marshal.GetLastPInvokeError() is int errno && errno != 22)
                    throw new IOException($"Could not flush folder '{folder}' to disk (errno {errno}).");
            }
            finally
            {
                Native.Close(fd);
            }
        }

        static class Native
        {
            const string Libc = "libc";

            [DllImport(Libc, EntryPoint = "open", SetLastError = true)]
            public static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

            [DllImport(Libc, EntryPoint = "fsync", SetLastError = true)]
            public static extern int Fsync(int fd);

            [DllImport(Libc, EntryPoint = "close", SetLastError = true)]
            public static extern int Close(int fd);
        }
    }
}
