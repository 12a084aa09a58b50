using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Distributed;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Which launcher started a process, from the variables each launcher documents setting: Open MPI's mpirun
    /// (OMPI_COMM_WORLD_*; checked against a real mpirun's environment on Open MPI 4.1), Slurm's srun (SLURM_PROCID,
    /// SLURM_STEP_NUM_TASKS, SLURM_LOCALID), MPICH's Hydra (PMI_RANK, PMI_SIZE), torchrun (RANK, WORLD_SIZE,
    /// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RUN_ID) and Kubeflow's PyTorchJob (RANK,
    /// WORLD_SIZE, MASTER_ADDR, MASTER_PORT only).
    /// </summary>
    public sealed class LaunchEnvironmentTests
    {
        static Dictionary<string, string> Vars(string text) =>
            text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);

        public static TheoryData<string, Launcher, int, int, int, string?> Launches => new()
        {
            { "", Launcher.None, 0, 1, 0, null },
            { "OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_LOCAL_RANK=1 OMPI_COMM_WORLD_LOCAL_SIZE=2 OMPI_MCA_ess_base_jobid=623640577", Launcher.OpenMpi, 1, 2, 1, "623640577" },
            { "SLURM_PROCID=5 SLURM_STEP_NUM_TASKS=8 SLURM_LOCALID=1 SLURM_STEP_TASKS_PER_NODE=4(x2) SLURM_JOB_ID=77 SLURM_STEP_ID=0", Launcher.Slurm, 5, 8, 1, "77.0" },
            { "PMI_RANK=2 PMI_SIZE=4 MPI_LOCALRANKID=0", Launcher.Mpich, 2, 4, 0, null },
            { "RANK=3 WORLD_SIZE=4 LOCAL_RANK=1 LOCAL_WORLD_SIZE=2 MASTER_ADDR=node0 MASTER_PORT=29500 TORCHELASTIC_RUN_ID=job7", Launcher.TorchRun, 3, 4, 1, "job7" },
            { "RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=1234", Launcher.TorchRun, 0, 2, 0, "10.0.0.1:1234" },
            // Kubeflow's PyTorchJob: one process per pod, no LOCAL_RANK.
            { "RANK=1 WORLD_SIZE=2 MASTER_ADDR=job-master-0 MASTER_PORT=23456", Launcher.TorchRun, 1, 2, 0, "job-master-0:23456" },
            // A batch script (SLURM_PROCID without a step) is not a task: single process.
            { "SLURM_PROCID=0 SLURM_NTASKS=8 SLURM_JOB_ID=77", Launcher.None, 0, 1, 0, null },
            // mpirun's variables win over a stray RANK; GRALORA_RUN_ID names the job for every launcher.
            { "OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 RANK=7 GRALORA_RUN_ID=mine", Launcher.OpenMpi, 0, 2, 0, "mine" },
        };

        [Theory]
        [MemberData(nameof(Launches))]
        public void DetectsTheLauncherRankSizeAndRunId(string variables, Launcher launcher, int rank, int size, int localRank, string? runId)
        {
            var launch = LaunchEnvironment.Detect(Vars(variables));
            Assert.Equal((launcher, rank, size, localRank, runId), (launch.Launcher, launch.Rank, launch.WorldSize, launch.LocalRank, launch.RunId));
            Assert.Equal(size > 1, launch.IsDistributed);
            Assert.Equal(launcher is Launcher.OpenMpi or Launcher.Slurm or Launcher.Mpich, launch.HasMpi);
        }

        [Theory]
        [InlineData("OMPI_COMM_WORLD_RANK=2 OMPI_COMM_WORLD_SIZE=2", "OMPI_COMM_WORLD_RANK=2 is not below OMPI_COMM_WORLD_SIZE=2", "OMPI_COMM_WORLD_RANK")]
        [InlineData("RANK=0", "RANK is set but WORLD_SIZE is not", "WORLD_SIZE")]
        [InlineData("RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 MASTER_PORT=1", "needs MASTER_ADDR and MASTER_PORT", "MASTER_ADDR")]
        [InlineData("RANK=x WORLD_SIZE=2", "RANK='x' is not a whole number", "RANK")]
        [InlineData("PMI_RANK=0 PMI_SIZE=0", "PMI_SIZE=0 must be at least 1", "PMI_SIZE")]
        [InlineData("RANK=1 WORLD_SIZE=4 LOCAL_RANK=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=a MASTER_PORT=1", "LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2", "LOCAL_RANK")]
        public void AnInconsistentEnvironmentNamesTheVariable(string variables, string message, string variable)
        {
            var ex = Assert.Throws<GraloraException>(() => LaunchEnvironment.Detect(Vars(variables)));
            Assert.Equal("InvalidLaunchEnvironment", ex.ErrorId);
            Assert.Contains(message, ex.Message);
            Assert.Equal(variable, ex.Target);
        }

        [Theory]
        [InlineData("", 600.0)]
        [InlineData("GRALORA_DIST_TIMEOUT=2.5", 2.5)]
        public void TheCollectiveTimeoutComesFromGraloraDistTimeout(string variables, double seconds) =>
            Assert.Equal(TimeSpan.FromSeconds(seconds), LaunchEnvironment.Timeout(Vars(variables), TimeSpan.FromMinutes(10)));

        [Theory]
        [InlineData("GRALORA_DIST_TIMEOUT=soon")]
        [InlineData("GRALORA_DIST_TIMEOUT=-1")]
        public void ABadTimeoutIsRefused(string variables)
        {
            var ex = Assert.Throws<GraloraException>(() => LaunchEnvironment.Timeout(Vars(variables), TimeSpan.FromMinutes(10)));
            Assert.Contains("GRALORA_DIST_TIMEOUT=", ex.Message);
        }

        [Fact]
        public void ASingleProcessGetsNoGroup() => Assert.Null(DataParallel.FromLaunch(LaunchInfo.Single, CPU));

        [Fact]
        public void CpuRanksFromATorchrunStyleLaunchAreToldToUseMpi()
        {
            var launch = LaunchEnvironment.Detect(Vars("RANK=1 WORLD_SIZE=2 LOCAL_RANK=1 MASTER_ADDR=a MASTER_PORT=1"));
            var ex = Assert.Throws<GraloraException>(() => DataParallel.FromLaunch(launch, CPU));
            Assert.Equal("CpuRanksNeedMpi", ex.ErrorId);
            Assert.Contains("mpirun or srun", ex.Message);
        }

        [Fact]
        public void AnMpichLaunchIsRefusedByName()
        {
            var ex = Assert.Throws<GraloraException>(() => DataParallel.FromLaunch(LaunchEnvironment.Detect(Vars("PMI_RANK=0 PMI_SIZE=2")), CPU));
            Assert.Equal("MpiNotSupported", ex.ErrorId);
            Assert.Contains("Open MPI", ex.Message);
        }

        [Fact]
        public void MpirunArgumentsAllowMoreRanksThanCoresAndUnboundThreadsAndExportVariables()
        {
            var args = Launchers.MpirunArguments(2, new[] { "dotnet", "x.dll" }, new[] { "GRALORA_STOP_FILE" });
            var expected = new List<string> { "-np", "2", "--oversubscribe", "--bind-to", "none" };
            if (Launchers.RunningAsRoot) expected.Add("--allow-run-as-root");
            expected.AddRange(new[] { "-x", "GRALORA_STOP_FILE", "dotnet", "x.dll" });
            Assert.Equal(expected, args);
            // POSIX sh quoting: plain words bare, others in single quotes with ' written as '\'' (so $ never expands).
            Assert.Equal("a/b.dll 'b c' 'it'\\''s' '$x'", Launchers.ShellLine(new[] { "a/b.dll", "b c", "it's", "$x" }));
        }
    }
}
