using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace GraLoRA.Distributed
{
    /// <summary>Which launcher started this process, as its environment variables tell.</summary>
    public enum Launcher
    {
        /// <summary>No launcher: a single process.</summary>
        None,
        /// <summary>Open MPI's mpirun/mpiexec (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK).</summary>
        OpenMpi,
        /// <summary>Slurm's srun (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID): MPI initialises through Slurm's PMIx.</summary>
        Slurm,
        /// <summary>An MPICH-family mpiexec (Hydra: PMI_RANK, PMI_SIZE), as MPICH and Intel MPI set it.</summary>
        Mpich,
        /// <summary>torchrun and what copies its contract (Azure ML's PyTorch distribution, Kubeflow's PyTorchJob): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.</summary>
        TorchRun,
    }

    /// <summary>
    /// This process's place in a data-parallel job: its rank among <see cref="WorldSize"/> processes, its rank on this
    /// machine (which GPU it takes) and, for torchrun-style launches, the rendezvous address.
    /// </summary>
    /// <param name="Launcher">What started the processes.</param>
    /// <param name="Rank">0 … WorldSize − 1; rank 0 writes checkpoints and metrics.</param>
    /// <param name="WorldSize">How many processes train together.</param>
    /// <param name="LocalRank">The rank among the processes on this machine (GPU ranks use cuda:LocalRank).</param>
    /// <param name="LocalWorldSize">How many of the processes run on this machine (null when the launcher does not say).</param>
    /// <param name="MasterAddress">MASTER_ADDR of a torchrun-style launch, else null.</param>
    /// <param name="MasterPort">MASTER_PORT of a torchrun-style launch, else null.</param>
    /// <param name="RunId">A name for this job that every rank sees the same (GRALORA_RUN_ID, else the launcher's: Open MPI's job id, SLURM_JOB_ID.SLURM_STEP_ID, TORCHELASTIC_RUN_ID or MASTER_ADDR:MASTER_PORT), or null.</param>
    public sealed record LaunchInfo(Launcher Launcher, int Rank, int WorldSize, int LocalRank, int? LocalWorldSize = null,
        string? MasterAddress = null, int? MasterPort = null, string? RunId = null)
    {
        /// <summary>The single process no launcher started.</summary>
        public static LaunchInfo Single { get; } = new(Launcher.None, 0, 1, 0, 1);

        /// <summary>True when more than one process trains together.</summary>
        public bool IsDistributed => WorldSize > 1;

        /// <summary>True when the processes can bootstrap through MPI (an MPI launcher started them).</summary>
        public bool HasMpi => Launcher is Launcher.OpenMpi or Launcher.Slurm or Launcher.Mpich;

        /// <summary>The device a GPU rank uses: cuda:LocalRank.</summary>
        public string CudaDevice => "cuda:" + LocalRank.ToString(CultureInfo.InvariantCulture);

        /// <inheritdoc />
        public override string ToString() => Launcher == Launcher.None ? "single process" : $"rank {Rank} of {WorldSize} (local rank {LocalRank}, {Launcher})";
    }

    /// <summary>
    /// Reads the launch environment. Precedence when several sets are present: Open MPI, then Slurm's srun, then an
    /// MPICH-family mpiexec, then torchrun's variables; a launcher's rank and size must both be present and agree
    /// (rank below size), otherwise the error names the variables.
    /// </summary>
    public static class LaunchEnvironment
    {
        /// <summary>The launch of this process, from its environment variables.</summary>
        public static LaunchInfo Current => Detect(EnvironmentVariables());

        /// <summary>The launch described by <paramref name="variables"/> (name → value).</summary>
        public static LaunchInfo Detect(IReadOnlyDictionary<string, string> variables)
        {
            string? Get(string name) => variables.TryGetValue(name, out var v) && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;
            int? Int(string name)
            {
                if (Get(name) is not { } text) return null;
                if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value)) return value;
                throw Invalid($"{name}='{text}' is not a whole number 0 or more", name);
            }
            string? runId = Get("GRALORA_RUN_ID");

            if (Get("OMPI_COMM_WORLD_SIZE") is not null || Get("OMPI_COMM_WORLD_RANK") is not null)
            {
                var (rank, size) = RankAndSize(Int("OMPI_COMM_WORLD_RANK"), Int("OMPI_COMM_WORLD_SIZE"), "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE");
                return new LaunchInfo(Launcher.OpenMpi, rank, size, Int("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0, Int("OMPI_COMM_WORLD_LOCAL_SIZE"),
                    RunId: runId ?? Get("OMPI_MCA_ess_base_jobid") ?? Get("PMIX_NAMESPACE"));
            }
            // Inside an srun step (a batch script itself has SLURM_PROCID but no SLURM_STEP_NUM_TASKS: it is not a task).
            if (Get("SLURM_STEP_NUM_TASKS") is not null)
            {
                var (rank, size) = RankAndSize(Int("SLURM_PROCID"), Int("SLURM_STEP_NUM_TASKS"), "SLURM_PROCID", "SLURM_STEP_NUM_TASKS");
                int? local = Get("SLURM_STEP_TASKS_PER_NODE") is { } perNode && int.TryParse(perNode.Split('(', ',')[0], NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : null;
                string? slurmRun = Get("SLURM_JOB_ID") is { } job ? job + "." + (Get("SLURM_STEP_ID") ?? "0") : null;
                return new LaunchInfo(Launcher.Slurm, rank, size, Int("SLURM_LOCALID") ?? 0, local, RunId: runId ?? slurmRun);
            }
            if (Get("PMI_SIZE") is not null || Get("PMI_RANK") is not null)
            {
                var (rank, size) = RankAndSize(Int("PMI_RANK"), Int("PMI_SIZE"), "PMI_RANK", "PMI_SIZE");
                return new LaunchInfo(Launcher.Mpich, rank, size, Int("MPI_LOCALRANKID") ?? 0, Int("MPI_LOCALNRANKS"), RunId: runId);
            }
            if (Get("WORLD_SIZE") is not null || Get("RANK") is not null)
            {
                var (rank, size) = RankAndSize(Int("RANK"), Int("WORLD_SIZE"), "RANK", "WORLD_SIZE");
                // Kubeflow's PyTorchJob runs one process per pod and sets no LOCAL_RANK: that process is local rank 0.
                int local = Int("LOCAL_RANK") ?? 0;
                int? localSize = Int("LOCAL_WORLD_SIZE");
                if (localSize is { } ls && local >= ls) throw Invalid($"LOCAL_RANK={local} is not below LOCAL_WORLD_SIZE={ls}", "LOCAL_RANK");
                string? address = Get("MASTER_ADDR");
                int? port = Int("MASTER_PORT");
                if (size > 1 && (address is null || port is null))
                    throw Invalid("a torchrun-style launch of several processes needs MASTER_ADDR and MASTER_PORT (the rendezvous that names the job); set both, as torchrun does", address is null ? "MASTER_ADDR" : "MASTER_PORT");
                return new LaunchInfo(Launcher.TorchRun, rank, size, local, localSize, address, port,
                    runId ?? Get("TORCHELASTIC_RUN_ID") ?? (address is null ? null : $"{address}:{port}"));
            }
            return LaunchInfo.Single;
        }

        static (int Rank, int Size) RankAndSize(int? rank, int? size, string rankName, string sizeName)
        {
            if (size is null) throw Invalid($"{rankName} is set but {sizeName} is not: a launcher sets both", sizeName);
            if (rank is null) throw Invalid($"{sizeName} is set but {rankName} is not: a launcher sets both", rankName);
            if (size < 1) throw Invalid($"{sizeName}={size} must be at least 1", sizeName);
            if (rank >= size) throw Invalid($"{rankName}={rank} is not below {sizeName}={size}", rankName);
            return (rank.Value, size.Value);
        }

        static GraloraException Invalid(string rule, string variable) =>
            new("InvalidLaunchEnvironment", GraloraErrorKind.InvalidArgument, $"The launch environment is inconsistent: {rule}.", variable);

        /// <summary>The collective timeout: GRALORA_DIST_TIMEOUT seconds when set, else <paramref name="fallback"/>.</summary>
        public static TimeSpan Timeout(TimeSpan fallback) => Timeout(EnvironmentVariables(), fallback);

        /// <summary>As <see cref="Timeout(TimeSpan)"/> over <paramref name="variables"/>.</summary>
        public static TimeSpan Timeout(IReadOnlyDictionary<string, string> variables, TimeSpan fallback)
        {
            if (!variables.TryGetValue("GRALORA_DIST_TIMEOUT", out var text) || string.IsNullOrWhiteSpace(text)) return fallback;
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && seconds > 0 && seconds <= 7 * 86400)
                return TimeSpan.FromSeconds(seconds);
            throw Invalid($"GRALORA_DIST_TIMEOUT='{text}' is not a number of seconds between 0 and 604800 (e.g. 600)", "GRALORA_DIST_TIMEOUT");
        }

        /// <summary>GRALORA_STOP_FILE: a file whose appearance asks every rank to stop at the next step (what -Device launches use for Ctrl+C).</summary>
        public static string? StopFile => Environment.GetEnvironmentVariable("GRALORA_STOP_FILE") is { Length: > 0 } path ? Path.GetFullPath(path) : null;

        internal static Dictionary<string, string> EnvironmentVariables()
        {
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
                if (entry.Key is string key && entry.Value is string value) result[key] = value;
            return result;
        }
    }
}
