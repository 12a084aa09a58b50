using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using GraLoRA.Adapters;
using GraLoRA.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>Writes models as Hugging Face checkpoint folders (config.json + single or sharded safetensors).</summary>
    public static class CheckpointWriter
    {
        /// <summary>transformers' default shard size (5 GB).</summary>
        public const long DefaultMaxShardBytes = 5_000_000_000;

        /// <summary>
        /// Writes <paramref name="model"/> as a checkpoint: its weights with any active adapters merged in (see
        /// <see cref="AdapterHost.MergedWeights"/>; a tied lm_head omitted, as transformers does) and config.json.
        /// </summary>
        public static void Save(DecoderForCausalLM model, string folder, ScalarType? dtype = null, long maxShardBytes = DefaultMaxShardBytes,
                                JsonObject? config = null, Action<string>? writeExtras = null, AdapterHost? adapters = null, bool overwrite = false)
        {
            adapters ??= new AdapterHost(model, DecoderForCausalLM.OutputHeadName);
            var weights = adapters.MergedWeights(name => model.Config.TieWordEmbeddings && name == "lm_head.weight");
            SaveFolder(folder, weights, dtype ?? model.DType, maxShardBytes, config ?? model.Config.ToJson(), writeExtras, overwrite);
        }

        /// <summary>
        /// Writes <paramref name="weights"/> and <paramref name="config"/> (torch_dtype set to the stored dtype) into
        /// <paramref name="folder"/>, which must not exist or be empty unless <paramref name="overwrite"/> (see
        /// <see cref="OutputTarget"/>; the old folder is then replaced in one swap). Everything is written into a temporary sibling
        /// folder that is renamed into place at the end, so a failure never leaves a half-written checkpoint.
        /// Weights larger than <paramref name="maxShardBytes"/> are split into model-0000i-of-0000n.safetensors
        /// with a model.safetensors.index.json. <paramref name="writeExtras"/> receives the staging folder to add files
        /// (tokenizer, generation config) that are renamed into place together with the weights.
        /// </summary>
        public static void SaveFolder(string folder, IReadOnlyList<TensorSource> weights, ScalarType storedType, long maxShardBytes,
                                      JsonObject config, Action<string>? writeExtras = null, bool overwrite = false)
        {
            if (maxShardBytes < 1)
                throw new GraloraException("InvalidShardSize", GraloraErrorKind.InvalidArgument, $"Shard size {maxShardBytes} must be at least 1 byte.", maxShardBytes);
            string target = Path.GetFullPath(folder);
            OutputTarget.CheckFolder(target, overwrite);
            string parent = Path.GetDirectoryName(target)!;
            Directory.CreateDirectory(parent);
            string staging = Path.Combine(parent, "." + Path.GetFileName(target) + "." + Guid.NewGuid().ToString("N") + ".partial");
            Directory.CreateDirectory(staging);
            try
            {
                WriteFiles(staging, weights, storedType, maxShardBytes, config, writeExtras);
                AtomicFile.ReplaceDirectory(staging, target);
            }
            catch
            {
                try { Directory.Delete(staging, true); } catch (IOException) { }
                throw;
            }
        }

        /// <summary>
        /// Writes a checkpoint's files into the existing folder <paramref name="folder"/> (a caller's staging folder): the
        /// weights, config.json with torch_dtype set, and what <paramref name="writeExtras"/> adds.
        /// </summary>
        public static void WriteFiles(string folder, IReadOnlyList<TensorSource> weights, ScalarType storedType, long maxShardBytes,
                                      JsonObject config, Action<string>? writeExtras = null)
        {
            WriteWeights(folder, weights, storedType, maxShardBytes);
            config["torch_dtype"] = ModelDType.Name(storedType);
            WriteJson(Path.Combine(folder, "config.json"), config);
            writeExtras?.Invoke(folder);
        }

        /// <summary>Writes tensors as one model.safetensors, or as shards plus an index when they exceed <paramref name="maxShardBytes"/>.</summary>
        public static void WriteWeights(string folder, IReadOnlyDictionary<string, Tensor> weights, ScalarType storedType, long maxShardBytes) =>
            WriteWeights(folder, weights.Select(kv => new TensorSource(kv.Key, kv.Value.shape, kv.Value.dtype, () => kv.Value)).ToList(), storedType, maxShardBytes);

        /// <summary>As above, from tensor sources whose values are produced (and released) one at a time.</summary>
        public static void WriteWeights(string folder, IReadOnlyList<TensorSource> weights, ScalarType storedType, long maxShardBytes)
        {
            var metadata = new Dictionary<string, string> { ["format"] = "pt" };
            long Bytes(TensorSource t) => t.Shape.Aggregate(1L, (a, d) => a * d) * Safetensors.ElementSize(t.StoredType(storedType));

            // Shards in key order, a new one whenever the next tensor would overflow (a single oversized tensor gets its own).
            var shards = new List<List<TensorSource>> { new() };
            long current = 0, total = 0;
            foreach (var t in weights.OrderBy(w => w.Name, StringComparer.Ordinal))
            {
                long size = Bytes(t);
                if (current > 0 && current + size > maxShardBytes) { shards.Add(new()); current = 0; }
                shards[^1].Add(t);
                current += size;
                total += size;
            }
            if (shards.Count == 1)
            {
                Safetensors.Write(Path.Combine(folder, "model.safetensors"), shards[0], metadata, storedType);
                return;
            }
            var weightMap = new JsonObject();
            for (int i = 0; i < shards.Count; i++)
            {
                string file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                Safetensors.Write(Path.Combine(folder, file), shards[i], metadata, storedType);
                foreach (var t in shards[i]) weightMap[t.Name] = file;
            }
            var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
            WriteJson(Path.Combine(folder, "model.safetensors.index.json"), index);
        }

        /// <summary>Writes indented JSON atomically.</summary>
        public static void WriteJson(string path, JsonNode node) =>
            AtomicFile.Write(path, stream =>
            {
                using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
                node.WriteTo(writer);
            });
    }
}
