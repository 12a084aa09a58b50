using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
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
    /// <para type="description">Reads the dataset (.jsonl, .json, .csv/.tsv, .parquet, or -InputObject records), detects its format from the first record (messages → Chat, instruction → Alpaca, prompt → PromptCompletion, text+label → Classification, text → Text) unless -Format names it, tokenises it with the model's tokenizer and chat template (only responses are learned unless -TrainOnPrompt), and trains the adapter (the single active one unless -Adapter names it; everything else stays frozen) with AdamW, warmup and a learning-rate schedule. Shows Write-Progress (step, loss, learning rate, tokens/s, time left) and writes one line per logging step to the information stream (shown like Write-Host; silence with -InformationAction Ignore or 6&gt;$null). With -OutputPath it writes resumable checkpoints (checkpoint-N: adapter in PEFT format, optimizer and RNG state), metrics.jsonl, TensorBoard events under runs/ and training.png. Ctrl+C stops at the next step boundary and saves a checkpoint that -Resume continues from. Outputs one TrainingRun whose Model property pipes into Merge-GraLoRAAdapter, Export-BaseModel and the other -Model cmdlets.</para>
    /// </summary>
    /// <example><code>$run = Import-BaseModel ./models/tiny | Add-GraLoRAAdapter -Rank 16 | Start-GraLoRATraining ./data/train.jsonl -MaxSteps 200 -LearningRate 2e-4 -OutputPath ./out</code><para>Adds an adapter and trains it for 200 steps, writing checkpoints, metrics.jsonl, TensorBoard events and training.png under ./out.</para></example>
    /// <example><code>$model | Start-GraLoRATraining ./data/train.jsonl -ValidationSplit 0.1 -EvalSteps 50 -EarlyStoppingPatience 3 -OutputPath ./out -Resume</code><para>Continues an interrupted run from its latest checkpoint, evaluating on a tenth of the data every 50 steps and stopping after 3 evaluations without improvement.</para></example>
    /// <example><code>$run | Save-GraLoRAAdapter ./adapters/trained</code><para>Saves the trained adapter: the run's Model property binds to -Model.</para></example>
    [Cmdlet(VerbsLifecycle.Start, "GraLoRATraining", DefaultParameterSetName = PathSet)]
    [OutputType(typeof(TrainingRun))]
    public sealed class StartGraLoRATrainingCommand : GraloraCmdlet
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

        /// <summary><para type="description">The record format (default: detected from the first record's fields).</para></summary>
        [Parameter]
        [ValidateSet("Text", "Alpaca", "PromptCompletion", "Chat", "Classification")]
        public string? Format { get; set; }

        /// <summary><para type="description">A validation data file (same format as the training data).</para></summary>
        [Parameter]
        public string? ValidationDataset { get; set; }

        /// <summary><para type="description">Hold out this fraction of the training records for validation (instead of -ValidationDataset), e.g. 0.1.</para></summary>
        [Parameter]
        public double ValidationSplit { get; set; }

        /// <summary><para type="description">Longest example in tokens (default 1024); longer ones are cut at the end. Also the length of packed sequences.</para></summary>
        [Parameter]
        public int MaxLength { get; set; } = 1024;

        /// <summary><para type="description">Concatenate examples into sequences of up to -MaxLength tokens (attention does not cross example boundaries).</para></summary>
        [Parameter]
        public SwitchParameter Packing { get; set; }

        /// <summary><para type="description">Learn prompts and user turns too (default: only the responses).</para></summary>
        [Parameter]
        public SwitchParameter TrainOnPrompt { get; set; }

        /// <summary><para type="description">Examples per batch (default 8).</para></summary>
        [Parameter]
        public int BatchSize { get; set; } = 8;

        /// <summary><para type="description">Batch examples of similar length together (less padding).</para></summary>
        [Parameter]
        public SwitchParameter GroupByLength { get; set; }

        /// <summary><para type="description">Peak learning rate (default 2e-4).</para></summary>
        [Parameter]
        public double LearningRate { get; set; } = 2e-4;

        /// <summary><para type="description">Passes over the training data (default 1; ignored with -MaxSteps).</para></summary>
        [Parameter]
        public int Epochs { get; set; } = 1;

        /// <summary><para type="description">Optimizer steps to run (instead of -Epochs).</para></summary>
        [Parameter]
        public int MaxSteps { get; set; }

        /// <summary><para type="description">Batches per optimizer step (default 1).</para></summary>
        [Parameter]
        public int GradientAccumulation { get; set; } = 1;

        /// <summary><para type="description">Steps of linear warmup from 0 (overrides -WarmupRatio).</para></summary>
        [Parameter]
        public int WarmupSteps { get; set; }

        /// <summary><para type="description">Warmup as a fraction of all steps.</para></summary>
        [Parameter]
        public double WarmupRatio { get; set; }

        /// <summary><para type="description">Learning rate after warmup: Constant, Linear (default, to 0) or Cosine.</para></summary>
        [Parameter]
        [ValidateSet("Constant", "Linear", "Cosine")]
        public string Schedule { get; set; } = "Linear";

        /// <summary><para type="description">AdamW weight decay (default 0; never on biases and norms).</para></summary>
        [Parameter]
        public double WeightDecay { get; set; }

        /// <summary><para type="description">Clip the gradient norm to this (default 1; 0 = off).</para></summary>
        [Parameter]
        public double MaxGradNorm { get; set; } = 1.0;

        /// <summary><para type="description">Seed of the data order, the validation split, packing and training randomness (default 42).</para></summary>
        [Parameter]
        public int Seed { get; set; } = 42;

        /// <summary><para type="description">Folder for checkpoints, metrics.jsonl, TensorBoard events (runs/) and training.png (default: nothing is written).</para></summary>
        [Parameter]
        public string? OutputPath { get; set; }

        /// <summary><para type="description">Save a checkpoint every this many steps (default: at the end only); needs -OutputPath.</para></summary>
        [Parameter]
        public int SaveSteps { get; set; }

        /// <summary><para type="description">Evaluate on the validation data every this many steps (default: at the end only).</para></summary>
        [Parameter]
        public int EvalSteps { get; set; }

        /// <summary><para type="description">Checkpoints kept (default 3; the newest and the best are always kept).</para></summary>
        [Parameter]
        public int SaveTotalLimit { get; set; } = 3;

        /// <summary><para type="description">Stop after this many evaluations without a better validation loss.</para></summary>
        [Parameter]
        public int EarlyStoppingPatience { get; set; }

        /// <summary><para type="description">Recompute each decoder layer's activations in backward: less memory for long sequences, one more forward per layer.</para></summary>
        [Parameter]
        public SwitchParameter GradientCheckpointing { get; set; }

        /// <summary><para type="description">Report progress and write a line every this many steps (default 10).</para></summary>
        [Parameter]
        public int LoggingSteps { get; set; } = 10;

        /// <summary><para type="description">Continue from the latest checkpoint in -OutputPath (same data and options), exactly where it stopped.</para></summary>
        [Parameter]
        public SwitchParameter Resume { get; set; }

        /// <summary><para type="description">Continue from this checkpoint folder (or training folder: its latest checkpoint). New checkpoints go to -OutputPath, else beside it.</para></summary>
        [Parameter]
        public string? ResumeFrom { get; set; }

        /// <summary><para type="description">The adapter to train (default: the model's single active adapter).</para></summary>
        [Parameter]
        [ArgumentCompleter(typeof(AdapterNameCompleter))]
        public string? Adapter { get; set; }

        /// <summary><para type="description">A training configuration (New-GraLoRATrainingConfig, or a hashtable loaded from JSON or a .psd1 file) whose keys name this cmdlet's optimisation, data and output parameters; parameters given explicitly win over it.</para></summary>
        [Parameter]
        public IDictionary? Config { get; set; }
        #endregion

        #region Overrides
        /// <inheritdoc />
        protected override void ProcessRecord() => Invoke(() =>
        {
            ApplyConfig();
            string adapter = ChooseAdapter();
            var tokenizer = DatasetInput.Tokenizer(Model, "Training");
            if (Bound(nameof(ValidationDataset)) && Bound(nameof(ValidationSplit)))
                throw Invalid(nameof(ValidationSplit), "give either -ValidationDataset or -ValidationSplit, not both");
            if (Resume && ResumeFrom is not null)
                throw Invalid(nameof(ResumeFrom), "give either -Resume (the latest checkpoint in -OutputPath) or -ResumeFrom <checkpoint>, not both");

            string? output = OutputPath is null ? null : ResolvePath(OutputPath);
            string? resumeFrom = null;
            if (Resume)
            {
                resumeFrom = output ?? throw Invalid(nameof(Resume), "-Resume continues from the latest checkpoint in -OutputPath: give -OutputPath (or -ResumeFrom <checkpoint folder>)");
            }
            else if (ResumeFrom is not null)
            {
                resumeFrom = ResolvePath(ResumeFrom);
                // A checkpoint-N folder writes on beside itself; a training folder into itself.
                output ??= File.Exists(System.IO.Path.Combine(resumeFrom, "trainer_state.json")) ? System.IO.Path.GetDirectoryName(resumeFrom) : resumeFrom;
            }

            var options = new TrainingOptions
            {
                LearningRate = LearningRate, Epochs = Epochs, MaxSteps = Bound(nameof(MaxSteps)) ? MaxSteps : null,
                GradientAccumulationSteps = GradientAccumulation, WarmupSteps = WarmupSteps, WarmupRatio = WarmupRatio,
                Schedule = (LearningRateSchedule)Enum.Parse(typeof(LearningRateSchedule), Schedule, ignoreCase: true),
                WeightDecay = WeightDecay, MaxGradNorm = MaxGradNorm, Seed = Seed, LoggingSteps = LoggingSteps,
                EvalSteps = Bound(nameof(EvalSteps)) ? EvalSteps : null, SaveSteps = Bound(nameof(SaveSteps)) ? SaveSteps : null,
                SaveTotalLimit = SaveTotalLimit, EarlyStoppingPatience = Bound(nameof(EarlyStoppingPatience)) ? EarlyStoppingPatience : null,
                OutputDirectory = output, GradientCheckpointing = GradientCheckpointing,
            };
            // Checks every option (and the adapter) before the data is read.
            var trainer = new Trainer(Model, adapter, options);

            string trainName;
            DatasetSource train;
            if (ParameterSetName == RecordsSet)
            {
                trainName = "InputObject";
                train = DatasetInput.FromObjects(InputObject, trainName);
            }
            else
            {
                trainName = ResolvePath(Dataset);
                train = DatasetInput.FromPath(trainName);
            }
            var validationSource = ValidationDataset is null ? null : DatasetInput.FromPath(ResolvePath(ValidationDataset));
            var dataOptions = new DataOptions
            {
                Format = DatasetInput.ParseFormat(Format), MaxLength = MaxLength, TrainOnPrompt = TrainOnPrompt, Packing = Packing,
                ValidationFraction = ValidationSplit, Seed = Seed, ClassLabels = Model.NamedClassLabels,
            };
            var data = TrainingData.Prepare(tokenizer, train, validationSource, dataOptions);
            if (DatasetInput.PrepareTask(Model, adapter, data) is { } task) WriteHost(task);
            var batchOptions = new BatchOptions { BatchSize = BatchSize, GroupByLength = GroupByLength, Seed = Seed };
            var trainLoader = data.CreateTrainLoader(batchOptions);
            var validationLoader = data.Validation.Count > 0 ? data.CreateValidationLoader(batchOptions) : null;
            if ((ValidationDataset is not null || ValidationSplit > 0) && validationLoader is null)
                WriteWarning("No validation example is left (every one was dropped or the split was empty): training without validation.");

            int total = trainer.TotalSteps(trainLoader);
            var stats = data.TrainStats;
            string examples = stats.PackedSequences > 0 ? $"{stats.Examples:N0} examples packed into {stats.PackedSequences:N0} sequences" : $"{stats.Examples:N0} examples";
            WriteHost(string.Format(CultureInfo.InvariantCulture, "Training adapter '{0}' on {1} ({2}, {3} batches of {4} per epoch){5}: {6:N0} steps{7}{8}",
                adapter, examples, data.Format, trainLoader.BatchesPerEpoch, BatchSize,
                validationLoader is null ? "" : $", {data.Validation.Count:N0} validation examples",
                total, resumeFrom is null ? "" : $", resuming from {resumeFrom}",
                stats.Truncated + stats.DroppedWithoutTargets > 0 ? $" ({stats.Truncated} truncated, {stats.DroppedWithoutTargets} dropped without targets)" : ""));

            _cancel = new CancellationTokenSource();
            var reporter = new ProgressReporter(this, adapter, _cancel.Token);
            TrainingResult result;
            try
            {
                result = trainer.Train(trainLoader, validationLoader, reporter, _cancel.Token, resumeFrom);
            }
            finally
            {
                reporter.Complete();
                _cancel.Dispose();
                _cancel = null;
            }

            var run = new TrainingRun
            {
                Model = Model, Adapter = adapter, Steps = result.Steps, TotalSteps = result.TotalSteps, FinalLoss = result.FinalLoss,
                ValidationLoss = result.ValidationLoss, BestValidationLoss = result.BestValidationLoss, BestStep = result.BestStep,
                Perplexity = result.ValidationLoss is { } v ? Math.Exp(v) : null, OutputPath = result.OutputDirectory,
                LastCheckpoint = result.LastCheckpoint, BestCheckpoint = result.BestCheckpoint, Chart = result.Chart,
                Cancelled = result.Cancelled, StoppedEarly = result.StoppedEarly, Elapsed = result.Elapsed,
                TrainExamples = stats.Examples, ValidationExamples = data.Validation.Count, Format = data.Format.ToString(), History = result.History,
            };
            string how = result.Cancelled ? "stopped" : result.StoppedEarly ? "stopped early" : "done";
            WriteHost(string.Format(CultureInfo.InvariantCulture, "{0}: {1:N0}/{2:N0} steps in {3:hh\\:mm\\:ss}, final loss {4:0.0000}{5}{6}",
                how, result.Steps, result.TotalSteps, result.Elapsed, result.FinalLoss ?? double.NaN,
                result.ValidationLoss is { } vl ? string.Format(CultureInfo.InvariantCulture, ", validation loss {0:0.0000} (perplexity {1:0.###})", vl, Math.Exp(vl)) : "",
                result.LastCheckpoint is null ? "" : $", checkpoint {result.LastCheckpoint}"));
            WriteObject(run);
        });

        /// <inheritdoc />
        protected override void StopProcessing() => _cancel?.Cancel();
        #endregion

        #region Private methods
        readonly HashSet<string> _fromConfig = new(StringComparer.OrdinalIgnoreCase);

        bool Bound(string name) => MyInvocation.BoundParameters.ContainsKey(name) || _fromConfig.Contains(name);

        /// <summary>Sets the parameters -Config names and the command line does not, converted and checked as binding would.</summary>
        void ApplyConfig()
        {
            if (Config is null) return;
            foreach (DictionaryEntry entry in Config)
            {
                string key = LanguagePrimitives.ConvertTo<string>(entry.Key);
                string? name = NewGraLoRATrainingConfigCommand.Keys.FirstOrDefault(k => k.Equals(key, StringComparison.OrdinalIgnoreCase));
                if (name is null)
                    throw new GraloraException("InvalidTrainingConfig", GraloraErrorKind.InvalidArgument,
                        $"-Config has the key '{key}', which is not a training setting; it may hold: {string.Join(", ", NewGraLoRATrainingConfigCommand.Keys)}.", key);
                if (MyInvocation.BoundParameters.ContainsKey(name)) continue; // explicit parameters win
                var property = typeof(StartGraLoRATrainingCommand).GetProperty(name)!;
                object? value = entry.Value is PSObject pso ? pso.BaseObject : entry.Value;
                object? converted;
                try
                {
                    converted = property.PropertyType == typeof(SwitchParameter)
                        ? new SwitchParameter(LanguagePrimitives.ConvertTo<bool>(value))
                        : LanguagePrimitives.ConvertTo(value, property.PropertyType, CultureInfo.InvariantCulture);
                }
                catch (PSInvalidCastException ex)
                {
                    throw new GraloraException("InvalidTrainingConfig", GraloraErrorKind.InvalidArgument,
                        $"-Config sets {name} to '{value}', which is not a {property.PropertyType.Name}: {ex.Message}", key, ex);
                }
                if (property.GetCustomAttributes(typeof(ValidateSetAttribute), false).FirstOrDefault() is ValidateSetAttribute set &&
                    !set.ValidValues.Contains((string)converted!, StringComparer.OrdinalIgnoreCase))
                    throw new GraloraException("InvalidTrainingConfig", GraloraErrorKind.InvalidArgument,
                        $"-Config sets {name} to '{converted}'; it must be one of {string.Join(", ", set.ValidValues)}.", key);
                property.SetValue(this, converted);
                _fromConfig.Add(name);
            }
        }

        static GraloraException Invalid(string name, string rule) =>
            new("InvalidTrainingOption", GraloraErrorKind.InvalidArgument, $"-{name}: {rule}.", name);

        string ChooseAdapter()
        {
            if (Adapter is not null)
            {
                if (!Model.Adapters.Names.Contains(Adapter))
                    throw new GraloraException("AdapterNotFound", GraloraErrorKind.NotFound,
                        $"Model '{Model.Name}' has no adapter '{Adapter}'" + (Model.Adapters.Names.Count == 0 ? ": add one with Add-GraLoRAAdapter." : $"; it has {string.Join(", ", Model.Adapters.Names)}."), Adapter);
                return Adapter;
            }
            var active = Model.Adapters.Active;
            if (active.Count == 1) return active[0];
            if (active.Count == 0)
                throw new GraloraException("NoActiveAdapter", GraloraErrorKind.InvalidOperation,
                    Model.Adapters.Names.Count == 0
                        ? $"Model '{Model.Name}' has no adapter to train: add one first, e.g. Import-BaseModel ... | Add-GraLoRAAdapter | Start-GraLoRATraining ..."
                        : $"Model '{Model.Name}' has no active adapter: name the one to train with -Adapter ({string.Join(", ", Model.Adapters.Names)}).", Model.Name);
            throw new GraloraException("AmbiguousAdapter", GraloraErrorKind.InvalidOperation,
                $"Model '{Model.Name}' has several active adapters ({string.Join(", ", active)}): name the one to train with -Adapter.", Model.Name);
        }

        // Write-Host's mechanism: a HostInformationMessage tagged PSHOST on the information stream.
        void WriteHost(string message) => WriteInformation(new HostInformationMessage { Message = message }, new[] { "PSHOST" });

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
                    _cmdlet.WriteHost(string.Format(inv, "step {0,5:N0}/{1:N0}  loss {2:0.0000}{3}  lr {4:0.00e+00}  grad_norm {5:0.###}  {6:N0} tok/s",
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
