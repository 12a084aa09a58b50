using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using GraLoRA.Data;
using GraLoRA.IO;
using GraLoRA.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Training
{
    /// <summary>
    /// Trains one adapter of a model (everything else frozen) with AdamW: gradient accumulation normalised by the
    /// predicted tokens of the whole step (so 4 × 2 equals 8 × 1), clipping, warmup and schedules, evaluation,
    /// resumable checkpoints in PEFT format, early stopping and cancellation at step boundaries. Each step runs in
    /// its own dispose scope, so nothing accumulates across steps.
    /// </summary>
    public sealed partial class Trainer
    {
        readonly BaseModel _model;
        readonly string _adapter;
        readonly TrainingOptions _options;

        /// <summary>Trains adapter <paramref name="adapterName"/> of <paramref name="model"/> (made the only active adapter).</summary>
        public Trainer(BaseModel model, string adapterName, TrainingOptions options)
        {
            options.Validate();
            model.Adapters.Config(adapterName);
            _model = model;
            _adapter = adapterName;
            _options = options;
        }

        /// <summary>Receives warnings as they happen (e.g. a step skipped for a NaN loss); they are also in <see cref="TrainingResult.Warnings"/>.</summary>
        public Action<string>? Warning { get; set; }

        /// <summary>Test hook: called with (step, phase, trainable parameters) at "forward" (before each micro-batch) and "backward" (after the last).</summary>
        internal Action<int, string, IReadOnlyList<(string Name, Parameter Parameter)>>? FaultInjection { get; set; }

        /// <summary>Optimizer steps a run over <paramref name="data"/> takes.</summary>
        public int TotalSteps(IBatchSource data) =>
            _options.MaxSteps ?? _options.Epochs * (int)Math.Ceiling((double)data.BatchesPerEpoch / _options.GradientAccumulationSteps);

        /// <summary>
        /// Runs training. <paramref name="resumeFrom"/>: a checkpoint folder (or the output folder, meaning its latest
        /// checkpoint) to continue from exactly where it stopped.
        /// </summary>
        public TrainingResult Train(IBatchSource train, IBatchSource? validation = null, IProgress<TrainingProgress>? progress = null,
                                    CancellationToken cancellation = default, string? resumeFrom = null)
        {
            var host = _model.Adapters;
            host.SetActive(new[] { _adapter });
            var module = _model.Network;
            var network = _model.Transformer;
            var device = network.Device;
            // Sorted by name, so a fresh process builds the optimizer over the same order and can load its state.
            var trainable = module.named_parameters().Where(p => p.parameter.requires_grad).OrderBy(p => p.name, StringComparer.Ordinal)
                .Select(p => (Name: p.name, Parameter: p.parameter)).ToList();
            if (trainable.Count == 0)
                throw new GraloraException("NothingToTrain", GraloraErrorKind.InvalidOperation, $"Adapter '{_adapter}' has no trainable parameters.", _adapter);
            bool NoDecay(string name, Parameter p) => p.dim() < 2 || name.EndsWith(".bias", StringComparison.Ordinal) || name.Contains("norm", StringComparison.Ordinal);
            var groups = new[]
            {
                new AdamW.ParamGroup(trainable.Where(p => !NoDecay(p.Name, p.Parameter)).Select(p => p.Parameter), _options.LearningRate, _options.AdamBeta1, _options.AdamBeta2, _options.AdamEpsilon, _options.WeightDecay),
                new AdamW.ParamGroup(trainable.Where(p => NoDecay(p.Name, p.Parameter)).Select(p => p.Parameter), _options.LearningRate, _options.AdamBeta1, _options.AdamBeta2, _options.AdamEpsilon, 0.0),
            }.Where(g => g.Parameters.Any()).ToArray();
            using var optimizer = optim.AdamW(groups, _options.LearningRate, _options.AdamBeta1, _options.AdamBeta2, _options.AdamEpsilon, _options.WeightDecay);

            int total = TotalSteps(train);
            var state = new TrainerState { Seed = _options.Seed, Adapter = _adapter };
            string? output = _options.OutputDirectory is null ? null : Path.GetFullPath(_options.OutputDirectory);
            if (output is not null)
            {
                if (resumeFrom is not null && _options.OverwriteOutputDirectory)
                    throw new GraloraException("InvalidTrainingOption", GraloraErrorKind.InvalidArgument,
                        $"OverwriteOutputDirectory (-Force) starts afresh in '{output}', deleting what is there, while resuming from '{resumeFrom}' continues a run: give one of them.", output);
                if (resumeFrom is null && OutputTarget.CheckFolder(output, _options.OverwriteOutputDirectory)) AtomicFile.DeleteDirectory(output);
                Directory.CreateDirectory(output);
                TrainingCheckpoints.RemoveLeftovers(output);
            }
            if (resumeFrom is not null) state = TrainingCheckpoints.Resume(_model, _adapter, resumeFrom, optimizer);
            else manual_seed(_options.Seed);
            var warnings = new List<string>();
            var skipped = new List<SkippedStep>();

            var history = new List<TrainingProgress>();
            var clock = Stopwatch.StartNew();
            long tokensSinceLog = 0;
            var logClock = Stopwatch.StartNew();
            double? lastLoss = null, lastValidation = null;
            string? lastCheckpoint = null, bestCheckpoint = null;
            bool cancelled = false, stoppedEarly = false;
            int stepsAtStart = state.Step;
            using var metrics = output is null ? null : new MetricsLog(output, resumeFrom is null ? null : state.Step);

            bool wasTraining = module.training, wasCheckpointing = network.GradientCheckpointing;
            network.GradientCheckpointing = _options.GradientCheckpointing;
            module.train();
            try
            {
                IEnumerator<DataBatch>? batches = null;
                while (state.Step < total)
                {
                    if (cancellation.IsCancellationRequested) { cancelled = true; break; }
                    if (batches is null)
                    {
                        batches = train.Epoch(state.Epoch).Skip(state.MicroBatchesDone).GetEnumerator();
                    }
                    var group = new List<DataBatch>();
                    while (group.Count < _options.GradientAccumulationSteps && batches.MoveNext()) group.Add(batches.Current);
                    if (group.Count == 0)
                    {
                        batches.Dispose();
                        batches = null;
                        state.Epoch++;
                        state.MicroBatchesDone = 0;
                        continue;
                    }

                    double lr = _options.LearningRate * _options.LearningRateFactor(state.Step, total);
                    foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
                    double loss, gradNorm;
                    long tokens;
                    try
                    {
                        string? fault;
                        (loss, gradNorm, tokens, fault) = Step(group, optimizer, trainable, device, state.Step + 1, state.Epoch, state.MicroBatchesDone);
                        if (fault is not null)
                        {
                            skipped.Add(new SkippedStep(state.Step + 1, fault));
                            string message = $"Step {state.Step + 1} skipped (no update): {fault}.";
                            warnings.Add(message);
                            Warning?.Invoke(message);
                        }
                    }
                    catch (Exception ex) when (IsOutOfMemory(ex))
                    {
                        optimizer.zero_grad();
                        throw OutOfMemory(ex, group, state.Step + 1, device);
                    }
                    state.Step++;
                    state.MicroBatchesDone += group.Count;
                    if (state.MicroBatchesDone >= train.BatchesPerEpoch)
                    {
                        batches.Dispose();
                        batches = null;
                        state.Epoch++;
                        state.MicroBatchesDone = 0;
                    }
                    lastLoss = loss;
                    tokensSinceLog += tokens;

                    bool evaluate = validation is not null && (_options.EvalSteps is { } every && state.Step % every == 0 || state.Step == total);
                    double? validationLoss = null;
                    if (evaluate)
                    {
                        validationLoss = Evaluate(_model, validation!).Loss;
                        module.train();
                        lastValidation = validationLoss;
                        if (state.BestValidationLoss is null || validationLoss < state.BestValidationLoss)
                        {
                            state.BestValidationLoss = validationLoss;
                            state.BestStep = state.Step;
                            state.EvaluationsWithoutImprovement = 0;
                        }
                        else state.EvaluationsWithoutImprovement++;
                    }
                    if (state.Step % _options.LoggingSteps == 0 || evaluate || state.Step == total)
                    {
                        double seconds = Math.Max(1e-9, logClock.Elapsed.TotalSeconds);
                        var elapsed = clock.Elapsed;
                        int done = state.Step - stepsAtStart;
                        var remaining = TimeSpan.FromTicks(done == 0 ? 0 : elapsed.Ticks / done * (total - state.Step));
                        var report = new TrainingProgress(state.Step, total, state.Epoch, loss, lr, gradNorm, tokensSinceLog / seconds, elapsed, remaining,
                            Environment.WorkingSet, validationLoss);
                        history.Add(report);
                        progress?.Report(report);
                        metrics?.Write(report);
                        tokensSinceLog = 0;
                        logClock.Restart();
                    }
                    bool stop = _options.EarlyStoppingPatience is { } patience && state.EvaluationsWithoutImprovement >= patience;
                    if (output is not null && (_options.SaveSteps is { } save && state.Step % save == 0 || state.Step == total || stop))
                    {
                        lastCheckpoint = TrainingCheckpoints.Save(_model, _adapter, output, state, optimizer);
                        if (state.BestStep == state.Step) bestCheckpoint = lastCheckpoint;
                        TrainingCheckpoints.Prune(output, state.BestStep, _options.SaveTotalLimit);
                    }
                    if (stop) { stoppedEarly = true; break; }
                }
                batches?.Dispose();
                if (cancelled && output is not null) lastCheckpoint = TrainingCheckpoints.Save(_model, _adapter, output, state, optimizer);
            }
            finally
            {
                if (!wasTraining) module.eval();
                network.GradientCheckpointing = wasCheckpointing;
            }
            if (output is not null && state.BestStep is { } best)
            {
                string path = Path.Combine(output, $"checkpoint-{best}");
                bestCheckpoint = Directory.Exists(path) ? path : bestCheckpoint;
            }
            string? chart = output is not null && history.Count > 0 ? TrainingChart.Save(history, Path.Combine(output, "training.png")) : null;
            return new TrainingResult(state.Step, total, lastLoss, lastValidation, state.BestValidationLoss, state.BestStep, output, lastCheckpoint, bestCheckpoint,
                cancelled, stoppedEarly, clock.Elapsed, history, chart, warnings, skipped);
        }

        /// <summary>
        /// One optimizer step over an accumulation group. A non-finite loss (checked per micro-batch, before its backward)
        /// or gradient norm skips the update — or, with <see cref="NonFiniteAction.Stop"/>, throws — and returns what went
        /// wrong, naming the step, the batch and the first parameter whose gradient is not finite.
        /// </summary>
        (double Loss, double GradNorm, long Tokens, string? Fault) Step(List<DataBatch> group, AdamW optimizer, List<(string Name, Parameter Parameter)> trainable,
                                                                        Device device, int step, int epoch, int firstMicroBatch)
        {
            using var scope = NewDisposeScope();
            // Normalise by the predicted tokens of the whole accumulation group: the summed gradients then equal
            // those of one batch holding every micro-batch (transformers' num_items_in_batch).
            long tokens = group.Sum(PredictedTokens);
            if (tokens == 0) throw NoTargets();
            double lossSum = 0;
            string? fault = null, errorId = null;
            for (int i = 0; i < group.Count; i++)
            {
                using var micro = NewDisposeScope();
                FaultInjection?.Invoke(step, "forward", trainable);
                var sum = LossSum(_model.Transformer, group[i], device);
                float value = sum.item<float>();
                if (!float.IsFinite(value))
                {
                    fault = $"the loss is {value} on {DescribeBatch(group[i], epoch, firstMicroBatch + i)}";
                    errorId = "NonFiniteLoss";
                    break;
                }
                (sum / Math.Max(1, tokens)).backward();
                lossSum += value;
            }
            double norm = double.NaN;
            if (fault is null) (norm, fault, errorId) = AfterBackward(group, trainable, step, epoch, firstMicroBatch);
            if (fault is not null)
            {
                optimizer.zero_grad();
                if (_options.OnNonFinite == NonFiniteAction.Stop)
                    throw new GraloraException(errorId!, GraloraErrorKind.InvalidData,
                        $"Training stopped at step {step}: {fault}. Lower the learning rate, check the data at that position, or set OnNonFinite = SkipStep to skip such steps.", step);
                return (double.NaN, norm, tokens, fault);
            }
            optimizer.step();
            optimizer.zero_grad();
            return (lossSum / Math.Max(1, tokens), norm, tokens, null);
        }

        /// <summary>
        /// Everything between the last backward of a step and the optimizer update: clip the accumulated gradients to
        /// <see cref="TrainingOptions.MaxGradNorm"/> and measure their norm; a non-finite norm is a fault naming the first
        /// parameter whose gradient is not finite (then the caller skips the update or stops).
        /// </summary>
        (double Norm, string? Fault, string? ErrorId) AfterBackward(List<DataBatch> group, List<(string Name, Parameter Parameter)> trainable,
                                                                   int step, int epoch, int firstMicroBatch)
        {
            FaultInjection?.Invoke(step, "backward", trainable);
            var grads = trainable.Where(p => p.Parameter.grad is not null).Select(p => (p.Name, Grad: p.Parameter.grad!)).ToList();
            double norm;
            if (_options.MaxGradNorm > 0 && grads.Count > 0)
            {
                // As torch.nn.utils.clip_grad_norm_ (2-norm of the per-parameter norms, coefficient max/(norm + 1e-6)
                // clamped to 1), but the gradients are scaled only when the norm is finite, so a fault can still be
                // traced to the parameter it came from.
                var total = stack(grads.Select(g => g.Grad.norm().to(ScalarType.Float32)).ToArray()).norm();
                norm = total.item<float>();
                if (double.IsFinite(norm))
                {
                    var coefficient = (_options.MaxGradNorm / (total + 1e-6)).clamp_max(1.0);
                    foreach (var (_, g) in grads) g.mul_(coefficient);
                }
            }
            else norm = GradNorm(trainable.Select(p => p.Parameter).ToList());
            if (double.IsFinite(norm)) return (norm, null, null);
            // Only on a fault: find the first parameter whose gradient holds a NaN or an infinity.
            string culprit = grads.FirstOrDefault(g => !g.Grad.isfinite().all().item<bool>()).Name ?? "(none found)";
            string batches = group.Count == 1 ? DescribeBatch(group[0], epoch, firstMicroBatch)
                : $"micro-batches {firstMicroBatch}–{firstMicroBatch + group.Count - 1} of epoch {epoch} (examples {Examples(group.SelectMany(b => b.ExampleIndices))})";
            return (norm, $"the gradient norm is {norm}: parameter '{culprit}' has a non-finite gradient, from {batches}", "NonFiniteGradient");
        }

        static string DescribeBatch(DataBatch batch, int epoch, int microBatch) =>
            $"micro-batch {microBatch} of epoch {epoch} (examples {Examples(batch.ExampleIndices)})";

        static string Examples(IEnumerable<int> indices)
        {
            var list = indices.Distinct().ToList();
            return string.Join(", ", list.Take(8)) + (list.Count > 8 ? $", … {list.Count} in all" : "");
        }

        /// <summary>True for an allocation failure: .NET's OutOfMemoryException or libtorch's CPU/CUDA allocator errors.</summary>
        internal static bool IsOutOfMemory(Exception ex) =>
            ex is OutOfMemoryException
            || ex is System.Runtime.InteropServices.ExternalException && ex.Message is { } m
               && (m.Contains("out of memory", StringComparison.OrdinalIgnoreCase) || m.Contains("DefaultCPUAllocator", StringComparison.Ordinal)
                   || m.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase) || m.Contains("not enough memory", StringComparison.OrdinalIgnoreCase));

        GraloraException OutOfMemory(Exception ex, List<DataBatch> group, int step, Device device)
        {
            var first = group[0];
            string checkpointing = _options.GradientCheckpointing ? "" : ", or turn on gradient checkpointing (GradientCheckpointing)";
            return new GraloraException("OutOfMemory", GraloraErrorKind.NotAvailable,
                $"Out of {(device.type == DeviceType.CUDA ? "GPU" : "CPU")} memory at step {step} (batch size {first.BatchSize}, sequence length {first.SequenceLength}). "
                + $"Lower the batch size (raise GradientAccumulationSteps to keep the effective batch), lower the maximum sequence length{checkpointing}. "
                + $"Nothing was updated; the model stays usable. ({ex.Message.Split('\n')[0]})", step, ex);
        }

        static double GradNorm(List<Parameter> parameters)
        {
            double sq = 0;
            foreach (var p in parameters)
                if (p.grad is { } g) sq += g.to(ScalarType.Float64).pow(2).sum().item<double>();
            return Math.Sqrt(sq);
        }

        // A step with nothing to predict would "train" at loss 0 and change nothing (e.g. text + label data, which needs a
        // classification head).
        static GraloraException NoTargets() => new("NoTargetTokens", GraloraErrorKind.InvalidData,
            "The batch has no tokens to predict (every label is -100): causal-LM training needs responses to learn; text + label classification data needs a classification model.");

        /// <summary>Tokens a batch predicts: labels other than −100 from column 1 on (the causal shift drops column 0).</summary>
        public static long PredictedTokens(DataBatch batch)
        {
            if (batch.ClassLabels is not null) return batch.BatchSize;            // classification: one prediction per row
            long n = 0;
            for (int r = 0; r < batch.BatchSize; r++)
                for (int c = 1; c < batch.SequenceLength; c++)
                    if (batch.Labels[r * batch.SequenceLength + c] != TrainingExample.IgnoreIndex) n++;
            return n;
        }

        /// <summary>
        /// The loss site (training, evaluation and the diagnostics all come here): summed cross-entropy of the next-token
        /// predictions of one batch (float32), labels −100 ignored.
        /// </summary>
        internal static Tensor LossSum(ITransformerNetwork module, DataBatch batch, Device device) => LossSum(module, batch, device, out _);

        /// <summary>As above; for classification batches also the class logits [B, labels] the loss was computed from.</summary>
        internal static Tensor LossSum(ITransformerNetwork module, DataBatch batch, Device device, out Tensor? classLogits)
        {
            classLogits = null;
            Tensor Matrix(long[] values) => tensor(values, batch.Shape, device: device);
            var ids = Matrix(batch.InputIds);
            var mask = Matrix(batch.AttentionMask);
            var positions = Matrix(batch.PositionIds);
            if (batch.ClassLabels is { } classes)
            {
                var types = batch.TokenTypeIds is null || !module.UsesTokenTypes ? null : Matrix(batch.TokenTypeIds);
                classLogits = module.ClassificationLogits(ids, mask, types).to(ScalarType.Float32);       // [B, labels]
                return nn.functional.cross_entropy(classLogits, tensor(classes, device: device), reduction: nn.Reduction.Sum);
            }
            if (module is not DecoderForCausalLM decoder)
                throw new GraloraException("NotADecoder", GraloraErrorKind.InvalidData,
                    $"This data trains next-token prediction, which a {module.ModelType} encoder cannot do: give text + label records (classification) for encoders.");
            var segments = batch.SegmentIds is null ? null : Matrix(batch.SegmentIds);
            var logits = decoder.Forward(ids, mask, positions, segmentIds: segments).Logits;         // [B, L, V]
            long vocab = logits.shape[2], length = batch.SequenceLength;
            var predicted = logits.narrow(1, 0, length - 1).reshape(-1, vocab).to(ScalarType.Float32);
            var targets = Matrix(batch.Labels).narrow(1, 1, length - 1).reshape(-1);
            return nn.functional.cross_entropy(predicted, targets, ignore_index: TrainingExample.IgnoreIndex, reduction: nn.Reduction.Sum);
        }

        /// <summary>Checkpoint folders under <paramref name="output"/>, oldest first (<see cref="TrainingCheckpoints.List"/>).</summary>
        public static IReadOnlyList<(int Step, string Path)> Checkpoints(string output) => TrainingCheckpoints.List(output);
    }
}
