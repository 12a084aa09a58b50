using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using GraLoRA.Adapters;
using static TorchSharp.torch;

namespace GraLoRA.IO
{
    /// <summary>
    /// Adapters on disk as PEFT writes them: adapter_config.json (peft_type GRALORA or LORA with PEFT's field names)
    /// and adapter_model.safetensors (PEFT's keys, adapter name removed), so adapters travel to and from Python.
    /// </summary>
    public static class PeftAdapterFormat
    {
        /// <summary>adapter_config.json.</summary>
        public const string ConfigFile = "adapter_config.json";
        /// <summary>adapter_model.safetensors.</summary>
        public const string WeightsFile = "adapter_model.safetensors";

        /// <summary>adapter_config.json for adapter <paramref name="name"/> of <paramref name="host"/>.</summary>
        public static JsonObject ConfigJson(AdapterHost host, string name) => ConfigJson(host.Config(name), host.Targets(name));

        /// <summary>adapter_config.json for an adapter with config <paramref name="c"/> that adapts the modules <paramref name="targets"/>.</summary>
        public static JsonObject ConfigJson(AdapterConfig c, IReadOnlyList<string> targets)
        {
            // Without exclusions, the user's target spec travels as is; with them, the resolved module names do
            // (GraloraConfig has no exclude_modules, and full names match exactly in PEFT).
            JsonNode? targetModules = c.TargetModulesRegex is { } regex ? JsonValue.Create(regex)
                : c.ExcludeModules is { Count: > 0 } || c.TargetModules is [AdapterConfig.AllLinear]
                    ? ToArray(c.ExcludeModules is { Count: > 0 } ? targets : targets.Select(t => t.Split('.').Last()).Distinct())
                    : ToArray(c.TargetModules ?? AdapterDefaults.TargetModules);
            JsonNode? layers = c.LayersToTransform is { } l && !(c.ExcludeModules is { Count: > 0 }) ? ToArray(l.Select(i => (object)i)) : null;
            JsonNode? pattern = c.LayersPattern is { } p && layers is not null ? ToArray(p) : null;
            JsonNode? save = c.ModulesToSave is { } m ? ToArray(m) : null;
            var json = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
            {
                ["auto_mapping"] = null,
                ["base_model_name_or_path"] = c.BaseModelNameOrPath,
                ["bias"] = c.Bias,
                ["fan_in_fan_out"] = false,
                ["inference_mode"] = true,
                ["layers_pattern"] = pattern,
                ["layers_to_transform"] = layers,
                ["modules_to_save"] = save,
                ["peft_type"] = c.Method == AdapterMethod.GraLoRA ? "GRALORA" : "LORA",
                ["peft_version"] = null,
                ["r"] = c.EffectiveRank,
                ["revision"] = null,
                ["target_modules"] = targetModules,
                ["task_type"] = c.TaskType,
            };
            if (c.Method == AdapterMethod.GraLoRA)
            {
                json["alpha"] = Number(c.EffectiveAlpha);
                json["gralora_dropout"] = c.Dropout;
                json["gralora_k"] = c.EffectiveK;
                json["hybrid_r"] = c.HybridRank;
                json["init_weights"] = c.InitWeights;
                // Extensions PEFT's GraloraConfig does not have: written only when used.
                if (c.RankPattern is { Count: > 0 } rp) json["rank_pattern"] = ToObject(rp);
                if (c.KPattern is { Count: > 0 } kp) json["k_pattern"] = ToObject(kp);
            }
            else
            {
                json["lora_alpha"] = Number(c.EffectiveAlpha);
                json["lora_dropout"] = c.Dropout;
                json["init_lora_weights"] = c.InitWeights;
                json["use_rslora"] = c.UseRsLora;
                json["use_dora"] = false;
                json["rank_pattern"] = ToObject(c.RankPattern ?? new Dictionary<string, int>());
                json["alpha_pattern"] = ToObject(c.AlphaPattern ?? new Dictionary<string, double>());
                json["exclude_modules"] = c.ExcludeModules is { } e ? ToArray(e) : null;
                json["lora_bias"] = false;
                json["layer_replication"] = null;
                json["loftq_config"] = new JsonObject();
                json["megatron_config"] = null;
                json["megatron_core"] = "megatron.core";
                json["target_parameters"] = null;
                json["trainable_token_indices"] = null;
                json["use_qalora"] = false;
                json["qalora_group_size"] = 16;
                foreach (var unused in new[] { "alora_invocation_tokens", "arrow_config", "corda_config", "eva_config", "kasa_config", "lora_ga_config", "monteclora_config", "use_bdlora", "velora_config" })
                    json[unused] = null;
                json["ensure_weight_tying"] = false;
            }
            var result = new JsonObject();
            foreach (var (k, v) in json) result[k] = v;
            return result;
        }

        static JsonNode Number(double value) => value == Math.Floor(value) && Math.Abs(value) < 1e15 ? JsonValue.Create((long)value) : JsonValue.Create(value);
        static JsonArray ToArray(IEnumerable<object> items) => new(items.Select(i => JsonValue.Create(i) as JsonNode).ToArray());
        static JsonArray ToArray(IEnumerable<string> items) => new(items.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray());
        static JsonObject ToObject(IReadOnlyDictionary<string, int> map) { var o = new JsonObject(); foreach (var (k, v) in map) o[k] = v; return o; }
        static JsonObject ToObject(IReadOnlyDictionary<string, double> map) { var o = new JsonObject(); foreach (var (k, v) in map) o[k] = Number(v); return o; }

        /// <summary>
        /// Writes adapter <paramref name="name"/> into <paramref name="folder"/>. The files are staged in a sibling
        /// folder and swapped in at the end; an existing adapter folder is replaced only with <paramref name="overwrite"/>,
        /// and is restored if the swap fails, so a failed save never leaves half-written or lost files.
        /// </summary>
        public static string Save(AdapterHost host, string name, string folder, bool overwrite = false) => Save(host, name, folder, overwrite, null);

        /// <summary><paramref name="afterStaging"/> runs on the staged folder before the swap (tests inject failures there).</summary>
        internal static string Save(AdapterHost host, string name, string folder, bool overwrite, Action<string>? afterStaging) =>
            Save(host.StateDict(name), ConfigJson(host, name), name, folder, overwrite, afterStaging);

        /// <summary>
        /// Writes an adapter given as PEFT-keyed <paramref name="tensors"/> and its <paramref name="config"/> into
        /// <paramref name="folder"/>, staged and swapped in as <see cref="Save(AdapterHost, string, string, bool)"/> does.
        /// </summary>
        public static string Save(IReadOnlyDictionary<string, Tensor> tensors, JsonObject config, string name, string folder, bool overwrite, Action<string>? afterStaging = null)
        {
            string target = Path.GetFullPath(folder);
            OutputTarget.CheckFolder(target, overwrite);
            string parent = Path.GetDirectoryName(target)!;
            try { Directory.CreateDirectory(parent); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new GraloraException("WriteFailed", GraloraErrorKind.IOFailure, $"Could not create '{parent}': {ex.Message}", parent, ex);
            }
            AtomicFile.WriteDirectory(target, staging =>
            {
                WriteFiles(tensors, config, staging);
                afterStaging?.Invoke(staging);
            }, ex => new GraloraException("WriteFailed", GraloraErrorKind.IOFailure, $"Could not save adapter '{name}' to '{target}': {ex.Message}", target, ex));
            return target;
        }

        /// <summary>Writes adapter <paramref name="name"/>'s two files into the existing folder <paramref name="folder"/> (a caller's staging folder).</summary>
        internal static void WriteFiles(AdapterHost host, string name, string folder) => WriteFiles(host.StateDict(name), ConfigJson(host, name), folder);

        static void WriteFiles(IReadOnlyDictionary<string, Tensor> tensors, JsonObject config, string folder)
        {
            Safetensors.Write(Path.Combine(folder, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            Models.CheckpointWriter.WriteJson(Path.Combine(folder, ConfigFile), config);
        }

        /// <summary>Reads adapter_config.json into an <see cref="AdapterConfig"/> (GRALORA or LORA); unsupported settings are named.</summary>
        public static AdapterConfig ReadConfig(string folder)
        {
            string full = Path.GetFullPath(folder);
            string path = Path.Combine(full, ConfigFile);
            if (!Directory.Exists(full))
                throw new GraloraException("AdapterFolderNotFound", GraloraErrorKind.NotFound, $"Adapter folder '{full}' does not exist.", full);
            if (!File.Exists(path))
                throw new GraloraException("AdapterConfigNotFound", GraloraErrorKind.NotFound, $"'{full}' has no {ConfigFile}: is it a PEFT adapter folder?", path);
            UntrustedFiles.ResolveInside(full, ConfigFile, full, "AdapterFileOutsideFolder");
            using (var doc = UntrustedFiles.ParseObject(path, "InvalidAdapterConfig", "PEFT adapter config"))
            {
                var root = doc.RootElement;
                GraloraException Bad(string field, string problem) =>
                    new("InvalidAdapterConfig", GraloraErrorKind.InvalidData, $"'{path}': {field} {problem}.", path);
                UntrustedFiles.RefuseDuplicateKeys(root, key => Bad(key, "appears twice"));
                JsonElement? Get(string name) => root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;
                string? Str(string name) => UntrustedFiles.String(root, name, Bad);
                string peftType = Str("peft_type") ?? throw Bad("peft_type", "is missing");
                var method = peftType switch
                {
                    "GRALORA" => AdapterMethod.GraLoRA,
                    "LORA" => AdapterMethod.LoRA,
                    _ => throw new GraloraException("UnsupportedPeftType", GraloraErrorKind.InvalidData,
                        $"'{path}' is a {peftType} adapter; GRALORA and LORA adapters are supported.", peftType),
                };
                if (Get("fan_in_fan_out") is { ValueKind: JsonValueKind.True }) throw Bad("fan_in_fan_out", "is true (Conv1D models such as GPT-2 are not supported)");
                if (Get("use_dora") is { ValueKind: JsonValueKind.True }) throw Bad("use_dora", "is true (DoRA is not supported)");
                if (method == AdapterMethod.GraLoRA && Get("alpha_pattern") is { ValueKind: JsonValueKind.Object } ap && ap.EnumerateObject().Any())
                    throw Bad("alpha_pattern", "is set on a GRALORA adapter (PEFT's GraloraConfig has no per-module alpha)");
                int Int(string field, int fallback) => Get(field) is { } v ? UntrustedFiles.Int(v, field, Bad) : fallback;
                double Num(string field, double fallback) => Get(field) is { } v ? (v.ValueKind == JsonValueKind.Number && double.IsFinite(v.GetDouble()) ? v.GetDouble() : throw Bad(field, "is not a number")) : fallback;
                IReadOnlyList<string>? Strings(string field) => Get(field) is { } v
                    ? v.ValueKind == JsonValueKind.String ? new[] { v.GetString()! }
                      : v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Bad(field, "has a non-string entry")).ToArray()
                      : throw Bad(field, "is neither a string nor a list")
                    : null;
                IReadOnlyDictionary<string, int>? Map(string field)
                {
                    if (Get(field) is not { } v) return null;
                    if (v.ValueKind != JsonValueKind.Object) throw Bad(field, "is not an object of module name → whole number");
                    UntrustedFiles.RefuseDuplicateKeys(v, key => Bad(field + "." + key, "appears twice"));
                    return v.EnumerateObject().Any() ? v.EnumerateObject().ToDictionary(p => p.Name, p => UntrustedFiles.Int(p.Value, field + "." + p.Name, Bad)) : null;
                }
                IReadOnlyDictionary<string, double>? Alphas(string field)
                {
                    if (Get(field) is not { } v) return null;
                    if (v.ValueKind != JsonValueKind.Object) throw Bad(field, "is not an object of module name → number");
                    UntrustedFiles.RefuseDuplicateKeys(v, key => Bad(field + "." + key, "appears twice"));
                    return v.EnumerateObject().Any()
                        ? v.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.Number && double.IsFinite(p.Value.GetDouble()) ? p.Value.GetDouble() : throw Bad(field + "." + p.Name, "is not a number"))
                        : null;
                }
                var targets = Get("target_modules");
                IReadOnlyList<int>? layers = Get("layers_to_transform") is { } lt
                    ? lt.ValueKind == JsonValueKind.Number ? new[] { UntrustedFiles.Int(lt, "layers_to_transform", Bad) }
                      : lt.ValueKind == JsonValueKind.Array ? lt.EnumerateArray().Select(e => UntrustedFiles.Int(e, "layers_to_transform", Bad)).ToArray()
                      : throw Bad("layers_to_transform", "is neither a whole number nor a list of them")
                    : null;
                if (targets is { } tm && tm.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
                    throw Bad("target_modules", "is neither a string nor a list");
                bool initWeights = Get(method == AdapterMethod.GraLoRA ? "init_weights" : "init_lora_weights") is not { ValueKind: JsonValueKind.False };
                return new AdapterConfig
                {
                    Method = method,
                    Rank = Int("r", AdapterDefaults.Rank(method)),
                    K = method == AdapterMethod.GraLoRA ? Int("gralora_k", AdapterDefaults.GraloraK) : null,
                    HybridRank = method == AdapterMethod.GraLoRA ? Int("hybrid_r", 0) : 0,
                    Alpha = Num(method == AdapterMethod.GraLoRA ? "alpha" : "lora_alpha", AdapterDefaults.Alpha(method)),
                    Dropout = Num(method == AdapterMethod.GraLoRA ? "gralora_dropout" : "lora_dropout", 0),
                    TargetModulesRegex = targets is { ValueKind: JsonValueKind.String } t && t.GetString() != AdapterConfig.AllLinear ? t.GetString() : null,
                    TargetModules = targets is { ValueKind: JsonValueKind.String } t2 && t2.GetString() == AdapterConfig.AllLinear ? new[] { AdapterConfig.AllLinear }
                        : targets is { ValueKind: JsonValueKind.Array } ? Strings("target_modules") : null,
                    ExcludeModules = Strings("exclude_modules"),
                    LayersToTransform = layers,
                    LayersPattern = Strings("layers_pattern"),
                    ModulesToSave = Strings("modules_to_save"),
                    Bias = Str("bias") ?? "none",
                    RankPattern = Map("rank_pattern"),
                    KPattern = method == AdapterMethod.GraLoRA ? Map("k_pattern") : null,
                    AlphaPattern = method == AdapterMethod.LoRA ? Alphas("alpha_pattern") : null,
                    InitWeights = initWeights,
                    UseRsLora = Get("use_rslora") is { ValueKind: JsonValueKind.True },
                    BaseModelNameOrPath = Str("base_model_name_or_path"),
                    TaskType = Str("task_type") ?? "CAUSAL_LM",
                };
            }
        }

        /// <summary>
        /// Adds the adapter saved in <paramref name="folder"/> (by PEFT or by us) to <paramref name="host"/> as
        /// <paramref name="name"/> and loads its tensors; on any failure the half-added adapter is removed again.
        /// </summary>
        public static AdapterConfig Load(AdapterHost host, string folder, string name)
        {
            var config = ReadConfig(folder);
            string weights = UntrustedFiles.ResolveInside(folder, WeightsFile, Path.GetFullPath(folder), "AdapterFileOutsideFolder");
            if (!File.Exists(weights))
            {
                UntrustedFiles.RefusePickledInstead(Path.GetFullPath(folder), WeightsFile, "adapter_model.bin", "adapter_model.pt", "adapter_model.pth");
                throw new GraloraException("AdapterWeightsNotFound", GraloraErrorKind.NotFound,
                    $"'{folder}' has {ConfigFile} but no {WeightsFile}.", weights);
            }
            var tensors = Safetensors.Read(weights);
            try
            {
                host.Add(name, config);
                try { host.LoadStateDict(name, tensors, weights); }
                catch
                {
                    host.Remove(name);
                    throw;
                }
                return config;
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }
    }
}
