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

        /// <summary>Saves adapter <paramref name="name"/> in PEFT's format; returns the folder.</summary>
        public string SaveAdapter(string name, string folder, bool overwrite = false) => PeftAdapterFormat.Save(Adapters, name, folder, overwrite);

        /// <summary>Loads a PEFT adapter folder as adapter <paramref name="name"/> (made the active one).</summary>
        public AdapterConfig LoadAdapter(string folder, string name = AdapterConfig.DefaultName)
        {
            // An adapter trained for classification carries its head ("score"/"classifier") as a module to save: give a
            // decoder a head of the saved size first, so the adapter has somewhere to go; an encoder must have been
            // loaded with its head.
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
        public string Export(string folder, string? dtype = null, long maxShardBytes = CheckpointWriter.DefaultMaxShardBytes, bool overwrite = false)
        {
            Write(folder, dtype, maxShardBytes, overwrite, null, null);
            return System.IO.Path.GetFullPath(folder);
        }

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
            Write(folder, dtype, maxShardBytes, overwrite, quantize, report);
            return report;
        }

        void Write(string folder, string? dtype, long maxShardBytes, bool overwrite, QuantizationOptions? quantize, List<LayerRequantization>? report)
        {
            IO.OutputTarget.CheckFolder(folder, overwrite);
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
            var weights = Adapters.MergedWeights(key => _decoder is not null && Config.TieWordEmbeddings && key == "lm_head.weight");
            if (quantize is not null)
            {
                // As transformers quantises: every linear layer but the heads.
                var projections = Adapters.SlotsOf().Select(s => s.Name)
                    .Where(n => n is not (DecoderForCausalLM.OutputHeadName or DecoderForCausalLM.ClassificationHeadName)).Select(n => n + ".weight").ToHashSet();
                weights = QuantizedExport.Apply(weights, projections, quantize, report!);
                config["quantization_config"] = BnbQuantizationConfig.ToJson(quantize, storedType);
            }
            CheckpointWriter.SaveFolder(folder, weights, storedType, maxShardBytes, config, staging =>
            {
                foreach (var file in CompanionFiles)
                {
                    string source = System.IO.Path.Combine(Path, file);
                    if (!File.Exists(source)) continue;
                    string copy = System.IO.Path.Combine(staging, file);
                    File.Copy(source, copy);
                    IO.AtomicFile.SyncFile(copy);
                }
            }, overwrite);
        }
    }
}
