using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace GraLoRA.Text
{
    /// <summary>
    /// What a Hugging Face <c>tokenizer_config.json</c> says beyond <c>tokenizer.json</c>: the named special tokens,
    /// BOS/EOS flags, the length limit, the chat template(s) and the decode clean-up switch. Unknown keys are ignored.
    /// </summary>
    /// <remarks>
    /// Special tokens may be written as a plain string or as an AddedToken object (<c>{"__type": "AddedToken",
    /// "content": "&lt;s&gt;", ...}</c>); both give the token's content. The chat template is kept raw: either one
    /// string, or a list of <c>{"name", "template"}</c> objects (the one named <c>default</c> is <see cref="ChatTemplate"/>).
    /// </remarks>
    public sealed class TokenizerConfig
    {
        /// <summary>transformers writes <c>int(1e30)</c> as <c>model_max_length</c> to mean "no limit"; anything at least this large reads as none.</summary>
        const double NoLimitThreshold = 1e18;

        /// <summary>A configuration with nothing set, for a folder without <c>tokenizer_config.json</c>.</summary>
        public static TokenizerConfig Empty { get; } = new();

        /// <summary><c>bos_token</c>: content of the beginning-of-sequence token, or null.</summary>
        public string? BosToken { get; private init; }
        /// <summary><c>eos_token</c>: content of the end-of-sequence token, or null.</summary>
        public string? EosToken { get; private init; }
        /// <summary><c>pad_token</c>: content of the padding token, or null.</summary>
        public string? PadToken { get; private init; }
        /// <summary><c>unk_token</c>: content of the unknown token, or null.</summary>
        public string? UnkToken { get; private init; }
        /// <summary><c>additional_special_tokens</c>: further tokens transformers treats as special (skipped when decoding with skip_special_tokens).</summary>
        public IReadOnlyList<string> AdditionalSpecialTokens { get; private init; } = Array.Empty<string>();
        /// <summary><c>add_bos_token</c> when present. Informational: the ids come from tokenizer.json's post-processor.</summary>
        public bool? AddBosToken { get; private init; }
        /// <summary><c>add_eos_token</c> when present. Informational: the ids come from tokenizer.json's post-processor.</summary>
        public bool? AddEosToken { get; private init; }
        /// <summary><c>model_max_length</c>, or null when absent or transformers' "no limit" sentinel (1e30).</summary>
        public long? ModelMaxLength { get; private init; }
        /// <summary>
        /// <c>clean_up_tokenization_spaces</c> when present. When absent, decoding does no clean-up
        /// (transformers' current default; transformers.js defaults to true).
        /// </summary>
        public bool? CleanUpTokenizationSpaces { get; private init; }
        /// <summary><c>tokenizer_class</c>, e.g. "PreTrainedTokenizerFast" or "Qwen2Tokenizer", or null.</summary>
        public string? TokenizerClass { get; private init; }
        /// <summary>
        /// The default chat template (raw Jinja source): <c>chat_template</c> when it is a string, else the list entry
        /// named <c>default</c>; a <c>chat_template.jinja</c> file beside the config replaces it. Null when there is none.
        /// </summary>
        public string? ChatTemplate { get; private init; }
        /// <summary>
        /// Named chat templates: every entry of a list-valued <c>chat_template</c> (including <c>default</c>), plus
        /// <c>additional_chat_templates/NAME.jinja</c> files. Empty when <c>chat_template</c> is a plain string.
        /// </summary>
        public IReadOnlyDictionary<string, string> NamedChatTemplates { get; private init; } = new Dictionary<string, string>(StringComparer.Ordinal);

        /// <summary>Reads <c>tokenizer_config.json</c> from <paramref name="path"/>.</summary>
        /// <exception cref="GraloraException"><c>TokenizerNotFound</c> when the file is missing; <c>InvalidTokenizer</c> when it is not a valid config.</exception>
        public static TokenizerConfig Load(string path)
        {
            string full = Path.GetFullPath(path);
            return Parse(ReadText(full), full);
        }

        /// <summary>Parses the text of a <c>tokenizer_config.json</c>; <paramref name="source"/> names it in errors.</summary>
        /// <exception cref="GraloraException"><c>InvalidTokenizer</c> (InvalidData) when the JSON is malformed or a known key has the wrong type.</exception>
        public static TokenizerConfig Parse(string json, string source = "tokenizer_config.json")
        {
            ArgumentNullException.ThrowIfNull(json);
            using var doc = ParseJson(json, source);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Invalid(source, "the top level is not a JSON object");

            var named = new Dictionary<string, string>(StringComparer.Ordinal);
            string? template = null;
            if (root.TryGetProperty("chat_template", out var ct))
            {
                switch (ct.ValueKind)
                {
                    case JsonValueKind.Null: break;
                    case JsonValueKind.String: template = ct.GetString(); break;
                    case JsonValueKind.Array:
                        foreach (var entry in ct.EnumerateArray())
                        {
                            if (entry.ValueKind != JsonValueKind.Object
                                || !entry.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                                || !entry.TryGetProperty("template", out var t) || t.ValueKind != JsonValueKind.String)
                                throw Invalid(source, "every entry of the 'chat_template' list must be an object with string 'name' and 'template'");
                            named[n.GetString()!] = t.GetString()!;
                        }
                        named.TryGetValue("default", out template);
                        break;
                    default:
                        throw Invalid(source, $"'chat_template' is a JSON {ct.ValueKind}, expected a string or a list of {{name, template}} objects");
                }
            }

            var additional = new List<string>();
            if (root.TryGetProperty("additional_special_tokens", out var ast) && ast.ValueKind != JsonValueKind.Null)
            {
                if (ast.ValueKind != JsonValueKind.Array)
                    throw Invalid(source, "'additional_special_tokens' must be a list");
                foreach (var item in ast.EnumerateArray())
                    if (TokenContent(item, "additional_special_tokens", source) is string s) additional.Add(s);
            }

            return new TokenizerConfig
            {
                BosToken = SpecialToken(root, "bos_token", source),
                EosToken = SpecialToken(root, "eos_token", source),
                PadToken = SpecialToken(root, "pad_token", source),
                UnkToken = SpecialToken(root, "unk_token", source),
                AdditionalSpecialTokens = additional,
                AddBosToken = OptionalBool(root, "add_bos_token", source),
                AddEosToken = OptionalBool(root, "add_eos_token", source),
                CleanUpTokenizationSpaces = OptionalBool(root, "clean_up_tokenization_spaces", source),
                ModelMaxLength = MaxLength(root, source),
                TokenizerClass = root.TryGetProperty("tokenizer_class", out var tc) && tc.ValueKind == JsonValueKind.String ? tc.GetString() : null,
                ChatTemplate = template,
                NamedChatTemplates = named,
            };
        }

        /// <summary>
        /// This configuration with the chat templates saved as separate files (newer transformers):
        /// <c>chat_template.jinja</c> becomes the default, <c>additional_chat_templates/NAME.jinja</c> named templates.
        /// </summary>
        internal TokenizerConfig WithTemplateFiles(string folder)
        {
            string defaultFile = Path.Combine(folder, "chat_template.jinja");
            string extraDir = Path.Combine(folder, "additional_chat_templates");
            bool hasDefault = File.Exists(defaultFile), hasExtra = Directory.Exists(extraDir);
            if (!hasDefault && !hasExtra) return this;
            var named = new Dictionary<string, string>(NamedChatTemplates, StringComparer.Ordinal);
            string? template = ChatTemplate;
            if (hasDefault)
            {
                template = ReadText(defaultFile);
                if (named.ContainsKey("default")) named["default"] = template;
            }
            if (hasExtra)
                foreach (string file in Directory.GetFiles(extraDir, "*.jinja"))
                    named[Path.GetFileNameWithoutExtension(file)] = ReadText(file);
            return new TokenizerConfig
            {
                BosToken = BosToken, EosToken = EosToken, PadToken = PadToken, UnkToken = UnkToken,
                AdditionalSpecialTokens = AdditionalSpecialTokens, AddBosToken = AddBosToken, AddEosToken = AddEosToken,
                CleanUpTokenizationSpaces = CleanUpTokenizationSpaces, ModelMaxLength = ModelMaxLength,
                TokenizerClass = TokenizerClass, ChatTemplate = template, NamedChatTemplates = named,
            };
        }

        /// <summary>
        /// The <c>eos_token_id</c> of a <c>generation_config.json</c> (a number or a list of numbers; absent or null gives
        /// an empty list). Generation stops at any of them, so <see cref="HfTokenizer.EosTokenIds"/> merges them in.
        /// </summary>
        /// <exception cref="GraloraException"><c>InvalidTokenizer</c> (InvalidData) when the JSON is malformed or eos_token_id is not integers.</exception>
        public static IReadOnlyList<int> ParseGenerationEosTokenIds(string json, string source = "generation_config.json")
        {
            ArgumentNullException.ThrowIfNull(json);
            using var doc = ParseJson(json, source);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Invalid(source, "the top level is not a JSON object");
            if (!doc.RootElement.TryGetProperty("eos_token_id", out var eos) || eos.ValueKind == JsonValueKind.Null)
                return Array.Empty<int>();
            var ids = new List<int>();
            if (eos.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in eos.EnumerateArray()) ids.Add(TokenId(item, source));
            }
            else ids.Add(TokenId(eos, source));
            return ids;
        }

        /// <summary>Reads <c>eos_token_id</c> from the <c>generation_config.json</c> at <paramref name="path"/>; see <see cref="ParseGenerationEosTokenIds"/>.</summary>
        public static IReadOnlyList<int> LoadGenerationEosTokenIds(string path)
        {
            string full = Path.GetFullPath(path);
            return ParseGenerationEosTokenIds(ReadText(full), full);
        }

        static int TokenId(JsonElement e, string source) =>
            e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int id) && id >= 0
                ? id
                : throw Invalid(source, $"'eos_token_id' holds {e.GetRawText()}, expected a non-negative integer or a list of them");

        static string? SpecialToken(JsonElement root, string key, string source) =>
            root.TryGetProperty(key, out var e) ? TokenContent(e, key, source) : null;

        /// <summary>A token written as a string, or as an AddedToken object with a string "content"; null stays null.</summary>
        static string? TokenContent(JsonElement e, string key, string source)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Null: return null;
                case JsonValueKind.String: return e.GetString();
                case JsonValueKind.Object when e.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String:
                    return c.GetString();
                default:
                    throw Invalid(source, $"'{key}' is {Describe(e)}, expected a string or an object with a string 'content'");
            }
        }

        static bool? OptionalBool(JsonElement root, string key, string source)
        {
            if (!root.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return null;
            return e.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Invalid(source, $"'{key}' is {Describe(e)}, expected true or false"),
            };
        }

        static long? MaxLength(JsonElement root, string source)
        {
            if (!root.TryGetProperty("model_max_length", out var e) || e.ValueKind == JsonValueKind.Null) return null;
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double d) || d < 0)
                throw Invalid(source, $"'model_max_length' is {Describe(e)}, expected a non-negative number");
            if (d >= NoLimitThreshold) return null;
            return e.TryGetInt64(out long l) ? l : (long)d;
        }

        static string Describe(JsonElement e)
        {
            string raw = e.GetRawText();
            return raw.Length > 60 ? raw[..60] + "..." : raw;
        }

        internal static string ReadText(string path)
        {
            if (!File.Exists(path))
                throw new GraloraException("TokenizerNotFound", GraloraErrorKind.NotFound, $"Tokenizer file '{path}' does not exist.", path);
            try { return File.ReadAllText(path); }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw new GraloraException("TokenizerReadFailed", GraloraErrorKind.IOFailure, $"Could not read tokenizer file '{path}': {ex.Message}", path, ex);
            }
        }

        internal static JsonDocument ParseJson(string json, string source)
        {
            try { return JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 256 }); }
            catch (JsonException ex)
            {
                throw new GraloraException("InvalidTokenizer", GraloraErrorKind.InvalidData,
                    $"'{source}' is not valid JSON ({ex.Message}): restore the file from the model's original files.", source, ex);
            }
        }

        internal static GraloraException Invalid(string source, string problem) =>
            new("InvalidTokenizer", GraloraErrorKind.InvalidData, $"'{source}' is not a valid tokenizer file: {problem}.", source);
    }
}
