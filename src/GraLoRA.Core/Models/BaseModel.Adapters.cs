using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using GraLoRA.Adapters;
using GraLoRA.IO;

namespace GraLoRA.Models
{
    public sealed partial class BaseModel
    {
        AdapterHost? _adapters;

        /// <summary>The model's adapters (inject, switch, merge, save).</summary>
        public AdapterHost Adapters => _adapters ??= new AdapterHost(Module, DecoderForCausalLM.OutputHeadName);

        /// <summary>Files copied beside an exported checkpoint when the source folder has them.</summary>
        public static readonly string[] CompanionFiles =
        {
            "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
            "tokenizer.model", "vocab.json", "merges.txt",
        };

        /// <summary>Adds adapter <paramref name="name"/> (base_model_name_or_path defaults to this model's name); returns the adapted modules.</summary>
        public IReadOnlyList<string> AddAdapter(string name, AdapterConfig config) =>
            Adapters.Add(name, config.BaseModelNameOrPath is null ? config with { BaseModelNameOrPath = Name } : config);

        /// <summary>Saves adapter <paramref name="name"/> in PEFT's format; returns the folder.</summary>
        public string SaveAdapter(string name, string folder, bool overwrite = false) => PeftAdapterFormat.Save(Adapters, name, folder, overwrite);

        /// <summary>Loads a PEFT adapter folder as adapter <paramref name="name"/> (made the active one).</summary>
        public AdapterConfig LoadAdapter(string folder, string name = AdapterConfig.DefaultName)
        {
            // An adapter trained for classification carries its head ("score") as a module to save: give the model a
            // head of the saved size first, so the adapter has somewhere to go.
            var config = PeftAdapterFormat.ReadConfig(folder);
            string weights = System.IO.Path.Combine(System.IO.Path.GetFullPath(folder), PeftAdapterFormat.WeightsFile);
            string headKey = AdapterHost.KeyPrefix + DecoderForCausalLM.ClassificationHeadName + ".weight";
            if (Module.ClassificationLabels == 0 && config.ModulesToSave?.Contains(DecoderForCausalLM.ClassificationHeadName) == true && File.Exists(weights)
                && Safetensors.ReadHeader(weights).Entries.TryGetValue(headKey, out var head))
                Module.AttachClassificationHead((int)head.Shape[0]);
            return PeftAdapterFormat.Load(Adapters, folder, name);
        }

        /// <summary>
        /// Prepares adapter <paramref name="adapter"/> for text + label data: adds a classification head for
        /// <paramref name="labels"/> labels (unless one of that size exists) and makes it a module to save of the adapter.
        /// </summary>
        public void PrepareClassification(string adapter, int labels)
        {
            if (Module.ClassificationLabels == 0) Module.AttachClassificationHead(labels);
            else if (Module.ClassificationLabels != labels)
                throw new GraloraException("ClassificationHeadMismatch", GraloraErrorKind.InvalidArgument,
                    $"The model's classification head has {Module.ClassificationLabels} labels but the data has {labels}.", labels);
            Adapters.AddModuleToSave(adapter, DecoderForCausalLM.ClassificationHeadName);
        }

        /// <summary>
        /// Writes the model as a Hugging Face checkpoint with its active adapters merged in: the source config.json with
        /// torch_dtype updated, safetensors (sharded above <paramref name="maxShardBytes"/>), and the generation and
        /// tokenizer files copied. The folder appears only when complete. Returns its full path.
        /// </summary>
        public string Export(string folder, string? dtype = null, long maxShardBytes = CheckpointWriter.DefaultMaxShardBytes)
        {
            var storedType = dtype is null ? Module.DType : ModelDType.Parse(dtype);
            string sourceConfig = System.IO.Path.Combine(Path, "config.json");
            var config = File.Exists(sourceConfig) ? (JsonObject)JsonNode.Parse(File.ReadAllText(sourceConfig))! : Config.ToJson();
            var weights = Adapters.MergedWeights(key => Config.TieWordEmbeddings && key == "lm_head.weight");
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
            });
            return System.IO.Path.GetFullPath(folder);
        }
    }
}
