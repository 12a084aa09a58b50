using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Text;
using GraLoRA.Distributed;
using GraLoRA.Training;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.PowerShell.Completion;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Writes a data-parallel training job for a launcher: an mpirun script, a Slurm batch script (srun) or a torchrun script, with the script every rank runs.</para>
    /// <para type="description">Writes into -Path: train.ps1 (what every rank runs: it imports the model from its folder, loads the adapter's starting weights from adapter/, and runs Start-GraLoRATraining, which finds its rank from the launcher's variables, trains on its rows of every global batch and all-reduces the gradients; rank 0 writes checkpoints and metrics to -OutputPath and the trained adapter to result/), settings.json (the training settings — from -Config, e.g. New-GraLoRATrainingConfig output, and this command's own setting parameters, which win — plus the model folder, dataset and adapter), and the launcher script: launch.sh for -Launcher Mpirun (Open MPI; CPU ranks all-reduce over MPI, CUDA ranks over NCCL with the id sent by MPI) or TorchRun (GPUs only: torchrun as a plain launcher, the NCCL id passed through a file in GRALORA_SHARED_DIR), or job.sbatch for Slurm (srun --mpi=pmix). -BatchSize is per rank: each step takes -BatchSize × -Ranks examples. The model, the data, the job folder and the output folder must be at the same paths on every machine. A -Path that already holds files is an OutputExists error unless -Force, which replaces it whole — and, being the training setting of that name, also makes the job's training start afresh in -OutputPath when it runs (without it, rank 0 refuses an -OutputPath that holds a run, OutputExists). Outputs the launcher script's file.</para>
    /// </summary>
    /// <example><code>$config = New-GraLoRATrainingConfig -MaxSteps 500 -BatchSize 4 -LearningRate 2e-4 -OutputPath /shared/out
    /// $model | New-GraLoRAJobScript /shared/data/train.jsonl -Path /shared/job -Config $config -Launcher Slurm -Ranks 16 -Nodes 2 -DeviceType cuda</code><para>Writes /shared/job/job.sbatch for 2 machines of 8 GPUs each; submit it with sbatch /shared/job/job.sbatch.</para></example>
    /// <example><code>$model | New-GraLoRAJobScript ./data/train.jsonl -Path ./job -Config $config -Ranks 2
    /// ./job/launch.sh</code><para>Two CPU ranks with Open MPI's mpirun on this machine.</para></example>
    [Cmdlet(VerbsCommon.New, "GraLoRAJobScript", SupportsShouldProcess = true)]
    [OutputType(typeof(FileInfo))]
    public sealed class NewGraLoRAJobScriptCommand : TrainingSettingsCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel) with the adapter to train: every rank loads the model's folder again and starts from the adapter's current weights.</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">The training data file (.jsonl, .json, .csv/.tsv, .parquet), at a path every rank can read.</para></summary>
        [Parameter(Mandatory = true, Position = 0)]
        public string Dataset { get; set; } = "";

        /// <summary><para type="description">The job folder to write (created).</para></summary>
        [Parameter(Mandatory = true)]
        public string Path { get; set; } = "";

        /// <summary><para type="description">A training configuration (New-GraLoRATrainingConfig, or a hashtable from JSON or a .psd1 file); setting parameters given to this command win over it.</para></summary>
        [Parameter]
        public System.Collections.IDictionary? Config { get; set; }

        /// <summary><para type="description">What starts the ranks: Mpirun (Open MPI, default), Slurm (a batch script running srun) or TorchRun (torchrun as a plain launcher; CUDA ranks only).</para></summary>
        [Parameter]
        [ValidateSet("Mpirun", "Slurm", "TorchRun")]
        public string Launcher { get; set; } = "Mpirun";

        /// <summary><para type="description">Ranks in all (default 2): one per GPU for CUDA, any number for CPU.</para></summary>
        [Parameter]
        [ValidateRange(1, 100000)]
        public int Ranks { get; set; } = 2;

        /// <summary><para type="description">Machines (default 1); -Ranks must be a multiple.</para></summary>
        [Parameter]
        [ValidateRange(1, 10000)]
        public int Nodes { get; set; } = 1;

        /// <summary><para type="description">cpu (ranks all-reduce over MPI) or cuda (over NCCL, each rank on cuda:LOCAL_RANK); default: the kind of device the model is on.</para></summary>
        [Parameter]
        [ValidateSet("cpu", "cuda")]
        public string? DeviceType { get; set; }

        /// <summary><para type="description">The adapter to train (default: the model's single active adapter).</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(AdapterNameCompleter))]
        public string? Adapter { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            ApplyConfig(Config);
            string folder = ResolvePath(Path);
            var (adapter, output, _, _) = TrainingJob.Check(Model, ToSettings() with { Adapter = Adapter });   // the adapter rule and every option, as the ranks will apply them
            if (!Bound(nameof(OutputPath)))
                WriteWarning("No -OutputPath in the settings: the job writes no checkpoints or metrics (the trained adapter still lands in result/).");
            bool cuda = (DeviceType ?? (Model.Device.StartsWith("cuda", StringComparison.Ordinal) ? "cuda" : "cpu")) == "cuda";
            var launcher = Launcher switch { "Slurm" => Distributed.Launcher.Slurm, "TorchRun" => Distributed.Launcher.TorchRun, _ => Distributed.Launcher.OpenMpi };
            var (fileName, text) = Launchers.JobScript(launcher, Ranks, Nodes, cuda, JobFolder.WorkerCommand(folder), folder);
            string script = System.IO.Path.Combine(folder, fileName);
            // The -Force rule (a non-empty -Path is replaced whole only with -Force); -Force is also the job's setting:
            // its training starts afresh in -OutputPath (checked by rank 0 when the job runs).
            OutputTarget.CheckFolder(folder, Force);
            if (!ShouldProcess(folder, $"Write a {Ranks}-rank {Launcher} training job")) return;

            var settings = JobSettings(output);
            string modulePath = JobFolder.ModuleManifest(MyInvocation.MyCommand.Module);
            // Staged and swapped in whole; nothing written names the staging folder (the dataset is a path, not records).
            AtomicFile.WriteDirectory(folder, staging =>
            {
                JobFolder.Write(staging, new JobSpec(modulePath, Model, adapter, cuda ? "cuda" : "cpu", ResolvePath(Dataset), null, settings, null));
                string staged = System.IO.Path.Combine(staging, fileName);
                AtomicFile.Write(staged, stream => stream.Write(new UTF8Encoding(false).GetBytes(text)));
                if (!OperatingSystem.IsWindows())
                    File.SetUnixFileMode(staged, File.GetUnixFileMode(staged) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            }, ex => new GraloraException("JobWriteFailed", GraloraErrorKind.IOFailure, $"Could not write the job into '{folder}': {ex.Message}", folder, ex));
            WriteObject(new FileInfo(script));
        });
        #endregion
    }
}
