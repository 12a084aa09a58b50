using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using GraLoRA.Data;
using GraLoRA.Training;

namespace GraLoRA.PowerShell
{
    /// <summary>
    /// The optimisation, data and output parameters Start-GraLoRATraining takes and New-GraLoRATrainingConfig
    /// collects, declared once, named and defaulted as Core's <see cref="TrainingSettings"/>, with the one mapping onto it.
    /// </summary>
    public abstract class TrainingSettingsCmdlet : GraloraCmdlet
    {
        #region Parameters
        /// <summary><para type="description">The record format (default: detected from the first record's fields). Tokenized: records already tokenized for language modelling (input_ids, optional labels and attention_mask, as Hugging Face datasets and TRL store them), used as they are.</para></summary>
        [Parameter]
        [ValidateSet("Text", "Alpaca", "PromptCompletion", "Chat", "Classification", "Tokenized")]
        public string? Format { get; set; }

        /// <summary><para type="description">A validation data file (same format as the training data).</para></summary>
        [Parameter]
        public string? ValidationDataset { get; set; }

        /// <summary><para type="description">Hold out this fraction of the training records for validation (instead of -ValidationDataset), e.g. 0.1.</para></summary>
        [Parameter]
        public double ValidationSplit { get; set; }

        /// <summary><para type="description">Longest example in tokens (default 1024); longer ones are cut at the end. Also the length of packed sequences.</para></summary>
        [Parameter]
        public int MaxLength { get; set; } = TrainingSettings.Default.MaxLength;

        /// <summary><para type="description">Concatenate examples into sequences of up to -MaxLength tokens (attention does not cross example boundaries).</para></summary>
        [Parameter]
        public SwitchParameter Packing { get; set; }

        /// <summary><para type="description">Learn prompts and user turns too (default: only the responses).</para></summary>
        [Parameter]
        public SwitchParameter TrainOnPrompt { get; set; }

        /// <summary><para type="description">Examples per batch (default 8).</para></summary>
        [Parameter]
        public int BatchSize { get; set; } = TrainingSettings.Default.BatchSize;

        /// <summary><para type="description">Batch examples of similar length together (less padding).</para></summary>
        [Parameter]
        public SwitchParameter GroupByLength { get; set; }

        /// <summary><para type="description">Peak learning rate (default 2e-4).</para></summary>
        [Parameter]
        public double LearningRate { get; set; } = TrainingSettings.Default.LearningRate;

        /// <summary><para type="description">Passes over the training data (default 1; ignored with -MaxSteps).</para></summary>
        [Parameter]
        public int Epochs { get; set; } = TrainingSettings.Default.Epochs;

        /// <summary><para type="description">Optimizer steps to run (instead of -Epochs).</para></summary>
        [Parameter]
        public int MaxSteps { get; set; }

        /// <summary><para type="description">Batches per optimizer step (default 1).</para></summary>
        [Parameter]
        public int GradientAccumulation { get; set; } = TrainingSettings.Default.GradientAccumulation;

        /// <summary><para type="description">Steps of linear warmup from 0 (overrides -WarmupRatio).</para></summary>
        [Parameter]
        public int WarmupSteps { get; set; }

        /// <summary><para type="description">Warmup as a fraction of all steps.</para></summary>
        [Parameter]
        public double WarmupRatio { get; set; }

        /// <summary><para type="description">Learning rate after warmup: Constant, Linear (default, to 0) or Cosine.</para></summary>
        [Parameter]
        [ValidateSet("Constant", "Linear", "Cosine")]
        public string Schedule { get; set; } = TrainingSettings.Default.Schedule.ToString();

        /// <summary><para type="description">AdamW weight decay (default 0; never on biases and norms).</para></summary>
        [Parameter]
        public double WeightDecay { get; set; }

        /// <summary><para type="description">Clip the gradient norm to this (default 1; 0 = off).</para></summary>
        [Parameter]
        public double MaxGradNorm { get; set; } = TrainingSettings.Default.MaxGradNorm;

        /// <summary><para type="description">Seed of the data order, the validation split, packing and training randomness (default 42).</para></summary>
        [Parameter]
        public int Seed { get; set; } = TrainingSettings.Default.Seed;

        /// <summary><para type="description">Folder for checkpoints, metrics.jsonl, TensorBoard events (runs/) and training.png (default: nothing is written).</para></summary>
        [Parameter]
        public string? OutputPath { get; set; }

        /// <summary><para type="description">Start afresh in an -OutputPath that already holds files (a previous run's), replacing them; without -Force that is an OutputExists error (use -Resume to continue that run instead).</para></summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary><para type="description">Save a checkpoint every this many steps (default: at the end only); needs -OutputPath.</para></summary>
        [Parameter]
        public int SaveSteps { get; set; }

        /// <summary><para type="description">Evaluate on the validation data every this many steps (default: at the end only).</para></summary>
        [Parameter]
        public int EvalSteps { get; set; }

        /// <summary><para type="description">Checkpoints kept (default 3; the newest and the best are always kept).</para></summary>
        [Parameter]
        public int SaveTotalLimit { get; set; } = TrainingSettings.Default.SaveTotalLimit;

        /// <summary><para type="description">Stop after this many evaluations without a better validation loss.</para></summary>
        [Parameter]
        public int EarlyStoppingPatience { get; set; }

        /// <summary><para type="description">Recompute each decoder layer's activations in backward: less memory for long sequences, one more forward per layer.</para></summary>
        [Parameter]
        public SwitchParameter GradientCheckpointing { get; set; }

        /// <summary><para type="description">When a step's loss or a gradient is NaN or infinite: SkipStep (default: the update is skipped and a warning names the step, the parameter and the batch) or Stop (a terminating NonFiniteLoss/NonFiniteGradient error; checkpoints already written stay).</para></summary>
        [Parameter]
        [ValidateSet("SkipStep", "Stop")]
        public string OnNonFinite { get; set; } = TrainingSettings.Default.OnNonFinite.ToString();

        /// <summary><para type="description">Report progress and write a line every this many steps (default 10).</para></summary>
        [Parameter]
        public int LoggingSteps { get; set; } = TrainingSettings.Default.LoggingSteps;
        #endregion

        /// <summary>The settings' parameter names, in declaration order: the keys a training configuration may hold.</summary>
        internal static readonly string[] Keys = typeof(TrainingSettingsCmdlet)
            .GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Where(p => p.IsDefined(typeof(ParameterAttribute)))
            .OrderBy(p => p.MetadataToken)
            .Select(p => p.Name)
            .ToArray();

        readonly HashSet<string> _fromConfig = new(StringComparer.OrdinalIgnoreCase);

        /// <summary>Whether a parameter was given on the command line or by a configuration.</summary>
        protected bool Bound(string name) => MyInvocation.BoundParameters.ContainsKey(name) || _fromConfig.Contains(name);

        /// <summary>Sets the settings <paramref name="config"/> names and the command line does not, converted and checked as binding would.</summary>
        protected void ApplyConfig(IDictionary? config)
        {
            if (config is null) return;
            foreach (DictionaryEntry entry in config)
            {
                string key = LanguagePrimitives.ConvertTo<string>(entry.Key);
                string? name = Keys.FirstOrDefault(k => k.Equals(key, StringComparison.OrdinalIgnoreCase));
                if (name is null)
                    throw new GraloraException("InvalidTrainingConfig", GraloraErrorKind.InvalidArgument,
                        $"-Config has the key '{key}', which is not a training setting; it may hold: {string.Join(", ", Keys)}.", key);
                if (MyInvocation.BoundParameters.ContainsKey(name)) continue; // explicit parameters win
                var property = typeof(TrainingSettingsCmdlet).GetProperty(name)!;
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

        /// <summary>
        /// The settings as Core's <see cref="TrainingSettings"/> (paths resolved through the provider; settings left unbound
        /// that have no value take none). Core checks them (<see cref="TrainingJob.Prepare"/>).
        /// </summary>
        protected TrainingSettings ToSettings() => new()
        {
            Format = DatasetInput.ParseFormat(Format), ValidationDataset = ValidationDataset is null ? null : ResolvePath(ValidationDataset),
            ValidationSplit = ValidationSplit, MaxLength = MaxLength, Packing = Packing, TrainOnPrompt = TrainOnPrompt, BatchSize = BatchSize,
            GroupByLength = GroupByLength, LearningRate = LearningRate, Epochs = Epochs, MaxSteps = Bound(nameof(MaxSteps)) ? MaxSteps : null,
            GradientAccumulation = GradientAccumulation, WarmupSteps = WarmupSteps, WarmupRatio = WarmupRatio,
            Schedule = Enum.Parse<LearningRateSchedule>(Schedule, ignoreCase: true), WeightDecay = WeightDecay, MaxGradNorm = MaxGradNorm, Seed = Seed,
            OutputPath = OutputPath is null ? null : ResolvePath(OutputPath), OverwriteOutput = Force, SaveSteps = Bound(nameof(SaveSteps)) ? SaveSteps : null,
            EvalSteps = Bound(nameof(EvalSteps)) ? EvalSteps : null, SaveTotalLimit = SaveTotalLimit,
            EarlyStoppingPatience = Bound(nameof(EarlyStoppingPatience)) ? EarlyStoppingPatience : null, GradientCheckpointing = GradientCheckpointing,
            OnNonFinite = Enum.Parse<NonFiniteAction>(OnNonFinite, ignoreCase: true), LoggingSteps = LoggingSteps,
        };
    }
}
