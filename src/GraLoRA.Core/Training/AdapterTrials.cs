using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Models;

namespace GraLoRA.Training
{
    /// <summary>
    /// Short trials of temporary adapters on one model (Find-GraLoRAK's candidates, Compare-GraLoRAMethod's methods): each
    /// config gets a fresh adapter, made from the same seed, that is removed after its trial; the model's active adapters
    /// and which parameters train are restored at the end, so the model is left as it was.
    /// </summary>
    public static class AdapterTrials
    {
        /// <summary>
        /// The data every trial trains and is scored on: <paramref name="train"/> prepared as training prepares it
        /// (<see cref="TrainingJob.PrepareData"/>: <paramref name="settings"/>' format, length, validation file or split,
        /// seed) and batched with its batch settings. A trial is scored on validation data, so none left is
        /// NoValidationData; <paramref name="purpose"/> says what it is for ("Find-GraLoRAK scores candidates by validation loss").
        /// </summary>
        public static TrialData PrepareData(BaseModel model, DatasetSource train, TrainingSettings settings, string purpose)
        {
            RefuseJobSettings(settings.OutputPath is not null ? ("OutputPath", settings.OutputPath)
                : settings.SaveSteps is not null ? ("SaveSteps", settings.SaveSteps)
                : settings.Resume ? ("Resume", true)
                : settings.ResumeFrom is not null ? ("ResumeFrom", settings.ResumeFrom)
                : settings.Adapter is not null ? ("Adapter", settings.Adapter)
                : (null, null));
            var data = TrainingJob.PrepareData(model, train, settings);
            if (data.Validation.Count == 0)
                throw new GraloraException("NoValidationData", GraloraErrorKind.InvalidData,
                    $"{purpose}, and no validation example is left: give a validation dataset (-ValidationDataset, F# Validation) or a larger validation split (e.g. 0.1).", train.Name);
            var batches = settings.ToBatchOptions();
            return new TrialData(data, data.CreateTrainLoader(batches), data.CreateValidationLoader(batches));
        }

        /// <summary>
        /// Trials train temporary adapters that are removed afterwards and write nothing, so a training job's output,
        /// checkpoint, resume or adapter setting would have no effect: it is refused (NotForTrials), not ignored.
        /// </summary>
        internal static void RefuseJobSettings((string? Name, object? Value) setting)
        {
            if (setting.Name is null) return;
            throw new GraloraException("NotForTrials", GraloraErrorKind.InvalidArgument,
                $"{setting.Name} '{setting.Value}' is a setting of a training job: trials train temporary adapters, remove them afterwards and write no checkpoints. Leave {setting.Name} unset (train the chosen method afterwards with Start-GraLoRATraining or Train.run).",
                setting.Value);
        }

        internal static List<T> Run<T>(BaseModel model, string baseName, IEnumerable<AdapterConfig> configs, long seed, Func<string, AdapterConfig, T> trial)
        {
            var previousActive = model.Adapters.Active.ToList();
            var requiresGrad = model.Network.parameters().Select(p => (p, p.requires_grad)).ToList();
            string name = baseName;
            while (model.Adapters.Names.Contains(name)) name += "_";
            var results = new List<T>();
            try
            {
                foreach (var config in configs)
                {
                    TorchSharp.torch.manual_seed(seed);              // the same initialisation stream for every trial
                    model.AddAdapter(name, config);
                    try { results.Add(trial(name, config)); }
                    finally { model.Adapters.Remove(name); }
                }
            }
            finally
            {
                if (previousActive.Count > 0) model.Adapters.SetActive(previousActive);
                foreach (var (p, flag) in requiresGrad) p.requires_grad = flag;
            }
            return results;
        }
    }

    /// <summary>The prepared data of a series of trials and its loaders (see <see cref="AdapterTrials.PrepareData"/>).</summary>
    public sealed record TrialData(PreparedDataset Data, BatchLoader Train, BatchLoader Validation)
    {
        /// <summary>Classification data's label names (each trial then trains the model's classification head), or null.</summary>
        public IReadOnlyList<string>? ClassLabels => Data.Format == DatasetFormat.Classification ? Data.ClassLabels!.Labels : null;
    }
}
