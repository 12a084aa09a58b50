using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Data;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Distributed
{
    /// <summary>
    /// Data-parallel adapter training: every rank holds the base model and the adapter, reads its own rows of every
    /// global batch, and after each backward the trainable gradients are summed across ranks (each rank's loss is
    /// already divided by the global count of predicted tokens, so the sum is the one-process gradient); the optimizer
    /// then steps identically everywhere. This is the narrow hook the <see cref="Trainer"/> calls (through
    /// <see cref="TrainingOptions.Distributed"/>); a single process uses <see cref="SingleProcess"/>, whose hooks do
    /// nothing. Every hook is collective: all ranks call it at the same point of the loop.
    /// </summary>
    public sealed class DataParallel : IDisposable
    {
        readonly ICommunicator? _communicator;
        readonly bool _ownsCommunicator;

        /// <summary>One process: nothing is shared.</summary>
        public static DataParallel SingleProcess { get; } = new(null, LaunchInfo.Single, false);

        DataParallel(ICommunicator? communicator, LaunchInfo launch, bool owns)
        {
            _communicator = communicator;
            Launch = launch;
            _ownsCommunicator = owns;
        }

        /// <summary>Training over <paramref name="communicator"/> (MPI, NCCL, or a test double); disposing this disposes it when <paramref name="ownsCommunicator"/>.</summary>
        public DataParallel(ICommunicator communicator, bool ownsCommunicator = false)
            : this(communicator, new LaunchInfo(Launcher.None, communicator.Rank, communicator.Size, communicator.Rank), ownsCommunicator) { }

        /// <summary>How this process was launched.</summary>
        public LaunchInfo Launch { get; }
        /// <summary>The collectives engine, or null for a single process.</summary>
        public ICommunicator? Communicator => _communicator;
        /// <summary>This rank.</summary>
        public int Rank => _communicator?.Rank ?? 0;
        /// <summary>The number of ranks.</summary>
        public int WorldSize => _communicator?.Size ?? 1;
        /// <summary>Rank 0: the one that writes checkpoints, metrics and charts.</summary>
        public bool IsMain => Rank == 0;
        /// <summary>Bytes per gradient bucket (default 25 MiB).</summary>
        public long BucketCapBytes { get; init; } = GradientBuckets.DefaultCapBytes;
        /// <summary>A file whose appearance stops every rank at the next step (default GRALORA_STOP_FILE).</summary>
        public string? StopFile { get; init; } = LaunchEnvironment.StopFile;

        /// <inheritdoc />
        public override string ToString() => _communicator is null ? "single process" : $"rank {Rank} of {WorldSize} over {_communicator.Engine}";

        /// <summary>
        /// The data-parallel group this process belongs to, from its launcher's environment (null when it runs alone):
        /// CPU ranks all-reduce through MPI (mpirun, srun); CUDA ranks through NCCL, whose unique id travels by MPI under
        /// an MPI launcher and by a file under a torchrun-style one (see <see cref="NcclBootstrap"/>).
        /// </summary>
        public static DataParallel? FromEnvironment(Device device) => FromLaunch(LaunchEnvironment.Current, device);

        /// <summary>As <see cref="FromLaunch(LaunchInfo, Device)"/> on the device <paramref name="model"/> lives on.</summary>
        public static DataParallel? FromLaunch(LaunchInfo launch, BaseModel model) => FromLaunch(launch, model.Transformer.Device);

        /// <summary>As <see cref="FromEnvironment"/> for a given launch.</summary>
        public static DataParallel? FromLaunch(LaunchInfo launch, Device device)
        {
            if (!launch.IsDistributed) return null;
            if (launch.Launcher == Launcher.Mpich)
                throw new GraloraException("MpiNotSupported", GraloraErrorKind.NotAvailable,
                    "This process was started by an MPICH-family mpiexec (PMI_RANK/PMI_SIZE); GraLoRA binds Open MPI (libmpi.so.40): launch with Open MPI's mpirun, srun, or a torchrun-style launcher for GPUs.");
            var timeout = LaunchEnvironment.Timeout(MpiCommunicator.DefaultTimeout);
            if (device.type == DeviceType.CPU)
            {
                if (!launch.HasMpi)
                    throw new GraloraException("CpuRanksNeedMpi", GraloraErrorKind.NotAvailable,
                        $"{launch.WorldSize} CPU ranks were started by a torchrun-style launcher, but CPU ranks all-reduce through MPI: launch them with mpirun or srun (torchrun-style launches serve CUDA ranks, through NCCL).");
                var mpi = MpiCommunicator.World();
                CheckSameWorld(launch, mpi);
                // Counted as running from here: a rank that fails before its first step (its data, its checkpoint) aborts
                // the job on exit instead of leaving the others waiting in the first collective.
                var world = new DataParallel(mpi, launch, false);
                world.MarkRunning();
                return world;
            }
            if (device.type != DeviceType.CUDA)
                throw new GraloraException("UnsupportedDistributedDevice", GraloraErrorKind.InvalidArgument, $"Data-parallel training runs on CPU (MPI) or CUDA (NCCL) devices, not {device}.", device.ToString());
            NcclUniqueId id;
            string? idFile = null;
            if (launch.HasMpi)
            {
                var mpi = MpiCommunicator.World();
                CheckSameWorld(launch, mpi);
                id = NcclBootstrap.ViaMpi(mpi, NcclCommunicator.NewUniqueId);
            }
            else
            {
                idFile = NcclBootstrap.IdFile(launch);
                var started = System.Diagnostics.Process.GetCurrentProcess().StartTime.ToUniversalTime().AddMinutes(-1);
                id = NcclBootstrap.ViaFile(idFile, launch.Rank, NcclCommunicator.NewUniqueId, started, timeout);
            }
            var nccl = NcclCommunicator.Create(id, launch.Rank, launch.WorldSize, device, timeout);
            if (idFile is not null && launch.Rank == 0) NcclBootstrap.Remove(idFile);   // every rank has joined
            return new DataParallel(nccl, launch, true);
        }

        /// <summary>
        /// Loads the weights of adapter <paramref name="adapter"/> saved in PEFT format in <paramref name="folder"/> (what rank 0
        /// of a launched job saves) into the same adapter of <paramref name="model"/>, whose configuration must match.
        /// </summary>
        public static void LoadTrainedWeights(BaseModel model, string adapter, string folder)
        {
            string weights = Path.Combine(folder, PeftAdapterFormat.WeightsFile);
            var tensors = Safetensors.Read(weights);
            try { model.Adapters.LoadStateDict(adapter, tensors, weights); }
            finally { foreach (var t in tensors.Values) t.Dispose(); }
        }

        static void CheckSameWorld(LaunchInfo launch, ICommunicator mpi)
        {
            if (mpi.Rank != launch.Rank || mpi.Size != launch.WorldSize)
                throw new GraloraException("InvalidLaunchEnvironment", GraloraErrorKind.InvalidArgument,
                    $"MPI says rank {mpi.Rank} of {mpi.Size}, the launcher's variables say rank {launch.Rank} of {launch.WorldSize} ({launch.Launcher}): start every rank through one launcher.");
        }

        /// <inheritdoc />
        public void Dispose()
        {
            if (_ownsCommunicator) _communicator?.Dispose();
        }

        #region Hooks the Trainer calls
        /// <summary>This rank's rows of every global batch (evaluation: <paramref name="skipEmpty"/>).</summary>
        internal IBatchSource Shard(IBatchSource global, bool skipEmpty = false)
        {
            if (_communicator is null) return global;
            var shard = new RankShard(global, Rank, WorldSize, skipEmpty);
            if (!skipEmpty) _globalBatchRows = shard.GlobalBatchRows;
            return shard;
        }

        int _globalBatchRows;

        /// <summary>
        /// Start of a run: checks that every rank holds the same frozen weights (DistributedModelMismatch otherwise),
        /// gives every rank rank 0's trainable weights, and on a fresh run (<paramref name="seed"/> given) seeds rank r
        /// with seed + r, so dropout draws differ between ranks as they would between rows of one process's batch.
        /// </summary>
        internal void Begin(IReadOnlyList<(string Name, Parameter Parameter)> trainable, nn.Module network, long? seed)
        {
            if (_communicator is null) return;
            MarkRunning();
            CheckSameFrozenWeights(network);
            GradientBuckets.Broadcast(_communicator, trainable.Select(p => (Tensor)p.Parameter).ToList(), 0, BucketCapBytes, "the broadcast of rank 0's adapter weights");
            if (seed is { } s && Rank > 0) manual_seed(s + Rank);
        }

        bool _running;

        void MarkRunning()
        {
            if (_running) return;
            _running = true;
            if (_communicator is MpiCommunicator mpi) mpi.RunStarted();
        }

        /// <summary>End of a run that finished normally (stopped early or cancelled included).</summary>
        internal void End()
        {
            if (!_running) return;
            _running = false;
            if (_communicator is MpiCommunicator mpi) mpi.RunFinished();
        }

        /// <summary>Whether any rank was asked to stop (Ctrl+C, a cancellation, the stop file): all ranks stop at the same step.</summary>
        internal bool AnyStop(bool local)
        {
            local |= StopFile is not null && File.Exists(StopFile);
            if (_communicator is null) return local;
            return Sum(new[] { local ? 1.0 : 0.0 }, "the stop agreement")[0] > 0;
        }

        /// <summary>The predicted tokens of the whole global step (each rank normalises its loss by it).</summary>
        internal long GlobalTokens(long local) =>
            _communicator is null ? local : (long)Math.Round(Sum(new[] { (double)local }, "the token count all-reduce")[0]);

        /// <summary>
        /// The summed loss of the step over every rank, and a fault when any rank's loss was not finite (then every rank
        /// skips the update; the rank that saw it names the batch, the others name that rank).
        /// </summary>
        internal (double LossSum, string? Fault, string? ErrorId) AgreeOnLoss(double lossSum, string? fault, string? errorId, int step)
        {
            if (_communicator is null) return (lossSum, fault, errorId);
            var values = new double[1 + WorldSize];
            values[0] = fault is null ? lossSum : 0;
            values[1 + Rank] = fault is null ? 0 : 1;
            var sums = Sum(values, $"the loss all-reduce of step {step}");
            if (fault is not null) return (sums[0], $"{fault} (rank {Rank})", errorId);
            int faulty = Array.FindIndex(sums, 1, s => s > 0) - 1;
            return faulty < 0 ? (sums[0], null, null) : (sums[0], $"rank {faulty} of {WorldSize} saw a non-finite loss (its own warning names the batch)", "NonFiniteLoss");
        }

        /// <summary>Sums the gradients over the ranks (bucketed).</summary>
        internal void AllReduceGradients(IReadOnlyList<(string Name, Parameter Parameter)> trainable, int step)
        {
            if (_communicator is null) return;
            GradientBuckets.AllReduceGradients(_communicator, trainable.Select(p => p.Parameter).ToList(), BucketCapBytes, $"the gradient all-reduce of step {step}");
        }

        /// <summary>The validation loss over every rank's share of <paramref name="validation"/> (a shard from <see cref="Shard"/> with skipEmpty).</summary>
        internal double ValidationLoss(BaseModel model, IBatchSource validation)
        {
            if (_communicator is null) return Trainer.Evaluate(model, validation).Loss;
            double sum = 0, tokens = 0;
            GraloraException? none = null;
            try
            {
                var local = Trainer.Evaluate(model, validation);
                (sum, tokens) = (local.Loss * local.Tokens, local.Tokens);
            }
            catch (GraloraException ex) when (ex.ErrorId == "NoTargetTokens")
            {
                none = ex;                                  // this rank's share predicts nothing; others may
            }
            var totals = Sum(new[] { sum, tokens }, "the validation loss all-reduce");
            if (totals[1] == 0) throw none!;                 // no rank had anything to predict, as one process would say
            return totals[0] / totals[1];
        }

        /// <summary>Every rank's CPU random state [WorldSize × state bytes] (collective), for a checkpoint rank 0 writes.</summary>
        internal Tensor? GatherRandomStates()
        {
            if (_communicator is null) return null;
            using var local = get_rng_state();
            using var onDevice = local.to(_communicator.Device);
            using var all = _communicator.AllGather(onDevice, "the gather of every rank's random state");
            return all.cpu().reshape(WorldSize, -1);
        }

        const string StateFile = "distributed.json";
        static string RandomStateFile(int rank) => $"rng_state_{rank}.safetensors";

        /// <summary>Rank 0, into a checkpoint being staged: the world size and ranks 1…'s random states (rank 0's is the checkpoint's own rng_state); the caller disposes <paramref name="states"/>.</summary>
        internal void WriteRankState(string staging, Tensor? states)
        {
            if (states is null) return;
            CheckpointWriter.WriteJson(Path.Combine(staging, StateFile), new System.Text.Json.Nodes.JsonObject
            {
                ["world_size"] = WorldSize,
                ["global_batch_rows"] = _globalBatchRows,
            });
            for (int r = 1; r < WorldSize; r++)
            {
                using var state = states[r].clone();
                Safetensors.Write(Path.Combine(staging, RandomStateFile(r)), new Dictionary<string, Tensor> { ["cpu"] = state });
            }
        }

        /// <summary>
        /// On resume from <paramref name="folder"/>: ranks 1… take their own random state back. Returns what changes
        /// when the checkpoint was written by another number of ranks (null when nothing does).
        /// </summary>
        internal string? RestoreRankState(string folder)
        {
            int savedWorld = 1, savedRows = 0;
            string statePath = Path.Combine(folder, StateFile);
            if (File.Exists(statePath))
            {
                var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(statePath));
                savedWorld = (int?)node?["world_size"] ?? 1;
                savedRows = (int?)node?["global_batch_rows"] ?? 0;
            }
            if (savedWorld == WorldSize)
            {
                if (Rank > 0)
                {
                    var saved = Safetensors.Read(Path.Combine(folder, RandomStateFile(Rank)));
                    set_rng_state(saved["cpu"]);
                    foreach (var t in saved.Values) t.Dispose();
                }
                return null;
            }
            string rows = savedRows > 0 && _globalBatchRows > 0 && savedRows != _globalBatchRows
                ? $"The global batch is now {_globalBatchRows} rows (per-rank batch × {WorldSize} ranks) instead of {savedRows}: each step averages {_globalBatchRows} rows, and the position in the epoch, counted in global batches, now points at other examples than the original run would have read next."
                : savedRows > 0 && savedRows == _globalBatchRows
                    ? $"The global batch is still {savedRows} rows, so the data order is unchanged; gradient sums round differently in the last bits."
                    : "If per-rank batch × ranks is not what it was, each step now takes another number of rows and the epoch position (counted in global batches) points at other examples.";
            return $"Resuming a checkpoint written by {savedWorld} rank{(savedWorld == 1 ? "" : "s")} with {WorldSize}: the step count, optimizer state and learning-rate schedule continue. {rows} "
                   + (WorldSize > savedWorld ? $"Ranks {savedWorld}–{WorldSize - 1} start their random streams (dropout) from rank 0's state. " : "")
                   + $"The result will not match an uninterrupted {savedWorld}-rank run bit for bit.";
        }
        #endregion

        // Sums of rank-local host values, through the communicator's device.
        double[] Sum(double[] values, string what)
        {
            using var buffer = tensor(values, ScalarType.Float64).to(_communicator!.Device);
            _communicator.AllReduceSum(buffer, what);
            using var host = buffer.cpu();
            return host.data<double>().ToArray();
        }

        // Σ over frozen parameters (sorted by name) of (index + 1) × the parameter's float64 sum: equal on every rank
        // when they hold the same base model (up to the summation order of different thread counts, hence the
        // relative 1e-9); a different checkpoint or a freshly initialised head changes it far more.
        void CheckSameFrozenWeights(nn.Module network)
        {
            double fingerprint = 0;
            int index = 0;
            using (no_grad())
                foreach (var (name, p) in network.named_parameters().Where(p => !p.parameter.requires_grad).OrderBy(p => p.name, StringComparer.Ordinal))
                {
                    using var sum = p.sum(ScalarType.Float64);
                    fingerprint += ++index * sum.item<double>();
                }
            using var local = tensor(new[] { fingerprint, index }, ScalarType.Float64).to(_communicator!.Device);
            using var all = _communicator.AllGather(local, "the check that every rank holds the same base model");
            var values = all.cpu().data<double>().ToArray();
            for (int r = 1; r < WorldSize; r++)
                if (values[2 * r + 1] != values[1] || Math.Abs(values[2 * r] - values[0]) > 1e-9 * Math.Max(1, Math.Abs(values[0])))
                    throw new GraloraException("DistributedModelMismatch", GraloraErrorKind.InvalidData,
                        $"Rank {r}'s frozen base weights differ from rank 0's ({values[2 * r + 1]:0} vs {values[1]:0} frozen tensors, fingerprint {values[2 * r]:R} vs {values[0]:R}): "
                        + "every rank must load the same checkpoint, with the same dtype; a freshly initialised classification head differs per process (save the model with Export-BaseModel and load that on every rank).");
        }
    }
}
