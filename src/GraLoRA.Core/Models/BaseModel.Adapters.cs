using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using GraLoRA.Adapters;
using GraLoRA.IO;
using GraLoRA.Quantization;

namespace GraLoRA.Models
{
    public sealed partial class BaseModel
    {
        AdapterHost? _adapters;

        /// <summary>The model's adapters (inject, switch, merge, save).</summary>
        public AdapterHost Adapters => _adapters ??= _encoder is not null
            // all-linear leaves the head alone: the classifier of an encoder, lm_head of a decoder.
            ? new AdapterHost(_encoder, EncoderModel.ClassificationHeadName, AdapterDefaults.TargetModulesFor(_encoder.ModelType))
            : new AdapterHost(Module, DecoderForCausalLM.OutputHeadName, AdapterDefaults.TargetModulesFor(Module.ModelType));

        /// <summary>Files copied beside an exported checkpoint when the source folder has them.</summary>
        public static readonly string[] CompanionFiles =
        {
            "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
            "tokenizer.model", "vocab.json", "merges.txt",
        };

        /// <summary>Adds adapter <paramref name="name"/> (base_model_name_or_path defaults to this model's name); returns the adapted modules.</summary>
        /// <remarks>
        /// On an encoder with a classification head, the head ("classifier") becomes a module to save of the adapter, as
        /// PEFT's SEQ_CLS task type does: it trains in full and is saved with the adapter.
        /// </remarks>
        public IReadOnlyList<string> AddAdapter(string name, AdapterConfig config)
        {
            if (config.BaseModelNameOrPath is null) config = config with { BaseModelNameOrPath = Name };
            if (_encoder is not null && config.TaskType == "CAUSAL_LM")
                config = config with { TaskType = _encoder.ClassificationLabels > 0 ? "SEQ_CLS" : "FEATURE_EXTRACTION" };
            if (_encoder is { ClassificationLabels: > 0 } && config.ModulesToSave?.Contains(EncoderModel.ClassificationHeadName) != true)
                config = config with { ModulesToSave = (config.ModulesToSave ?? Array.Empty<string>()).Append(EncoderModel.ClassificationHeadName).ToArray() };
            return Adapters.Add(name, config);
        }

        /// <summary>
        /// Saves adapter <paramref name="name"/> in its method's format (PEFT's; the MoRA and RaSA authors' forks'); returns
        /// the folder. Full fine-tuning is saved as a whole checkpoint: this model with that adapter alone folded in, as
        /// <see cref="Export"/> writes it, which Import-BaseModel (or transformers) loads.
        /// </summary>
        public string SaveAdapter(string name, string folder, bool overwrite = false)
        {
            if (Adapters.Config(name).Method != AdapterMethod.Full) return PeftAdapterFormat.Save(Adapters, name, folder, overwrite);
            return WriteCheckpoint(folder, null, CheckpointWriter.DefaultMaxShardBytes, new[] { name }, overwrite);
        }

        /// <summary>
        /// Loads the weights of adapter <paramref name="name"/> back from a folder it was saved to (a training checkpoint):
        /// its PEFT tensors, or for full fine-tuning the trained modules' weights from the checkpoint.
        /// </summary>
        internal void LoadAdapterWeights(string name, string folder)
        {
            var host = Adapters;
            bool full = host.Config(name).Method == AdapterMethod.Full;
            // Full: the checkpoint's "<module>.weight" is the adapter tensor "base_model.model.<module>.weight".
            var wanted = full ? host.StateDict(name).Keys.Select(k => k[AdapterHost.KeyPrefix.Length..]).ToHashSet(StringComparer.Ordinal) : null;
            var files = full ? CheckpointLoader.WeightFiles(folder) : new[] { System.IO.Path.Combine(folder, PeftAdapterFormat.WeightsFile) };
            var tensors = new Dictionary<string, TorchSharp.torch.Tensor>(StringComparer.Ordinal);
            try
            {
                foreach (var file in files)
                    foreach (var (key, tensor) in Safetensors.Read(file, k => wanted is null || wanted.Contains(k)))
                        tensors[full ? AdapterHost.KeyPrefix + key : key] = tensor;
                host.LoadStateDict(name, tensors, folder);
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }

        /// <summary>Loads a PEFT adapter folder as adapter <paramref name="name"/> (made the active one).</summary>
        public AdapterConfig LoadAdapter(string folder, string name = AdapterConfig.DefaultName)
        {
            // An adapter trained for classification carries its head ("score"/"classifier") as a module to save: give a
            // decoder a head of the saved size first, so the adapter has somewhere to go; an encoder must have been
            // loaded with its head.
            if (!File.Exists(System.IO.Path.Combine(folder, PeftAdapterFormat.ConfigFile)) && File.Exists(System.IO.Path.Combine(folder, "config.json")))
                throw new GraloraException("NotAnAdapter", GraloraErrorKind.InvalidArgument,
                    $"'{System.IO.Path.GetFullPath(folder)}' is a model checkpoint (config.json, no {PeftAdapterFormat.ConfigFile}), as full fine-tuning saves: load it with Import-BaseModel.", folder);
            var config = PeftAdapterFormat.ReadConfig(folder);
            string weights = System.IO.Path.Combine(System.IO.Path.GetFullPath(folder), PeftAdapterFormat.WeightsFile);
            if (_encoder is not null)
            {
                if (_encoder.ClassificationLabels == 0 && config.ModulesToSave?.Contains(EncoderModel.ClassificationHeadName) == true)
                    throw new GraloraException("NoClassificationHead", GraloraErrorKind.InvalidOperation,
                        $"Adapter '{folder}' carries a classification head, but model '{Name}' was loaded without one: load it with -Task SequenceClassification -NumLabels n (BaseModelLoadOptions.Task).", folder);
                return PeftAdapterFormat.Load(Adapters, folder, name);
            }
            string headKey = AdapterHost.KeyPrefix + DecoderForCausalLM.ClassificationHeadName + ".weight";
            if (Module.ClassificationLabels == 0 && config.ModulesToSave?.Contains(DecoderForCausalLM.ClassificationHeadName) == true && File.Exists(weights)
                && Safetensors.ReadHeader(weights).Entries.TryGetValue(headKey, out var head))
                Module.AttachClassificationHead((int)head.Shape[0]);
            return PeftAdapterFormat.Load(Adapters, folder, name);
        }

        /// <summary>
        /// Prepares adapter <paramref name="adapter"/> for text + label data: makes sure the model has a classification
        /// head for <paramref name="labels"/> labels (decoders get one added; encoders must have been loaded with one of
        /// that size) and makes it a module to save of the adapter.
        /// </summary>
        public void PrepareClassification(string adapter, int labels)
        {
            var network = Transformer;
            if (network.ClassificationLabels == 0)
            {
                if (_decoder is null)
                    throw new GraloraException("NoClassificationHead", GraloraErrorKind.InvalidOperation,
                        $"Model '{Name}' was loaded without a classification head: load it with -Task SequenceClassification -NumLabels {labels} (BaseModelLoadOptions.Task).", labels);
                _decoder.AttachClassificationHead(labels);
            }
            else if (network.ClassificationLabels != labels)
                throw new GraloraException("ClassificationHeadMismatch", GraloraErrorKind.InvalidArgument,
                    $"The model's classification head has {network.ClassificationLabels} labels but the data has {labels}.", labels);
            Adapters.AddModuleToSave(adapter, network.ClassificationHead);
        }

        /// <summary>
        /// As <see cref="PrepareClassification(string, int)"/> for the label names of the data (class-id order); the
        /// model's <see cref="ClassLabels"/> become these names.
        /// </summary>
        public void PrepareClassification(string adapter, IReadOnlyList<string> labels)
        {
            PrepareClassification(adapter, labels.Count);
            ClassLabels = labels.ToArray();
        }

        /// <summary>
        /// Writes the model as a Hugging Face checkpoint with its active adapters merged in: the source config.json with
        /// torch_dtype updated, safetensors (sharded above <paramref name="maxShardBytes"/>), and the generation and
        /// tokenizer files copied. The folder appears only when complete; an existing non-empty one is replaced only with
        /// <paramref name="overwrite"/> (<see cref="IO.OutputTarget"/>). Returns its full path.
        /// </summary>
        public string Export(string folder, string? dtype = null, long maxShardBytes = CheckpointWriter.DefaultMaxShardBytes, bool overwrite = false) =>
            WriteCheckpoint(folder, dtype, maxShardBytes, null, overwrite);

        /// <summary>
        /// Writes the model as <see cref="Export"/> does, but with the decoder layers' linear weights (adapters merged in)
        /// quantised as transformers saves a bitsandbytes model (<paramref name="quantize"/>: nf4 or int8; config.json gets
        /// the matching quantization_config, the other tensors are stored as <paramref name="dtype"/>, also the compute
        /// dtype). Returns, per quantised weight, the rounding quantising added (relative to the weight).
        /// </summary>
        public IReadOnlyList<LayerRequantization> ExportQuantized(string folder, QuantizationOptions quantize, string? dtype = null,
                                                                  long maxShardBytes = CheckpointWriter.DefaultMaxShardBytes, bool overwrite = false)
        {
            ArgumentNullException.ThrowIfNull(quantize);
            if (_encoder is not null)
                throw new GraloraException("QuantizationUnsupported", GraloraErrorKind.InvalidArgument,
                    $"Model '{Name}' is an encoder: quantised checkpoints are written for decoders only. Export it without -Quantize.", Name);
            quantize.Validate();
            var report = new List<LayerRequantization>();
            WriteCheckpoint(folder, dtype, maxShardBytes, null, overwrite, quantize, report);
            return report;
        }

        // Export's writer; adapters: fold exactly these instead of the active ones (saving full fine-tuning); quantize: as ExportQuantized.
        string WriteCheckpoint(string folder, string? dtype, long maxShardBytes, IReadOnlyCollection<string>? adapters, bool overwrite,
                               QuantizationOptions? quantize = null, List<LayerRequantization>? report = null)
        {
            IO.OutputTarget.CheckFolder(folder, overwrite);                  // before any weight is computed
            var (weights, storedType, config, companions) = CheckpointParts(dtype, adapters, quantize, report);
            CheckpointWriter.SaveFolder(folder, weights, storedType, maxShardBytes, config, companions, overwrite);
            return System.IO.Path.GetFullPath(folder);
        }

        /// <summary>
        /// Writes adapter <paramref name="name"/>'s files into the existing folder <paramref name="folder"/> (a caller's
        /// staging folder, e.g. a training checkpoint's): PEFT's two files, or for full fine-tuning a whole checkpoint.
        /// </summary>
        internal void WriteAdapterFiles(string name, string folder)
        {
            if (Adapters.Config(name).Method != AdapterMethod.Full)
            {
                PeftAdapterFormat.WriteFiles(Adapters, name, folder);
                return;
            }
            var (weights, storedType, config, companions) = CheckpointParts(null, new[] { name });
            CheckpointWriter.WriteFiles(folder, weights, storedType, CheckpointWriter.DefaultMaxShardBytes, config, companions);
        }

        // What a checkpoint of this model holds: the weights (adapters folded in), their dtype, config.json and the companion files.
        (IReadOnlyList<TensorSource> Weights, TorchSharp.torch.ScalarType Type, JsonObject Config, Action<string> Companions) CheckpointParts(
            string? dtype, IReadOnlyCollection<string>? adapters, QuantizationOptions? quantize = null, List<LayerRequantization>? report = null)
        {
            var storedType = dtype is null ? Transformer.DType : ModelDType.Parse(dtype);
            string sourceConfig = System.IO.Path.Combine(Path, "config.json");
            JsonObject config;
            if (_encoder is not null)
            {
                // The architecture and labels of what is written (a bare checkpoint may have been loaded as a classifier).
                config = File.Exists(sourceConfig) ? (JsonObject)JsonNode.Parse(File.ReadAllText(sourceConfig))! : new JsonObject();
                var fresh = (_encoder.Config with { Labels = ClassLabels ?? _encoder.Config.Labels }).ToJson(_encoder.IsSequenceClassification);
                foreach (var key in new[] { "architectures", "id2label", "label2id" })
                    config[key] = fresh[key]!.DeepClone();
            }
            else config = File.Exists(sourceConfig) ? (JsonObject)JsonNode.Parse(File.ReadAllText(sourceConfig))! : Config.ToJson();
            config.Remove("quantization_config");                                 // a quantised source exports dequantised unless asked
            var weights = Adapters.MergedWeights(key => _decoder is not null && Config.TieWordEmbeddings && key == "lm_head.weight", adapters);
            if (quantize is not null)
            {
                // As transformers quantises: every linear layer but the heads.
                var projections = Adapters.SlotsOf().Select(s => s.Name)
                    .Where(n => n is not (DecoderForCausalLM.OutputHeadName or DecoderForCausalLM.ClassificationHeadName)).Select(n => n + ".weight").ToHashSet();
                weights = QuantizedExport.Apply(weights, projections, quantize, report!);
                config["quantization_config"] = BnbQuantizationConfig.ToJson(quantize, storedType);
            }
            void Companions(string staging)
            {
                foreach (var file in CompanionFiles)
                {
                    string source = System.IO.Path.Combine(Path, file);
                    if (!File.Exists(source)) continue;
                    string copy = System.IO.Path.Combine(staging, file);
                    File.Copy(source, copy);
                    IO.AtomicFile.SyncFile(copy);
                }
            }
            return (weights, storedType, config, Companions);
        }
    }
}
