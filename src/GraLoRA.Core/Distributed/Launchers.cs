using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;

namespace GraLoRA.Distributed
{
    /// <summary>The command lines that start ranks: Open MPI's mpirun, Slurm's srun, torchrun (as a plain launcher).</summary>
    public static class Launchers
    {
        [DllImport("libc.so.6", EntryPoint = "geteuid")]
        static extern uint GetEffectiveUserId();

        /// <summary>True when this process runs as root (Open MPI's mpirun then needs --allow-run-as-root).</summary>
        public static bool RunningAsRoot => OperatingSystem.IsLinux() && GetEffectiveUserId() == 0;

        /// <summary>Open MPI's mpirun: GRALORA_MPIRUN when set, else the first mpirun on PATH, else null.</summary>
        public static string? FindMpirun()
        {
            if (Environment.GetEnvironmentVariable("GRALORA_MPIRUN") is { Length: > 0 } configured) return configured;
            foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                string candidate = Path.Combine(dir, "mpirun");
                if (File.Exists(candidate)) return candidate;
            }
            return null;
        }

        /// <summary>mpirun, or MpirunNotFound saying how to install it.</summary>
        public static string RequireMpirun()
        {
            string? mpirun = FindMpirun();
            if (mpirun is not null && File.Exists(mpirun)) return mpirun;
            throw new GraloraException("MpirunNotFound", GraloraErrorKind.NotAvailable,
                (mpirun is null ? "CPU ranks are started by Open MPI's mpirun, which is not on PATH" : $"GRALORA_MPIRUN names '{mpirun}', which does not exist")
                + ": install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin), or set GRALORA_MPIRUN to its mpirun.", mpirun ?? "mpirun");
        }

        /// <summary>
        /// Before GPU ranks start: every device in <paramref name="cudaIndices"/> exists and CUDA is usable
        /// (CudaNotAvailable, or InvalidDevice naming the visible ones), and libnccl.so.2 loads (NcclNotFound naming
        /// every place tried).
        /// </summary>
        public static void RequireGpuRanks(IEnumerable<int> cudaIndices)
        {
            foreach (int index in cudaIndices) TorchRuntime.ResolveDevice($"cuda:{index}");
            NcclCommunicator.LibraryVersion();
        }

        /// <summary>
        /// mpirun's arguments for <paramref name="ranks"/> ranks of <paramref name="program"/> on this machine (or on
        /// <paramref name="hostfile"/>'s machines): --oversubscribe (more ranks than cores is allowed, and makes idle
        /// ranks yield instead of spin), --bind-to none (each rank's libtorch threads may use any core),
        /// --allow-run-as-root as root, and -x for each variable in <paramref name="export"/> (sent to every node).
        /// </summary>
        public static IReadOnlyList<string> MpirunArguments(int ranks, IEnumerable<string> program, IEnumerable<string>? export = null, string? hostfile = null, bool? allowRoot = null)
        {
            if (ranks < 1) throw new GraloraException("InvalidRankCount", GraloraErrorKind.InvalidArgument, $"{ranks} ranks: use 1 or more.", ranks);
            var args = new List<string> { "-np", ranks.ToString(CultureInfo.InvariantCulture), "--oversubscribe", "--bind-to", "none" };
            if (allowRoot ?? RunningAsRoot) args.Add("--allow-run-as-root");
            if (hostfile is not null) args.AddRange(new[] { "--hostfile", hostfile });
            foreach (string name in export ?? Array.Empty<string>()) args.AddRange(new[] { "-x", name });
            args.AddRange(program);
            return args;
        }

        /// <summary>
        /// A launcher script for a job of <paramref name="ranks"/> ranks over <paramref name="nodes"/> machines that runs
        /// <paramref name="worker"/> (a command, run in <paramref name="folder"/>) once per rank: Open MPI's mpirun
        /// (launch.sh), a Slurm batch script with srun (job.sbatch) or torchrun as a plain process launcher (launch.sh,
        /// GPUs only). Returns the file name and its text. $PWSH, when set, replaces the worker's program.
        /// </summary>
        public static (string FileName, string Text) JobScript(Launcher launcher, int ranks, int nodes, bool cuda, IReadOnlyList<string> worker, string folder)
        {
            if (nodes < 1 || ranks < nodes || ranks % nodes != 0)
                throw new GraloraException("InvalidRankCount", GraloraErrorKind.InvalidArgument,
                    $"{ranks} ranks on {nodes} machines: use at least one rank per machine and the same number on each (ranks a multiple of machines).", ranks);
            int perNode = ranks / nodes;
            string program = ShellQuote(string.Join(" ", worker.TakeWhile(w => w != "-NoProfile")));
            string run = "$PWSH " + ShellLine(worker.SkipWhile(w => w != "-NoProfile"));
            string device = cuda ? $"CUDA (NCCL all-reduce; each rank on cuda:<local rank>)" : "CPU (MPI all-reduce)";
            var lines = new List<string> { "#!/usr/bin/env bash" };
            switch (launcher)
            {
                case Launcher.OpenMpi:
                    lines.Add($"# GraLoRA data-parallel training: {ranks} {device} ranks started by Open MPI's mpirun.");
                    lines.Add("#   ./launch.sh                      on this machine");
                    lines.Add("#   HOSTFILE=hosts ./launch.sh       over the machines listed in hosts (lines \"node1 slots=4\"); this folder, the model,");
                    lines.Add("#                                    the data and the output folder must then be at the same paths on every machine.");
                    break;
                case Launcher.Slurm:
                    lines.Add("#SBATCH --job-name=gralora-train");
                    lines.Add($"#SBATCH --nodes={nodes}");
                    lines.Add($"#SBATCH --ntasks-per-node={perNode}");
                    if (cuda) lines.Add($"#SBATCH --gpus-per-node={perNode}");
                    lines.Add($"# GraLoRA data-parallel training: {ranks} {device} ranks, {perNode} per machine. Submit: sbatch job.sbatch");
                    lines.Add("# Each srun task is one rank; Open MPI starts through Slurm's PMIx (srun --mpi=pmix). This folder, the model, the data");
                    lines.Add("# and the output folder must be on a file system every machine sees.");
                    break;
                case Launcher.TorchRun when cuda:
                    lines.Add($"# GraLoRA data-parallel training: {ranks} {device} ranks, {perNode} per machine, started by torchrun (from the");
                    lines.Add("# PyTorch whose NCCL the ranks use) as a plain launcher. On each machine:");
                    lines.Add($"#   NODE_RANK=<0…{nodes - 1}> MASTER_ADDR=<address of machine 0> ./launch.sh");
                    lines.Add("# NCCL's unique id travels through a file in GRALORA_SHARED_DIR, a folder every machine reads (default: this folder).");
                    break;
                case Launcher.TorchRun:
                    throw new GraloraException("CpuRanksNeedMpi", GraloraErrorKind.InvalidArgument,
                        "CPU ranks all-reduce through MPI, which torchrun does not start: use the Mpirun or Slurm launcher for CPU ranks.", launcher);
                default:
                    throw new GraloraException("InvalidLauncher", GraloraErrorKind.InvalidArgument, $"Launcher {launcher}: use OpenMpi (mpirun), Slurm (srun) or TorchRun.", launcher);
            }
            lines.Add("# PWSH replaces the PowerShell command (default: the one that wrote this script).");
            lines.Add("set -euo pipefail");
            lines.Add(launcher == Launcher.Slurm ? $"cd {ShellQuote(folder)}" : "cd \"$(dirname \"$0\")\"");
            lines.Add($"PWSH=${{PWSH:-{program}}}");
            if (!cuda) lines.Add(launcher == Launcher.Slurm ? "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}" : $"export OMP_NUM_THREADS=${{OMP_NUM_THREADS:-$(( $(nproc) / {perNode} > 0 ? $(nproc) / {perNode} : 1 ))}}");
            switch (launcher)
            {
                case Launcher.OpenMpi:
                    lines.Add("root=(); [[ $(id -u) -ne 0 ]] || root=(--allow-run-as-root)");
                    lines.Add("hosts=(); [[ -z ${HOSTFILE:-} ]] || hosts=(--hostfile \"$HOSTFILE\")");
                    lines.Add("exec mpirun " + ShellLine(MpirunArguments(ranks, Array.Empty<string>(), cuda ? null : new[] { "OMP_NUM_THREADS" }, allowRoot: false))
                              + " \"${root[@]}\" \"${hosts[@]}\" " + run);
                    break;
                case Launcher.Slurm:
                    lines.Add("srun --mpi=pmix " + run);
                    break;
                default:
                    lines.Add("export GRALORA_SHARED_DIR=${GRALORA_SHARED_DIR:-$PWD}");
                    lines.Add($"exec torchrun --nnodes={nodes} --nproc-per-node={perNode} --node-rank=\"${{NODE_RANK:-0}}\" --master-addr=\"${{MASTER_ADDR:-127.0.0.1}}\" --master-port=\"${{MASTER_PORT:-29500}}\" --no-python " + run);
                    break;
            }
            return (launcher == Launcher.Slurm ? "job.sbatch" : "launch.sh", string.Join("\n", lines) + "\n");
        }

        /// <summary>One shell line: each argument quoted for POSIX sh where it needs it.</summary>
        public static string ShellLine(IEnumerable<string> words) => string.Join(" ", words.Select(ShellQuote));

        /// <summary><paramref name="word"/> quoted for POSIX sh ('…' with embedded quotes escaped) unless it is plain.</summary>
        public static string ShellQuote(string word) =>
            word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@%+".Contains(c))
                ? word
                : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }
}
