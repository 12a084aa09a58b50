using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using GraLoRA.IO;

namespace GraLoRA.Text
{
    /// <summary>What <see cref="ByteLevelTokenizerFactory.Write"/> writes.</summary>
    public sealed class ByteLevelTokenizerOptions
    {
        /// <summary>The special tokens of <see cref="ByteLevelTokenizerOptions"/>' defaults, in id order from 256.</summary>
        public static IReadOnlyList<string> DefaultSpecialTokens { get; } =
            new[] { "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>", "<|im_start|>", "<|im_end|>" };

        /// <summary>Special tokens, given ids after the bytes and merges in this order (default <see cref="DefaultSpecialTokens"/>).</summary>
        public IReadOnlyList<string> SpecialTokens { get; init; } = DefaultSpecialTokens;
        /// <summary>Beginning-of-sequence token (one of <see cref="SpecialTokens"/>), or null for none.</summary>
        public string? BosToken { get; init; } = "<|begin_of_text|>";
        /// <summary>End-of-sequence token (one of <see cref="SpecialTokens"/>), or null for none.</summary>
        public string? EosToken { get; init; } = "<|end_of_text|>";
        /// <summary>Padding token (one of <see cref="SpecialTokens"/>), or null for none.</summary>
        public string? PadToken { get; init; } = "<|pad|>";
        /// <summary>Whether encoding with special tokens puts <see cref="BosToken"/> first (default true).</summary>
        public bool AddBosToken { get; init; } = true;
        /// <summary>Whether encoding with special tokens puts <see cref="EosToken"/> last (default false).</summary>
        public bool AddEosToken { get; init; }
        /// <summary>Jinja chat template written as tokenizer_config.json's <c>chat_template</c>, or null for none.</summary>
        public string? ChatTemplate { get; init; }
        /// <summary>
        /// Optional BPE merges, as pairs of text (e.g. ("t", "h"), ("th", "e")), applied by priority in this order. Each
        /// side must be one single-byte (ASCII) character or the result of an earlier merge, so characters of several
        /// UTF-8 bytes cannot be merged this way. Merged tokens get ids 256, 257, ... before the special tokens.
        /// </summary>
        public IReadOnlyList<(string Left, string Right)> Merges { get; init; } = Array.Empty<(string, string)>();
        /// <summary>tokenizer_config.json's <c>model_max_length</c> (default 2048).</summary>
        public long ModelMaxLength { get; init; } = 2048;
    }

    /// <summary>
    /// Writes a real Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) for tiny test and demo models:
    /// byte-level BPE whose ids 0..255 are the 256 bytes (in GPT-2's byte-to-character alphabet), optional merges, then
    /// the special tokens as added tokens. Any text encodes (every byte has a token) and decodes back exactly.
    /// transformers, transformers.js and <see cref="HfTokenizer"/> all load it.
    /// </summary>
    public static class ByteLevelTokenizerFactory
    {
        static readonly JsonWriterOptions WriterOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

        /// <summary>
        /// GPT-2's reversible map from a byte to a printable character: printable Latin-1 bytes ('!'..'~', '¡'..'¬',
        /// '®'..'ÿ') stand for themselves, the other 68 bytes for U+0100 onwards in byte order.
        /// </summary>
        public static char ByteToChar(byte b) => ByteChars[b];

        static readonly char[] ByteChars = BuildByteChars();

        static char[] BuildByteChars()
        {
            var map = new char[256];
            int next = 256;
            for (int b = 0; b < 256; b++)
            {
                bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
                map[b] = printable ? (char)b : (char)next++;
            }
            return map;
        }

        static string ByteLevel(string text)
        {
            var sb = new StringBuilder();
            foreach (byte b in Encoding.UTF8.GetBytes(text)) sb.Append(ByteChars[b]);
            return sb.ToString();
        }

        /// <summary>
        /// Writes <c>tokenizer.json</c> and <c>tokenizer_config.json</c> into <paramref name="folder"/> (created if
        /// missing), each atomically. Vocabulary size: 256 + merges + special tokens.
        /// </summary>
        /// <exception cref="GraloraException"><c>InvalidTokenizerOptions</c> (InvalidArgument) when the options contradict each other; <c>WriteFailed</c> when writing fails.</exception>
        public static void Write(string folder, ByteLevelTokenizerOptions options)
        {
            ArgumentNullException.ThrowIfNull(folder);
            ArgumentNullException.ThrowIfNull(options);
            var specials = options.SpecialTokens ?? Array.Empty<string>();
            for (int i = 0; i < specials.Count; i++)
            {
                if (string.IsNullOrEmpty(specials[i])) throw Bad($"SpecialTokens[{i}] is empty: give every special token some text");
                if (specials.Take(i).Contains(specials[i])) throw Bad($"SpecialTokens lists '{specials[i]}' twice: list each token once");
            }
            foreach (var (name, value) in new[] { ("BosToken", options.BosToken), ("EosToken", options.EosToken), ("PadToken", options.PadToken) })
                if (value != null && !specials.Contains(value))
                    throw Bad($"{name} '{value}' is not in SpecialTokens ({string.Join(", ", specials)}): add it there or pick one of them");
            if (options.AddBosToken && options.BosToken == null) throw Bad("AddBosToken is true but BosToken is null: name a BOS token or set AddBosToken to false");
            if (options.AddEosToken && options.EosToken == null) throw Bad("AddEosToken is true but EosToken is null: name an EOS token or set AddEosToken to false");
            if (options.ModelMaxLength <= 0) throw Bad($"ModelMaxLength is {options.ModelMaxLength}: it must be positive");

            var vocab = new List<string>(256);
            var known = new HashSet<string>(StringComparer.Ordinal);
            for (int b = 0; b < 256; b++) { vocab.Add(ByteChars[b].ToString()); known.Add(vocab[b]); }
            var merges = new List<(string, string)>();
            foreach (var (left, right) in options.Merges ?? Array.Empty<(string, string)>())
            {
                string l = ByteLevel(left ?? ""), r = ByteLevel(right ?? "");
                if (!known.Contains(l) || !known.Contains(r))
                    throw Bad($"merge ('{left}', '{right}') uses '{(known.Contains(l) ? right : left)}', which is neither one byte nor an earlier merge: merge its parts first");
                if (!known.Add(l + r)) throw Bad($"merge ('{left}', '{right}') makes '{left}{right}', which is already a token: drop the duplicate merge");
                vocab.Add(l + r);
                merges.Add((l, r));
            }
            int firstSpecial = vocab.Count;
            int IdOf(string token) => firstSpecial + specials.ToList().IndexOf(token);

            string full = Path.GetFullPath(folder);
            try { Directory.CreateDirectory(full); }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw new GraloraException("WriteFailed", GraloraErrorKind.IOFailure, $"Could not create tokenizer folder '{full}': {ex.Message}", full, ex);
            }

            AtomicFile.Write(Path.Combine(full, "tokenizer.json"), stream =>
            {
                using var w = new Utf8JsonWriter(stream, WriterOptions);
                w.WriteStartObject();
                w.WriteString("version", "1.0");
                w.WriteNull("truncation");
                w.WriteNull("padding");
                w.WriteStartArray("added_tokens");
                for (int i = 0; i < specials.Count; i++)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", firstSpecial + i);
                    w.WriteString("content", specials[i]);
                    w.WriteBoolean("single_word", false);
                    w.WriteBoolean("lstrip", false);
                    w.WriteBoolean("rstrip", false);
                    w.WriteBoolean("normalized", false);
                    w.WriteBoolean("special", true);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteNull("normalizer");
                w.WritePropertyName("pre_tokenizer");
                WriteByteLevel(w);
                w.WritePropertyName("post_processor");
                if (options.AddBosToken || options.AddEosToken)
                {
                    w.WriteStartObject();
                    w.WriteString("type", "Sequence");
                    w.WriteStartArray("processors");
                    WriteByteLevel(w);
                    WriteTemplate(w, options.AddBosToken ? options.BosToken : null, options.AddEosToken ? options.EosToken : null, IdOf);
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                else WriteByteLevel(w);
                w.WritePropertyName("decoder");
                WriteByteLevel(w);
                w.WriteStartObject("model");
                w.WriteString("type", "BPE");
                w.WriteNull("dropout");
                w.WriteNull("unk_token");
                w.WriteNull("continuing_subword_prefix");
                w.WriteNull("end_of_word_suffix");
                w.WriteBoolean("fuse_unk", false);
                w.WriteBoolean("byte_fallback", false);
                w.WriteBoolean("ignore_merges", false);
                w.WriteStartObject("vocab");
                for (int id = 0; id < vocab.Count; id++) w.WriteNumber(vocab[id], id);
                w.WriteEndObject();
                w.WriteStartArray("merges");
                foreach (var (l, r) in merges)
                {
                    w.WriteStartArray();
                    w.WriteStringValue(l);
                    w.WriteStringValue(r);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            });

            AtomicFile.Write(Path.Combine(full, "tokenizer_config.json"), stream =>
            {
                using var w = new Utf8JsonWriter(stream, WriterOptions);
                w.WriteStartObject();
                w.WriteBoolean("add_bos_token", options.AddBosToken);
                w.WriteBoolean("add_eos_token", options.AddEosToken);
                w.WriteStartObject("added_tokens_decoder");
                for (int i = 0; i < specials.Count; i++)
                {
                    w.WriteStartObject((firstSpecial + i).ToString(System.Globalization.CultureInfo.InvariantCulture));
                    w.WriteString("content", specials[i]);
                    w.WriteBoolean("lstrip", false);
                    w.WriteBoolean("normalized", false);
                    w.WriteBoolean("rstrip", false);
                    w.WriteBoolean("single_word", false);
                    w.WriteBoolean("special", true);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
                WriteOptionalString(w, "bos_token", options.BosToken);
                if (options.ChatTemplate != null) w.WriteString("chat_template", options.ChatTemplate);
                w.WriteBoolean("clean_up_tokenization_spaces", false);
                WriteOptionalString(w, "eos_token", options.EosToken);
                w.WriteNumber("model_max_length", options.ModelMaxLength);
                WriteOptionalString(w, "pad_token", options.PadToken);
                w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
                w.WriteEndObject();
            });
        }

        static void WriteOptionalString(Utf8JsonWriter w, string name, string? value)
        {
            if (value == null) w.WriteNull(name); else w.WriteString(name, value);
        }

        static void WriteByteLevel(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();
        }

        /// <summary>TemplateProcessing: [bos] $A [eos] for one sequence, [bos] $A [eos] [bos] $B:1 [eos]:1 for a pair.</summary>
        static void WriteTemplate(Utf8JsonWriter w, string? bos, string? eos, Func<string, int> idOf)
        {
            void Special(string token, int typeId)
            {
                w.WriteStartObject();
                w.WriteStartObject("SpecialToken");
                w.WriteString("id", token);
                w.WriteNumber("type_id", typeId);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            void Sequence(string id, int typeId)
            {
                w.WriteStartObject();
                w.WriteStartObject("Sequence");
                w.WriteString("id", id);
                w.WriteNumber("type_id", typeId);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            void Part(string sequence, int typeId)
            {
                if (bos != null) Special(bos, typeId);
                Sequence(sequence, typeId);
                if (eos != null) Special(eos, typeId);
            }

            w.WriteStartObject();
            w.WriteString("type", "TemplateProcessing");
            w.WriteStartArray("single");
            Part("A", 0);
            w.WriteEndArray();
            w.WriteStartArray("pair");
            Part("A", 0);
            Part("B", 1);
            w.WriteEndArray();
            w.WriteStartObject("special_tokens");
            foreach (string token in new[] { bos, eos }.OfType<string>().Distinct())
            {
                w.WriteStartObject(token);
                w.WriteString("id", token);
                w.WriteStartArray("ids");
                w.WriteNumberValue(idOf(token));
                w.WriteEndArray();
                w.WriteStartArray("tokens");
                w.WriteStringValue(token);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }

        static GraloraException Bad(string problem) =>
            new("InvalidTokenizerOptions", GraloraErrorKind.InvalidArgument, $"Cannot write the byte-level tokenizer: {problem}.");
    }
}
