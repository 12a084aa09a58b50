using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading;
using GraLoRA.Distributed;
using GraLoRA.IO;
using GraLoRA.PowerShell.Completion;
using GraLoRA.Training;

namespace GraLoRA.PowerShell.Commands
{
    // Data-parallel training: joining a launcher's group (mpirun, srun, torchrun-style) as one rank, and -Device, which
    // starts one rank per device itself and shows the job as one progress bar and one result.
    public sealed partial class StartGraLoRATrainingCommand
    {
        /// <summary><para type="description">Train data-parallel on these devices, one rank per device, started by this command as separate processes: cpu,cpu,… (MPI ranks through Open MPI's mpirun, each with an equal share of the cores) or cuda:0,cuda:1,… (NCCL ranks, one per GPU). Each rank loads the model from its folder, trains on its -BatchSize rows of every global batch (-BatchSize × ranks) and all-reduces the gradients; rank 0 writes checkpoints and metrics. One progress bar and one result come back, and the trained adapter is loaded into the -Model of this session. Ctrl+C stops every rank at the same step and saves a checkpoint. Under a launcher (mpirun, srun, torchrun) leave -Device out: each rank joins the job by itself.</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(DeviceCompleter))]
        public string[]? Device { get; set; }

        DataParallel? _world;

        static GraloraException Invalid(string name, string rule) =>
            new("InvalidTrainingOption", GraloraErrorKind.InvalidArgument, $"-{name}: {rule}.", name);
        string? _eventsFile;

        /// <summary>
        /// When a launcher started this process as one of several ranks: joins their group (MPI or NCCL by the model's
        /// device), says so once (rank 0), and silences the other ranks' progress, status lines and warnings.
        /// </summary>
        DataParallel? JoinLaunch()
        {
            var launch = LaunchEnvironment.Current;
            if (!launch.IsDistributed) return null;
            _world = DataParallel.FromLaunch(launch, Model)!;
            if (_world.IsMain)
            {
                _eventsFile = Environment.GetEnvironmentVariable("GRALORA_EVENTS_FILE") is { Length: > 0 } events ? events : null;
                WriteStatus(string.Format(CultureInfo.InvariantCulture, "Data-parallel: {0} ranks ({1}, {2}), batch {3} per rank, {4} per step; rank 0 writes the outputs",
                    _world.WorldSize, launch.Launcher, _world.Communicator!.Engine, BatchSize, BatchSize * _world.WorldSize));
            }
            else SuppressStatus = true;
            return _world;
        }

        IProgress<TrainingProgress> Observed(IProgress<TrainingProgress> reporter) =>
            SuppressStatus ? new Progress(_ => { }) : _eventsFile is null ? reporter : new Progress(p =>
            {
                _reporting = true;                                    // its step line travels as the progress event
                try { reporter.Report(p); }
                finally { _reporting = false; }
                Emit("progress", p);
            });

        bool _reporting;

        void ReportWarning(string warning)
        {
            if (SuppressStatus) return;
            WriteWarning(warning);
            Emit("warning", warning);
        }

        /// <inheritdoc />
        protected override void OnStatus(string message)
        {
            if (!_reporting) Emit("status", message);
        }

        void EmitResult(TrainingRun run) => Emit("result", run);

        // NaN and infinite losses (skipped steps) travel as "NaN", "Infinity".
        static readonly JsonSerializerOptions EventJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

        void Emit(string type, object value)
        {
            if (_eventsFile is not null) EventReader.Append(_eventsFile, type, JsonSerializer.SerializeToNode(value, EventJson));
        }

        sealed class Progress : IProgress<TrainingProgress>
        {
            readonly Action<TrainingProgress> _report;
            public Progress(Action<TrainingProgress> report) => _report = report;
            public void Report(TrainingProgress value) => _report(value);
        }

        /// <summary>
        /// -Device: writes the job (JobFolder), starts one rank per device (WorkerGroup), turns rank 0's events into this
        /// command's progress, status lines and warnings, and at the end loads the trained adapter into -Model.
        /// </summary>
        void RunOnDevices(string adapter, string? output, string? resumeFrom)
        {
            var launch = LaunchEnvironment.Current;
            if (launch.IsDistributed)
                throw Invalid(nameof(Device), $"this process is already {launch} of a launched job, which started the ranks: leave -Device out");
            var plan = DevicePlan.Parse(Device!);
            // Before anything is written or started: the launcher (CPU), or every GPU and libnccl (CUDA).
            // (Core's checks: a TorchSharp type here would fail to load in the module's default load context.)
            if (plan.Type == "cpu") Launchers.RequireMpirun();
            else Launchers.RequireGpuRanks(plan.CudaIndices);
            if (Model.Device.StartsWith("cuda", StringComparison.Ordinal))
                WriteWarning($"This session holds the model on {Model.Device} while each rank loads its own copy: load it on the CPU here (Import-BaseModel without -Device) to leave the GPU memory to the ranks.");
            var settings = JobSettings(output);
            string modulePath = JobFolder.ModuleManifest(MyInvocation.MyCommand.Module);
            string folder = Path.Combine(Path.GetTempPath(), "gralora-job-" + Guid.NewGuid().ToString("N")[..12]);
            bool records = ParameterSetName == RecordsSet;
            JobFolder.Write(folder, new JobSpec(modulePath, Model, adapter, plan.Type, records ? null : ResolvePath(Dataset),
                records ? InputObject : null, settings, resumeFrom));
            WriteStatus($"Starting {plan.Ranks} ranks on {string.Join(", ", Device!)} ({(plan.Type == "cpu" ? "MPI through mpirun" : "NCCL")}); job folder {folder}");

            _cancel = new CancellationTokenSource();
            var reporter = new ProgressReporter(this, adapter, _cancel.Token);
            TrainingRun? result = null;
            bool succeeded = false;
            using var group = WorkerGroup.Start(folder, plan);
            try
            {
                var events = new EventReader(group.EventsFile);
                DateTime? stopAsked = null, failedAt = null;
                while (true)
                {
                    bool exited = group.Exited;
                    foreach (var e in events.ReadNew())
                        try { result = Handle(e, reporter) ?? result; }
                        catch (PipelineStoppedException) { }            // Ctrl+C between the check and a write: keep waiting for the ranks
                    if (exited) break;
                    if (_cancel.IsCancellationRequested && stopAsked is null)
                    {
                        group.RequestStop();                            // every rank stops at the same step and saves a checkpoint
                        stopAsked = DateTime.UtcNow;
                    }
                    // Ranks that do not stop within the collective timeout (and a minute) are ended.
                    if (stopAsked < DateTime.UtcNow - LaunchEnvironment.Timeout(MpiCommunicator.DefaultTimeout) - TimeSpan.FromMinutes(1)) group.KillAll();
                    // A rank that failed while others run: give mpirun (or the others) a moment to end the job, then end it.
                    if (group.Failure is not null && (failedAt ??= DateTime.UtcNow) < DateTime.UtcNow.AddSeconds(-10)) group.KillAll();
                    Thread.Sleep(100);
                }
                group.WaitForOutput();
                reporter.Complete();
                if (group.Failure is { } code || result is null)
                    throw new GraloraException("DistributedTrainingFailed", GraloraErrorKind.InvalidOperation,
                        $"The {plan.Ranks} ranks did not finish{(group.Failure is { } c ? $" (exit code {c})" : "")}; checkpoints already written stay for -Resume. "
                        + $"The last lines they printed (all of them: {group.LogFile}):\n{group.Tail(25)}", folder);
                succeeded = true;
            }
            finally
            {
                _cancel.Dispose();
                _cancel = null;
            }
            // The trained adapter into this session's model (also after Ctrl+C: rank 0 saved where the ranks stopped).
            DataParallel.LoadTrainedWeights(Model, adapter, Path.Combine(folder, JobFolder.ResultFolder));
            Model.Adapters.SetActive(new[] { adapter });
            if (succeeded) AtomicFile.DeleteDirectory(folder);
            if (Stopping) return;
            var run = result!;
            run.Model = Model;
            if (PassThru) WriteObject(Model);
            else WriteObject(run);
        }

        TrainingRun? Handle(JsonNode e, IProgress<TrainingProgress> reporter)
        {
            var value = e["value"];
            if (Stopping) return (string?)e["type"] == "result" ? value.Deserialize<TrainingRun>(EventJson) : null;
            switch ((string?)e["type"])
            {
                case "progress" when value.Deserialize<TrainingProgress>(EventJson) is { } p: reporter.Report(p); break;
                case "warning": WriteWarning((string?)value ?? ""); break;
                case "status": WriteStatus("rank 0: " + (string?)value); break;
                case "result": return value.Deserialize<TrainingRun>(EventJson);
            }
            return null;
        }
    }
}
