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
        public static string RequireMpirun() => FindMpirun()
            ?? throw new GraloraException("MpirunNotFound", GraloraErrorKind.NotAvailable,
                "CPU ranks are started by Open MPI's mpirun, which is not on PATH: install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin), "
                + "or set GRALORA_MPIRUN to its mpirun.", "mpirun");

        /// <summary>
        /// mpirun's arguments for <paramref name="ranks"/> ranks of <paramref name="program"/> on this machine (or on
        /// <paramref name="hostfile"/>'s machines): --oversubscribe (more ranks than cores is allowed, and makes idle
        /// ranks yield instead of spin), --bind-to none (each rank's libtorch threads may use any core),
        /// --allow-run-as-root as root, and -x for each variable in <paramref name="export"/> (sent to every node).
        /// </summary>
        public static IReadOnlyList<string> MpirunArguments(int ranks, IEnumerable<string> program, IEnumerable<string>? export = null, string? hostfile = null)
        {
            if (ranks < 1) throw new GraloraException("InvalidRankCount", GraloraErrorKind.InvalidArgument, $"{ranks} ranks: use 1 or more.", ranks);
            var args = new List<string> { "-np", ranks.ToString(CultureInfo.InvariantCulture), "--oversubscribe", "--bind-to", "none" };
            if (RunningAsRoot) args.Add("--allow-run-as-root");
            if (hostfile is not null) args.AddRange(new[] { "--hostfile", hostfile });
            foreach (string name in export ?? Array.Empty<string>()) args.AddRange(new[] { "-x", name });
            args.AddRange(program);
            return args;
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
