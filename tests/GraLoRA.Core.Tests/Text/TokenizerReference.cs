using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;

namespace GraLoRA.Tests
{
    /// <summary>Ids and decoded strings from transformers.js (@lenml/tokenizers) via tests/reference/encode-tokenizer.mjs.</summary>
    internal sealed record TokenizerReference(int[][] IdsWithSpecials, int[][] IdsWithoutSpecials, string[] DecodedSkipping, string[] DecodedKeeping)
    {
        /// <summary>
        /// Two Node runs: encode <paramref name="texts"/> with special tokens and decode <paramref name="decodeInputs"/>
        /// skipping them; then encode without and decode keeping them. Decoding uses the config's clean-up setting.
        /// </summary>
        public static TokenizerReference Compute(string tokenizerJson, string tokenizerConfig, IReadOnlyList<string> texts, IReadOnlyList<int[]> decodeInputs)
        {
            var (withIds, skipping) = Run(tokenizerJson, tokenizerConfig, texts, decodeInputs, special: true);
            var (withoutIds, keeping) = Run(tokenizerJson, tokenizerConfig, texts, decodeInputs, special: false);
            return new TokenizerReference(withIds, withoutIds, skipping, keeping);
        }

        static (int[][] Ids, string[] Decoded) Run(string tokenizerJson, string tokenizerConfig, IReadOnlyList<string> texts, IReadOnlyList<int[]> decodeInputs, bool special)
        {
            string input = JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["tokenizerJson"] = tokenizerJson,
                ["tokenizerConfig"] = tokenizerConfig,
                ["texts"] = texts,
                ["addSpecialTokens"] = special,
                ["decode"] = decodeInputs,
                ["skipSpecialTokens"] = special,
            });
            string output = ReferenceTools.RunNode("encode-tokenizer.mjs", input);
            using var doc = JsonDocument.Parse(output);
            var ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(a => a.EnumerateArray().Select(i => i.GetInt32()).ToArray()).ToArray();
            var decoded = doc.RootElement.GetProperty("decoded").EnumerateArray().Select(s => s.GetString()!).ToArray();
            if (ids.Length != texts.Count || decoded.Length != decodeInputs.Count)
                throw new InvalidOperationException($"encode-tokenizer.mjs answered {ids.Length} encodings and {decoded.Length} decodings for {texts.Count} and {decodeInputs.Count}");
            return (ids, decoded);
        }

        /// <summary>Shows a string with its invisible characters escaped, for failure messages.</summary>
        public static string Show(string s) => JsonSerializer.Serialize(s, ShowOptions);

        static readonly JsonSerializerOptions ShowOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

        public static string Show(IEnumerable<int> ids) => "[" + string.Join(",", ids) + "]";
    }
}
