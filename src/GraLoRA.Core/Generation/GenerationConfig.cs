using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA.Models;

namespace GraLoRA.Generation
{
    /// <summary>Reads generation_config.json into the defaults a model generates with.</summary>
    public static class GenerationConfig
    {
        /// <summary>
        /// The model's generation defaults: generation_config.json when present (missing fields take
        /// transformers' GenerationConfig defaults, e.g. top_k 50), EOS ids from it or else from config.json.
        /// </summary>
        public static GenerationOptions Load(string? path, DecoderConfig config)
        {
            var options = new GenerationOptions { TopK = 50, EosTokenIds = config.EosTokenIds };
            if (path is null || !File.Exists(path)) return options;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
            catch (JsonException ex)
            {
                throw new GraloraException("InvalidGenerationConfig", GraloraErrorKind.InvalidData, $"'{path}' is not valid JSON: {ex.Message}", path, ex);
            }
            using (doc)
            {
                var root = doc.RootElement;
                double? Num(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
                bool? Flag(string name) => root.TryGetProperty(name, out var v) && (v.ValueKind is JsonValueKind.True or JsonValueKind.False) ? v.GetBoolean() : null;
                IReadOnlyList<int>? Ids(string name) => !root.TryGetProperty(name, out var v) ? null
                    : v.ValueKind == JsonValueKind.Number ? new[] { v.GetInt32() }
                    : v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.Number).Select(e => e.GetInt32()).ToArray()
                    : null;
                var pad = Ids("pad_token_id");
                return options with
                {
                    DoSample = Flag("do_sample") ?? options.DoSample,
                    Temperature = Num("temperature") ?? options.Temperature,
                    TopK = (int)(Num("top_k") ?? options.TopK),
                    TopP = Num("top_p") ?? options.TopP,
                    RepetitionPenalty = Num("repetition_penalty") ?? options.RepetitionPenalty,
                    MaxNewTokens = (int)(Num("max_new_tokens") ?? options.MaxNewTokens),
                    EosTokenIds = Ids("eos_token_id") ?? options.EosTokenIds,
                    PadTokenId = pad is { Count: > 0 } ? pad[0] : options.PadTokenId,
                };
            }
        }
    }
}
