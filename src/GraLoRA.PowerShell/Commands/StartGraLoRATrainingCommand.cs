using System;
using System.Collections;
using System.Globalization;
using System.Management.Automation;
using GraLoRA.PowerShell.Completion;
using System.Threading;
using GraLoRA.Data;
using GraLoRA.Models;
using GraLoRA.Training;

namespace GraLoRA.PowerShell.Commands
{
    /// <summary>
    /// <para type="synopsis">Fine-tunes a model's adapter on a dataset (file or records), with progress, checkpoints, evaluation and resume.</para>
    /// <para type="description">Reads the dataset (.jsonl, .json, .csv/.tsv, .parquet, or -InputObject records), detects its format from the first record (input_ids → Tokenized, messages → Chat, instruction → Alpaca, prompt → PromptCompletion, text+label → Classification, text → Text) unless -Format names it, tokenises it with the model's tokenizer and chat template (only responses are learned unless -TrainOnPrompt; tokenized records are used as they are, learning what their labels say), and trains the adapter (the current one — the only active, else the only adapter — unless -Adapter names it; everything else stays frozen) with AdamW, warmup and a learning-rate schedule. Shows Write-Progress (step, loss, learning rate, tokens/s, time left) and writes one line per logging step to the information stream, tagged GraLoRA (at an interactive prompt shown like Write-Host; in a -NonInteractive session or with $ProgressPreference = 'SilentlyContinue' only with -InformationAction Continue; silence with -InformationAction Ignore). Every write happens on the pipeline thread, so training also runs in Start-ThreadJob, whose Progress and Information streams receive the records. With -OutputPath it writes resumable checkpoints (checkpoint-N: adapter in PEFT format, optimizer and RNG state), metrics.jsonl, TensorBoard events under runs/ and training.png. Ctrl+C stops at the next step boundary and saves a checkpoint that -Resume continues from. Outputs one TrainingRun (whose Model property also pipes into the -Model cmdlets), or with -PassThru the model itself.</para>
    /// </summary>
    /// <example><code>$run = Import-BaseModel ./models/tiny | Add-GraLoRAAdapter -Rank 16 | Start-GraLoRATraining ./data/train.jsonl -MaxSteps 200 -LearningRate 2e-4 -OutputPath ./out</code><para>Adds an adapter and trains it for 200 steps, writing checkpoints, metrics.jsonl, TensorBoard events and training.png under ./out.</para></example>
    /// <example><code>$model | Start-GraLoRATraining ./data/train.jsonl -ValidationSplit 0.1 -EvalSteps 50 -EarlyStoppingPatience 3 -OutputPath ./out -Resume</code><para>Continues an interrupted run from its latest checkpoint, evaluating on a tenth of the data every 50 steps and stopping after 3 evaluations without improvement.</para></example>
    /// <example><code>Import-BaseModel ./m | Add-GraLoRAAdapter -Rank 64 -K 4 | Start-GraLoRATraining -Dataset ./d.jsonl -PassThru | Merge-GraLoRAAdapter | Export-BaseModel ./out</code><para>The whole job in one pipeline: -PassThru passes the trained model on to be merged and exported.</para></example>
    /// <example><code>$job = Start-ThreadJob { Import-Module GraLoRA; Import-BaseModel ./m | Add-GraLoRAAdapter | Start-GraLoRATraining ./d.jsonl -MaxSteps 500 }
    /// $job.Progress[-1].StatusDescription
    /// $run = $job | Receive-Job -Wait</code><para>Trains in a thread job. While it runs, $job.Progress holds its progress records (step, loss, learning rate, time left) and $job.Information its status lines; Receive-Job returns the TrainingRun (and empties those streams).</para></example>
    /// <example><code>$model | Start-GraLoRATraining ./data/train.jsonl -BatchSize 4 -MaxSteps 500 -OutputPath ./out -Device cuda:0, cuda:1, cuda:2, cuda:3</code><para>Data-parallel on four GPUs of this machine: one rank process per GPU, each training on 4 rows of every global batch of 16 and all-reducing the gradients through NCCL; one progress bar and one result, and the trained adapter lands in $model. -Device cpu, cpu does the same with CPU ranks over MPI (docs/distributed.md).</para></example>
    /// <example><code>$model | Start-GraLoRATraining ./data/tokenized.parquet -MaxSteps 100 -OutputPath ./out -Force</code><para>Trains on a dataset that is already tokenized (input_ids, labels, attention_mask columns, e.g. saved by Hugging Face datasets with to_parquet), starting afresh in ./out even if an earlier run left files there.</para></example>
    /// <example><code>$run | Save-GraLoRAAdapter ./adapters/trained</code><para>Saves the trained adapter: the run's Model property binds to -Model.</para></example>
    [Cmdlet(VerbsLifecycle.Start, "GraLoRATraining", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(TrainingRun))]
    [OutputType(typeof(BaseModel))]
    public sealed partial class StartGraLoRATrainingCommand : TrainingSettingsCmdlet
    {
        const string PathSet = "Path";
        const string RecordsSet = "Records";
        CancellationTokenSource? _cancel;

        #region Parameters
        /// <summary><para type="description">The model (from Import-BaseModel, or any object with a Model property) with the adapter to train (Add-GraLoRAAdapter).</para></summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        public BaseModel Model { get; set; } = null!;

        /// <summary><para type="description">The training data file: .jsonl/.ndjson, .json, .csv/.tsv or .parquet.</para></summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = PathSet)]
        [Alias("Path")]
        public string Dataset { get; set; } = "";

        /// <summary><para type="description">Training records instead of a file: hashtables or objects with the dataset's fields (e.g. @{ prompt = '...'; completion = '...' }, or ConvertFrom-Json output).</para></summary>
        [Parameter(Mandatory = true, ParameterSetName = RecordsSet)]
        public object[] InputObject { get; set; } = Array.Empty<object>();

        /// <summary><para type="description">Continue from the latest checkpoint in -OutputPath (same data and options), exactly where it stopped.</para></summary>
        [Parameter]
        public SwitchParameter Resume { get; set; }

        /// <summary><para type="description">Continue from this checkpoint folder (or training folder: its latest checkpoint). New checkpoints go to -OutputPath, else beside it.</para></summary>
        [Parameter]
        public string? ResumeFrom { get; set; }

        /// <summary><para type="description">The adapter to train (default: the current adapter: the only active one, else the only one; several → AmbiguousAdapter, none → NoActiveAdapter).</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(AdapterNameCompleter))]
        public string? Adapter { get; set; }

        /// <summary><para type="description">A training configuration (New-GraLoRATrainingConfig, or a hashtable loaded from JSON or a .psd1 file) whose keys name this cmdlet's optimisation, data and output parameters; parameters given explicitly win over it.</para></summary>
        [Parameter]
        public IDictionary? Config { get; set; }

        /// <summary><para type="description">Output the model (with the trained adapter active) instead of the TrainingRun, so the pipeline continues as with the other model cmdlets: ... | Start-GraLoRATraining ./d.jsonl -PassThru | Merge-GraLoRAAdapter | Export-BaseModel ./out.</para></summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            ApplyConfig(Config);
            if (ResumeFrom is null) RequireOutputForForce(Force, OutputPath, nameof(OutputPath));
            var settings = ToSettings() with { Adapter = Adapter, Resume = Resume, ResumeFrom = ResumeFrom is null ? null : ResolvePath(ResumeFrom) };
            if (Device is { Length: > 0 })
            {
                var target = TrainingJob.Check(Model, settings);       // every option, before any rank starts
                TrainingJob.CheckOutput(target, settings);              // and the output folder (-Force), which the ranks would only meet once started
                RunOnDevices(target.Adapter, target.OutputPath, target.ResumeFrom);
                return;
            }
            var (_, train) = OpenDataset(ParameterSetName == RecordsSet, Dataset, InputObject);
            using var world = JoinLaunch();                            // null unless a launcher started this process as one of several ranks
            // Ctrl+C (StopProcessing) stops chat-template rendering while the data is prepared, then training.
            _cancel = new CancellationTokenSource();
            TrainingJob job;
            TrainingResult result;
            try
            {
                job = TrainingJob.Prepare(Model, train, settings, _cancel.Token, world);
                if (job.Task is { } task) WriteStatus(task);
                foreach (var warning in job.Warnings) ReportWarning(warning);

                var prepared = job.Data.TrainStats;
                string examples = prepared.PackedSequences > 0 ? $"{prepared.Examples:N0} examples packed into {prepared.PackedSequences:N0} sequences" : $"{prepared.Examples:N0} examples";
                WriteStatus(string.Format(CultureInfo.InvariantCulture, "Training adapter '{0}' on {1} ({2}, {3} batches of {4} per epoch){5}: {6:N0} steps{7}{8}",
                    job.Adapter, examples, job.Data.Format, job.TrainLoader.BatchesPerEpoch, job.GlobalBatchSize,
                    job.ValidationLoader is null ? "" : $", {job.Data.Validation.Count:N0} validation examples",
                    job.TotalSteps, job.ResumeFrom is null ? "" : $", resuming from {job.ResumeFrom}",
                    prepared.Truncated + prepared.DroppedWithoutTargets > 0 ? $" ({prepared.Truncated} truncated, {prepared.DroppedWithoutTargets} dropped without targets)" : ""));

                var reporter = new ProgressReporter(this, job.Adapter, _cancel.Token);
                try { result = job.Run(Observed(reporter), _cancel.Token); }
                finally { reporter.Complete(); }
            }
            finally
            {
                _cancel.Dispose();
                _cancel = null;
            }

            var stats = job.Data.TrainStats;

            foreach (var warning in result.Warnings ?? Array.Empty<string>()) ReportWarning(warning);  // steps skipped for NaN/Inf
            var run = new TrainingRun
            {
                Model = Model, Adapter = job.Adapter, Steps = result.Steps, TotalSteps = result.TotalSteps, FinalLoss = result.FinalLoss,
                ValidationLoss = result.ValidationLoss, BestValidationLoss = result.BestValidationLoss, BestStep = result.BestStep,
                Perplexity = result.ValidationLoss is { } v ? Math.Exp(v) : null, OutputPath = result.OutputDirectory,
                LastCheckpoint = result.LastCheckpoint, BestCheckpoint = result.BestCheckpoint, Chart = result.Chart,
                Cancelled = result.Cancelled, StoppedEarly = result.StoppedEarly, Elapsed = result.Elapsed,
                TrainExamples = stats.Examples, ValidationExamples = job.Data.Validation.Count, Format = job.Data.Format.ToString(), History = result.History,
                SkippedSteps = result.SkippedSteps, Rank = world?.Rank ?? 0, WorldSize = world?.WorldSize ?? 1,
            };
            string how = result.Cancelled ? "stopped" : result.StoppedEarly ? "stopped early" : "done";
            WriteStatus(string.Format(CultureInfo.InvariantCulture, "{0}: {1:N0}/{2:N0} steps in {3:hh\\:mm\\:ss}, final loss {4:0.0000}{5}{6}",
                how, result.Steps, result.TotalSteps, result.Elapsed, result.FinalLoss ?? double.NaN,
                result.ValidationLoss is { } vl ? string.Format(CultureInfo.InvariantCulture, ", validation loss {0:0.0000} (perplexity {1:0.###})", vl, Math.Exp(vl)) : "",
                result.LastCheckpoint is null ? "" : $", checkpoint {result.LastCheckpoint}"));
            EmitResult(run);
            if (PassThru) WriteObject(Model);
            else WriteObject(run);
        });

        /// <inheritdoc />
        protected override void StopProcessing() => _cancel?.Cancel();
        #endregion

        #region Private methods
        /// <summary>
        /// Turns the trainer's reports into Write-Progress and one information line each. The trainer reports on the
        /// pipeline thread, so writing directly is allowed; once the pipeline is stopping, writes are skipped so the trainer
        /// can still save its checkpoint.
        /// </summary>
        sealed class ProgressReporter : IProgress<TrainingProgress>
        {
            readonly StartGraLoRATrainingCommand _cmdlet;
            readonly string _activity;
            readonly CancellationToken _stopping;
            bool _wrote;

            public ProgressReporter(StartGraLoRATrainingCommand cmdlet, string adapter, CancellationToken stopping)
            {
                _cmdlet = cmdlet;
                _activity = $"Training adapter '{adapter}'";
                _stopping = stopping;
            }

            public void Report(TrainingProgress p)
            {
                if (_stopping.IsCancellationRequested) return;
                var inv = CultureInfo.InvariantCulture;
                string validation = p.ValidationLoss is { } v ? string.Format(inv, "  eval_loss {0:0.0000}", v) : "";
                string status = string.Format(inv, "step {0:N0}/{1:N0}  loss {2:0.0000}{3}  lr {4:0.00e+00}  {5:N0} tok/s  ETA {6:hh\\:mm\\:ss}",
                    p.Step, p.TotalSteps, p.Loss, validation, p.LearningRate, p.TokensPerSecond, p.Remaining);
                try
                {
                    _cmdlet.WriteProgress(new ProgressRecord(1, _activity, status)
                    {
                        PercentComplete = p.TotalSteps == 0 ? 0 : Math.Min(100, (int)(100L * p.Step / p.TotalSteps)),
                        SecondsRemaining = (int)Math.Min(int.MaxValue, p.Remaining.TotalSeconds),
                        CurrentOperation = $"epoch {p.Epoch}",
                    });
                    _wrote = true;
                    _cmdlet.WriteStatus(string.Format(inv, "step {0,5:N0}/{1:N0}  loss {2:0.0000}{3}  lr {4:0.00e+00}  grad_norm {5:0.###}  {6:N0} tok/s",
                        p.Step, p.TotalSteps, p.Loss, validation, p.LearningRate, p.GradNorm, p.TokensPerSecond));
                }
                catch (PipelineStoppedException)
                {
                    // Ctrl+C arrived between the check and the write: the trainer stops at the next step boundary.
                }
            }

            public void Complete()
            {
                if (!_wrote || _stopping.IsCancellationRequested) return;
                try { _cmdlet.WriteProgress(new ProgressRecord(1, _activity, "done") { RecordType = ProgressRecordType.Completed }); }
                catch (PipelineStoppedException) { }
            }
        }
        #endregion
    }
}
