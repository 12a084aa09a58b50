using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using GraLoRA.Text;

namespace GraLoRA.Gguf
{
    /// <summary>
    /// A Hugging Face byte-level BPE tokenizer as llama.cpp's GGUF metadata (tokenizer.ggml.*): the vocabulary padded to the
    /// model's embedding rows, token types, merges, special token ids, BOS/EOS insertion and the chat template.
    /// </summary>
    public static class GgufTokenizer
    {
        /// <summary>llama.cpp's token types (llama_token_type).</summary>
        public const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;

        /// <summary>
        /// A pre-tokenizer llama.cpp implements: its name (tokenizer.ggml.pre), the regular expression transformers splits
        /// with (null: ByteLevel's own GPT-2 regex), and whether llama.cpp then looks whole words up before merging
        /// (which must agree with tokenizer.json's ignore_merges).
        /// </summary>
        sealed record PreTokenizer(string Name, string? Regex, bool IgnoreMerges);

        static readonly PreTokenizer[] PreTokenizers =
        {
            new("gpt-2", null, false),
            new("llama-bpe", @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", true),
            new("qwen2", @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", false),
            new("tekken", @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+", true),
        };

        static GraloraException Unsupported(string path, string what) => new("GgufUnsupportedTokenizer", GraloraErrorKind.InvalidArgument,
            $"'{path}': {what}. GGUF export writes byte-level BPE tokenizers whose pre-tokenizer llama.cpp implements ({string.Join(", ", PreTokenizers.Select(p => p.Name))}).", path);

        /// <summary>
        /// Adds the tokenizer.* keys for <paramref name="tokenizer"/> to <paramref name="writer"/>, with
        /// <paramref name="vocabSize"/> tokens (the model's embedding rows; ids the tokenizer lacks become unused [PADn]).
        /// </summary>
        public static void AddTo(GgufWriter writer, HfTokenizer tokenizer, int vocabSize)
        {
            string path = tokenizer.TokenizerJsonPath;
            if (tokenizer.VocabSize > vocabSize)
                throw new GraloraException("GgufVocabularyTooLarge", GraloraErrorKind.InvalidArgument,
                    $"The tokenizer has {tokenizer.VocabSize} tokens but the model only {vocabSize} embedding rows: they do not belong together.", vocabSize);
            var (pre, merges, nonSpecialAdded) = ReadBpe(path);
            var tokens = new string[vocabSize];
            var types = new int[vocabSize];
            for (int id = 0; id < vocabSize; id++)
            {
                string? token = tokenizer.IdToToken(id);
                tokens[id] = token ?? $"[PAD{id}]";
                types[id] = token is null ? Unused : tokenizer.IsSpecial(id) ? Control : nonSpecialAdded.Contains(id) ? UserDefined : Normal;
            }
            writer.Add("tokenizer.ggml.model", "gpt2");
            writer.Add("tokenizer.ggml.pre", pre);
            writer.Add("tokenizer.ggml.tokens", tokens);
            writer.Add("tokenizer.ggml.token_type", types);
            writer.Add("tokenizer.ggml.merges", merges);
            if (tokenizer.BosTokenId is { } bos) writer.Add("tokenizer.ggml.bos_token_id", (uint)bos);
            if (tokenizer.EosToken is { } eosText && tokenizer.TokenToId(eosText) is { } eos) writer.Add("tokenizer.ggml.eos_token_id", (uint)eos);
            if (tokenizer.PadTokenId is { } pad) writer.Add("tokenizer.ggml.padding_token_id", (uint)pad);
            // What encoding with special tokens really adds (post-processor and config together), probed on one character.
            var plain = tokenizer.Encode("a", addSpecialTokens: false);
            var full = tokenizer.Encode("a", addSpecialTokens: true);
            bool addBos = full.Length > plain.Length && tokenizer.BosTokenId is { } b && full[0] == b;
            bool addEos = full.Length > plain.Length && tokenizer.EosToken is { } e && tokenizer.TokenToId(e) == full[^1];
            if (full.Length - plain.Length != (addBos ? 1 : 0) + (addEos ? 1 : 0))
                throw Unsupported(path, $"encoding with special tokens adds [{string.Join(", ", full.Except(plain))}], which is neither BOS nor EOS (llama.cpp only adds those)");
            writer.Add("tokenizer.ggml.add_bos_token", addBos);
            writer.Add("tokenizer.ggml.add_eos_token", addEos);
            if (tokenizer.Config.ChatTemplate is { } template) writer.Add("tokenizer.chat_template", template);
        }

        /// <summary>tokenizer.json's llama.cpp pre-tokenizer name, merges ("left right") and the ids of added tokens that are not special.</summary>
        static (string Pre, string[] Merges, HashSet<int> NonSpecialAdded) ReadBpe(string path)
        {
            using var doc = TokenizerConfig.ParseJson(TokenizerConfig.ReadText(path), path);
            var root = doc.RootElement;
            var model = root.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.Object ? m : throw Unsupported(path, "it has no model");
            string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "?";
            if (type != "BPE") throw Unsupported(path, $"its model is {type}, not BPE");
            if (model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True)
                throw Unsupported(path, "it is a SentencePiece-style BPE (byte_fallback), which llama.cpp reads as a 'llama' vocabulary with scores from tokenizer.model");
            if (root.TryGetProperty("normalizer", out var norm) && norm.ValueKind == JsonValueKind.Object
                && !(norm.TryGetProperty("type", out var nt) && nt.GetString() == "NFC"))
                throw Unsupported(path, $"its normalizer {norm.GetRawText()} changes text before splitting, which llama.cpp does not");
            bool ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
            var pre = MatchPreTokenizer(root.TryGetProperty("pre_tokenizer", out var p) ? p : default, path);
            if (pre.IgnoreMerges != ignoreMerges)
                throw Unsupported(path, $"its ignore_merges is {ignoreMerges.ToString().ToLowerInvariant()} but llama.cpp's '{pre.Name}' pre-tokenizer assumes {pre.IgnoreMerges.ToString().ToLowerInvariant()}");
            var merges = new List<string>();
            if (model.TryGetProperty("merges", out var ms) && ms.ValueKind == JsonValueKind.Array)
                foreach (var merge in ms.EnumerateArray())
                    merges.Add(merge.ValueKind switch
                    {
                        JsonValueKind.String => merge.GetString()!,
                        JsonValueKind.Array when merge.GetArrayLength() == 2 => merge[0].GetString() + " " + merge[1].GetString(),
                        _ => throw Unsupported(path, $"merge {merge.GetRawText()} is neither \"a b\" nor [\"a\", \"b\"]"),
                    });
            var nonSpecial = new HashSet<int>();
            if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
                foreach (var token in added.EnumerateArray())
                    if (token.TryGetProperty("id", out var id) && id.TryGetInt32(out int value)
                        && !(token.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True))
                        nonSpecial.Add(value);
            return (pre.Name, merges.ToArray(), nonSpecial);
        }

        static PreTokenizer MatchPreTokenizer(JsonElement pre, string path)
        {
            static bool Is(JsonElement e, string type) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) && t.GetString() == type;
            static bool Flag(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;
            if (Is(pre, "ByteLevel") && Flag(pre, "use_regex") && !Flag(pre, "add_prefix_space")) return PreTokenizers[0];
            if (Is(pre, "Sequence") && pre.TryGetProperty("pretokenizers", out var steps) && steps.ValueKind == JsonValueKind.Array && steps.GetArrayLength() == 2)
            {
                var split = steps[0];
                var byteLevel = steps[1];
                if (Is(split, "Split") && Is(byteLevel, "ByteLevel") && !Flag(byteLevel, "use_regex") && !Flag(byteLevel, "add_prefix_space")
                    && split.TryGetProperty("pattern", out var pattern) && pattern.TryGetProperty("Regex", out var regex)
                    && split.TryGetProperty("behavior", out var behavior) && behavior.GetString() == "Isolated" && !Flag(split, "invert"))
                {
                    string text = regex.GetString() ?? "";
                    return PreTokenizers.FirstOrDefault(p => p.Regex == text)
                           ?? throw Unsupported(path, $"its split regex {text} is not one llama.cpp implements");
                }
            }
            throw Unsupported(path, $"its pre-tokenizer {(pre.ValueKind == JsonValueKind.Undefined ? "(none)" : pre.GetRawText())} is not byte-level BPE");
        }
    }
}
