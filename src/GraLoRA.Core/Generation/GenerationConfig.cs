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
            using (var doc = IO.UntrustedFiles.ParseObject(path, "InvalidGenerationConfig", "generation config"))
            {
                var root = doc.RootElement;
                GraloraException Bad(string field, string problem) =>
                    new("InvalidGenerationConfig", GraloraErrorKind.InvalidData, $"'{path}': field '{field}' {problem}.", path);
                double? Num(string name) => !root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
                    : v.ValueKind == JsonValueKind.Number && double.IsFinite(v.GetDouble()) ? v.GetDouble() : throw Bad(name, "is not a number");
                int? Whole(string name) => Num(name) is { } d ? (d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue ? (int)d : throw Bad(name, "is not a whole number")) : null;
                bool? Flag(string name) => !root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
                    : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Bad(name, "is not true or false");
                IReadOnlyList<int>? Ids(string name) => !root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
                    : v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => IO.UntrustedFiles.Int(e, name, Bad)).ToArray()
                    : new[] { IO.UntrustedFiles.Int(v, name, Bad) };
                var pad = Ids("pad_token_id");
                return options with
                {
                    DoSample = Flag("do_sample") ?? options.DoSample,
                    Temperature = Num("temperature") ?? options.Temperature,
                    TopK = Whole("top_k") ?? options.TopK,
                    TopP = Num("top_p") ?? options.TopP,
                    RepetitionPenalty = Num("repetition_penalty") ?? options.RepetitionPenalty,
                    MaxNewTokens = Whole("max_new_tokens") ?? options.MaxNewTokens,
                    EosTokenIds = Ids("eos_token_id") ?? options.EosTokenIds,
                    PadTokenId = pad is { Count: > 0 } ? pad[0] : options.PadTokenId,
                };
            }
        }
    }
}
