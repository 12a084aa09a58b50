using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using GraLoRA.IO;
using static TorchSharp.torch;

namespace GraLoRA.Distributed
{
    /// <summary>
    /// How NCCL's unique id (made by rank 0) reaches every rank. Under an MPI launcher (mpirun, srun): an MPI broadcast.
    /// Under a torchrun-style launch (no MPI): a file on a path every rank can read — rank 0 writes it atomically, the
    /// others wait for it. No socket of our own is opened: MASTER_ADDR:MASTER_PORT only names the file.
    /// </summary>
    public static class NcclBootstrap
    {
        const string Header = "gralora-nccl-unique-id v1";

        /// <summary>Rank 0's id, broadcast over MPI.</summary>
        public static NcclUniqueId ViaMpi(ICommunicator mpi, Func<NcclUniqueId> create)
        {
            using var bytes = mpi.Rank == 0 ? tensor(create().ToBytes()) : zeros(NcclUniqueId.Bytes, ScalarType.Byte);
            mpi.Broadcast(bytes, 0, "the NCCL unique id broadcast");
            return NcclUniqueId.FromBytes(bytes.data<byte>().ToArray());
        }

        /// <summary>
        /// The id file of a torchrun-style launch: GRALORA_NCCL_ID_FILE when set; else gralora-nccl-&lt;run id&gt;.id in
        /// GRALORA_SHARED_DIR, or (all ranks on one machine) the temporary folder. Several machines without either is an error.
        /// </summary>
        public static string IdFile(LaunchInfo launch)
        {
            if (Environment.GetEnvironmentVariable("GRALORA_NCCL_ID_FILE") is { Length: > 0 } file) return Path.GetFullPath(file);
            string key = new string((launch.RunId ?? "default").Select(c => char.IsLetterOrDigit(c) || c is '.' or '-' ? c : '_').ToArray());
            string? shared = Environment.GetEnvironmentVariable("GRALORA_SHARED_DIR");
            bool oneMachine = launch.LocalWorldSize is { } local && local == launch.WorldSize;
            if (string.IsNullOrEmpty(shared) && !oneMachine)
                throw new GraloraException("NcclIdFileNeeded", GraloraErrorKind.InvalidArgument,
                    $"This torchrun-style launch spans {(launch.LocalWorldSize is null ? "possibly several machines (LOCAL_WORLD_SIZE is not set)" : "several machines")}, so NCCL's unique id needs a folder every rank can read: "
                    + "set GRALORA_SHARED_DIR to a shared folder (or GRALORA_NCCL_ID_FILE to a file path in one), or launch with mpirun/srun, where MPI carries the id.", "GRALORA_SHARED_DIR");
            return Path.Combine(string.IsNullOrEmpty(shared) ? Path.GetTempPath() : Path.GetFullPath(shared), $"gralora-nccl-{key}.id");
        }

        /// <summary>
        /// Rank 0: makes the id with <paramref name="create"/> and writes <paramref name="path"/> atomically (replacing a
        /// stale one). Other ranks: wait until a file written no earlier than <paramref name="notBefore"/> appears, at most
        /// <paramref name="timeout"/>. Files from before <paramref name="notBefore"/> are ignored as left over from an earlier job.
        /// </summary>
        public static NcclUniqueId ViaFile(string path, int rank, Func<NcclUniqueId> create, DateTime notBefore, TimeSpan timeout)
        {
            if (rank == 0)
            {
                var id = create();
                string folder = Path.GetDirectoryName(path)!;
                Directory.CreateDirectory(folder);
                string text = $"{Header}\n{DateTime.UtcNow.Ticks.ToString(CultureInfo.InvariantCulture)}\n{Convert.ToBase64String(id.ToBytes())}\n";
                AtomicFile.Write(path, stream => stream.Write(Encoding.ASCII.GetBytes(text)));
                return id;
            }
            var clock = Stopwatch.StartNew();
            string? seen = null;
            while (true)
            {
                if (TryRead(path, notBefore.ToUniversalTime(), out var id, out seen)) return id;
                if (clock.Elapsed > timeout)
                    throw new GraloraException("DistributedTimeout", GraloraErrorKind.NotAvailable,
                        $"Rank {rank} waited {timeout.TotalSeconds:0.#} s for rank 0's NCCL unique id in '{path}' ({seen ?? "no such file"}). "
                        + "Is rank 0 running, and is the folder shared by every rank (GRALORA_SHARED_DIR / GRALORA_NCCL_ID_FILE)? GRALORA_DIST_TIMEOUT sets this limit.", path);
                Thread.Sleep(50);
            }
        }

        /// <summary>Removes the id file once every rank has joined (rank 0, after the communicator is up).</summary>
        public static void Remove(string path)
        {
            try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }

        static bool TryRead(string path, DateTime notBefore, out NcclUniqueId id, out string? state)
        {
            id = default;
            string[] lines;
            try
            {
                if (!File.Exists(path)) { state = null; return false; }
                lines = File.ReadAllLines(path);
            }
            catch (IOException ex) { state = ex.Message; return false; }
            if (lines.Length < 3 || lines[0] != Header || !long.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out long ticks))
            {
                state = "the file is not an id file written by GraLoRA";
                return false;
            }
            if (ticks < notBefore.Ticks)
            {
                state = $"only a stale id from {new DateTime(ticks, DateTimeKind.Utc):u}, before this job started";
                return false;
            }
            byte[] bytes;
            try { bytes = Convert.FromBase64String(lines[2]); }
            catch (FormatException) { state = "the id is not valid base64"; return false; }
            if (bytes.Length != NcclUniqueId.Bytes) { state = $"the id has {bytes.Length} bytes, not {NcclUniqueId.Bytes}"; return false; }
            id = NcclUniqueId.FromBytes(bytes);
            state = "read";
            return true;
        }
    }
}
