using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA.IO;
using GraLoRA.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>Loads Hugging Face checkpoint folders (config.json + single or sharded safetensors).</summary>
    public static class CheckpointLoader
    {
        /// <summary>
        /// Builds the model for <paramref name="folder"/> directly in <paramref name="dtype"/> (default: the
        /// checkpoint's own torch_dtype) on <paramref name="device"/> (default CPU), then copies every weight into
        /// it one tensor at a time, converting as it goes; each file tensor is disposed after its copy, so at most
        /// the model plus one file tensor is ever held. A missing or mis-shaped tensor names the key; on any
        /// failure the partly loaded model is disposed.
        /// </summary>
        /// <remarks>
        /// With <paramref name="quantize"/>, each decoder layer's linear weight is quantised right after it is read (the
        /// full-precision tensor is freed before the next), so the peak is the quantised model plus one tensor; a checkpoint
        /// saved quantised by bitsandbytes (quantization_config in config.json) is read as stored. Embeddings, norms and the
        /// output head stay in <paramref name="dtype"/>, as transformers leaves them.
        /// </remarks>
        public static DecoderForCausalLM LoadDecoder(string folder, ScalarType? dtype = null, Device? device = null, QuantizationOptions? quantize = null)
        {
            TorchRuntime.EnsureInitialized();
            if (!Directory.Exists(folder))
                throw new GraloraException("ModelFolderNotFound", GraloraErrorKind.NotFound, $"Model folder '{folder}' does not exist.", folder);
            UntrustedFiles.ResolveInside(folder, "config.json", Path.GetFullPath(folder), "ConfigOutsideFolder");
            var config = DecoderConfig.Load(Path.Combine(folder, "config.json"));
            var files = WeightFiles(folder);
            var targetType = dtype ?? CheckpointDType(config, files);
            device ??= CPU;
            ModelDType.EnsureSupported(targetType, device);
            var plan = QuantizationPlan.Resolve(config, quantize, dtype, targetType, folder);
            if (plan is not null) ModelDType.EnsureSupported(plan.ComputeDType, device);
            var model = DecoderForCausalLM.Uninitialized(config, targetType, device, plan?.ComputeDType);
            try
            {
                if (plan?.Stored is { } stored) QuantizedLoading.KeepSkippedPlain(model, stored);
                var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
                var expected = new HashSet<string>(parameters.Keys);
                if (config.TieWordEmbeddings) expected.Remove("lm_head.weight");
                LoadTensors(files, parameters.Keys.ToDictionary(k => k, StringComparer.Ordinal), parameters, expected, config.ModelType);
                if (plan is not null) QuantizedLoading.Load(model, plan, files, folder);
                if (expected.Count > 0) throw TensorMissing(folder, expected);
                model.eval();
                return model;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Loads a BERT or RoBERTa folder as <paramref name="task"/> (Auto: what config.json's architectures say). As
        /// transformers' from_pretrained, keys of a bare checkpoint load into the classifier's "bert."/"roberta." backbone
        /// and the other way round; a pooler the model does not have is ignored; a classifier the checkpoint lacks is
        /// initialised fresh (normal(0, 0.02), biases 0) and reported in <paramref name="newHead"/>. <paramref name="labels"/>
        /// replaces the config's label names (their count is the head's size); a checkpoint head of another size fails.
        /// </summary>
        public static EncoderModel LoadEncoder(string folder, EncoderTask task, IReadOnlyList<string>? labels, ScalarType? dtype, Device? device, out bool newHead)
        {
            TorchRuntime.EnsureInitialized();
            if (!Directory.Exists(folder))
                throw new GraloraException("ModelFolderNotFound", GraloraErrorKind.NotFound, $"Model folder '{folder}' does not exist.", folder);
            var config = EncoderConfig.Load(Path.Combine(folder, "config.json"));
            if (labels is not null)
            {
                if (labels.Count < 2 || labels.Distinct(StringComparer.Ordinal).Count() != labels.Count)
                    throw new GraloraException("InvalidClassLabels", GraloraErrorKind.InvalidArgument,
                        $"Labels ({string.Join(", ", labels)}) must be at least two distinct names, e.g. -Labels ham,spam.", string.Join(",", labels));
                config = config with { Labels = labels.ToArray() };
            }
            bool classification = task switch { EncoderTask.Auto => config.IsSequenceClassification, EncoderTask.SequenceClassification => true, _ => false };
            var files = WeightFiles(folder);
            var targetType = dtype ?? CheckpointDType(config.TorchDtype, files);
            device ??= CPU;
            ModelDType.EnsureSupported(targetType, device);
            var model = EncoderModel.Uninitialized(config, classification, targetType, device);
            try
            {
                var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
                string prefix = model.BackbonePrefix, otherPrefix = config.ModelType + ".";
                // The checkpoint's key for each model key: as is, else with the backbone prefix added or removed.
                var keys = new Dictionary<string, string>(StringComparer.Ordinal);
                var stored = files.SelectMany(f => Safetensors.ReadHeader(f).Entries.Keys).ToHashSet(StringComparer.Ordinal);
                foreach (var name in parameters.Keys)
                {
                    string? candidate = stored.Contains(name) ? name
                        : prefix.Length > 0 && name.StartsWith(prefix, StringComparison.Ordinal) && stored.Contains(name[prefix.Length..]) ? name[prefix.Length..]
                        : prefix.Length == 0 && stored.Contains(otherPrefix + name) ? otherPrefix + name
                        : null;
                    if (candidate is not null) keys[candidate] = name;
                }
                var expected = new HashSet<string>(parameters.Keys);
                LoadTensors(files, keys, parameters, expected, config.ModelType);
                var headMissing = expected.Where(k => k.StartsWith(EncoderModel.ClassificationHeadName + ".", StringComparison.Ordinal)).ToList();
                newHead = classification && headMissing.Count > 0;
                if (newHead && headMissing.Count == expected.Count) { model.InitializeHead(); expected.Clear(); }
                if (expected.Count > 0) throw TensorMissing(folder, expected);
                model.eval();
                return model;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }

        static GraloraException TensorMissing(string folder, HashSet<string> expected) =>
            new("TensorMissing", GraloraErrorKind.InvalidData,
                $"Model folder '{folder}' lacks tensor(s): {string.Join(", ", expected.OrderBy(n => n).Take(5))}{(expected.Count > 5 ? ", …" : "")}.", expected.First());

        /// <summary>Copies each stored tensor named in <paramref name="keys"/> (file key → parameter name) into its parameter, checking shapes, and removes it from <paramref name="expected"/>; on the CPU in the file's dtype the bytes go straight into the parameter, otherwise one tensor is staged and converted by copy_.</summary>
        static void LoadTensors(IReadOnlyList<string> files, IReadOnlyDictionary<string, string> keys, IReadOnlyDictionary<string, TorchSharp.Modules.Parameter> parameters,
                                HashSet<string> expected, string modelType)
        {
            using var _ = no_grad();
            foreach (var file in files)
            {
                var (entries, _, dataStart) = Safetensors.ReadHeader(file);
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
                foreach (var entry in entries.Values.OrderBy(e => e.Begin))
                {
                    if (!keys.TryGetValue(entry.Name, out var name) || !parameters.TryGetValue(name, out var target)) continue;
                    if (target.is_floating_point() && !is_floating_point(Safetensors.TypeOf(entry.DType)))
                        throw new GraloraException("QuantizedTensorUnexpected", GraloraErrorKind.InvalidData,
                            $"Tensor '{entry.Name}' in '{file}' is stored as {entry.DType}: quantised embeddings, norms and output heads are not implemented (only the decoder layers' linear weights load quantised, as bitsandbytes' default). {Quantization.QuantizationOptions.NotImplemented}", entry.Name);
                    if (!target.shape.SequenceEqual(entry.Shape))
                        throw new GraloraException(name.StartsWith(EncoderModel.ClassificationHeadName + ".", StringComparison.Ordinal) ? "ClassificationHeadMismatch" : "TensorShapeMismatch",
                            GraloraErrorKind.InvalidData,
                            $"Tensor '{entry.Name}' in '{file}' has shape [{string.Join(", ", entry.Shape)}] but the {modelType} config needs [{string.Join(", ", target.shape)}]" +
                            (name.StartsWith(EncoderModel.ClassificationHeadName + ".", StringComparison.Ordinal) ? ": the checkpoint's head has another number of labels than asked (-NumLabels/-Labels)." : "."), entry.Name);
                    if (target.device_type == DeviceType.CPU && target.dtype == Safetensors.TypeOf(entry.DType) && target.is_contiguous())
                        Safetensors.ReadInto(stream, dataStart, entry, target);
                    else
                        using (var staged = Safetensors.ReadTensor(stream, dataStart, entry))
                            target.copy_(staged);
                    expected.Remove(name);
                }
            }
        }

        /// <summary>The checkpoint's own dtype: config torch_dtype, else the dtype of its first floating tensor.</summary>
        static ScalarType CheckpointDType(DecoderConfig config, IReadOnlyList<string> files) => CheckpointDType(config.TorchDtype, files);

        static ScalarType CheckpointDType(string? declaredType, IReadOnlyList<string> files)
        {
            if (declaredType is { } declared && declared != "auto") return ModelDType.Parse(declared, "config.json torch_dtype");
            var stored = Safetensors.ReadHeader(files[0]).Entries.Values.Select(e => e.DType).FirstOrDefault(d => d is "F32" or "BF16" or "F16");
            return stored switch { "BF16" => ScalarType.BFloat16, "F16" => ScalarType.Float16, _ => ScalarType.Float32 };
        }

        /// <summary>
        /// model.safetensors, or the shards listed by model.safetensors.index.json. Names that leave the folder ('..',
        /// absolute paths, symbolic links to elsewhere) are refused, and so are pickled weights (pytorch_model.bin).
        /// </summary>
        public static IReadOnlyList<string> WeightFiles(string folder)
        {
            string root = Path.GetFullPath(folder);
            string single = Path.Combine(root, "model.safetensors");
            if (File.Exists(single)) return new[] { UntrustedFiles.ResolveInside(root, "model.safetensors", root, "WeightsOutsideFolder") };
            string index = Path.Combine(root, "model.safetensors.index.json");
            if (!File.Exists(index))
            {
                UntrustedFiles.RefusePickledInstead(root, "model.safetensors", "pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth", "consolidated.00.pth");
                throw new GraloraException("WeightsNotFound", GraloraErrorKind.NotFound,
                    $"Model folder '{folder}' has neither model.safetensors nor model.safetensors.index.json.", folder);
            }
            UntrustedFiles.ResolveInside(root, "model.safetensors.index.json", root, "WeightsOutsideFolder");
            GraloraException Bad(string field, string problem) =>
                new("InvalidShardIndex", GraloraErrorKind.InvalidData, $"'{index}': field '{field}' {problem}.", index);
            using var doc = UntrustedFiles.ParseObject(index, "InvalidShardIndex", "shard index");
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw Bad("weight_map", "is missing or not an object of tensor name → shard file");
            UntrustedFiles.RefuseDuplicateKeys(map, key => Bad("weight_map." + key, "appears twice"));
            var files = map.EnumerateObject()
                .Select(p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw Bad("weight_map." + p.Name, "is not a file name"))
                .Distinct().ToList();
            if (files.Count == 0) throw Bad("weight_map", "is empty");
            var paths = new List<string>();
            foreach (var f in files)
            {
                string full = UntrustedFiles.ResolveInside(root, f, index, "ShardOutsideFolder");
                if (!File.Exists(full))
                    throw new GraloraException("ShardNotFound", GraloraErrorKind.NotFound, $"Shard '{f}' listed in '{index}' does not exist.", full);
                paths.Add(full);
            }
            return paths;
        }
    }
}
