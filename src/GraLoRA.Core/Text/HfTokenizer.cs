using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Tokenizers.DotNet;

namespace GraLoRA.Text
{
    /// <summary>
    /// A Hugging Face "fast" tokenizer (<c>tokenizer.json</c>) run by the Rust <c>tokenizers</c> library through
    /// Tokenizers.DotNet, plus what transformers adds on top: <c>tokenizer_config.json</c> (named special tokens, chat
    /// template, clean-up), the EOS ids of <c>generation_config.json</c>, token/id look-ups and decoding that keeps or
    /// drops special tokens.
    /// </summary>
    /// <remarks>
    /// <para>
    /// How it maps onto transformers: <see cref="Encode"/> equals <c>tokenizer.encode(text, add_special_tokens=...)</c>
    /// (no truncation or padding, whatever tokenizer.json says); <see cref="Decode"/> equals
    /// <c>tokenizer.decode(ids, skip_special_tokens=..., clean_up_tokenization_spaces=...)</c>.
    /// </para>
    /// <para>
    /// The native tokenizer is loaded once, from a temporary copy of tokenizer.json whose post-processor is removed and
    /// whose added tokens are all marked non-special: it encodes without special tokens and decodes everything. The
    /// post-processor (TemplateProcessing, BERT/RoBERTa, ByteLevel or a Sequence of them) is applied here for
    /// <c>addSpecialTokens</c>, using the ids written in it, and special tokens are dropped here before decoding when
    /// asked: special means an added token marked <c>"special": true</c>, or a token that tokenizer_config.json names
    /// (bos/eos/unk/pad and additional_special_tokens), as in transformers.
    /// </para>
    /// <para>
    /// Differences from transformers: tokenizer_config.json's <c>add_bos_token</c>/<c>add_eos_token</c> do not rebuild
    /// the post-processor (transformers' Llama/Gemma fast classes do; the shipped tokenizer.json normally already
    /// agrees), and special tokens the config names but tokenizer.json lacks are not added to the vocabulary (their
    /// ids read as null).
    /// </para>
    /// <para>
    /// Thread safety: after <see cref="Load(string)"/> returns, every member may be called from several threads at once
    /// (the native library guards its state with a read/write lock; everything here is immutable), except
    /// <see cref="Dispose"/>, which must not race other calls. A <see cref="TokenStreamDecoder"/> is not thread-safe.
    /// </para>
    /// </remarks>
    public sealed class HfTokenizer : IDisposable
    {
        readonly Tokenizer _native;
        readonly Dictionary<string, int> _tokenToId;
        readonly string?[] _idToToken;
        readonly HashSet<int> _special;
        readonly PostProcessor _postProcessor;
        readonly int[] _eosIds;
        volatile bool _disposed;

        /// <summary>The tokenizer.json this tokenizer was loaded from (full path).</summary>
        public string TokenizerJsonPath { get; }
        /// <summary>What tokenizer_config.json says (<see cref="TokenizerConfig.Empty"/> when there was none).</summary>
        public TokenizerConfig Config { get; }
        /// <summary>One past the largest token id (base vocabulary plus added tokens): the embedding rows the tokenizer needs.</summary>
        public int VocabSize => _idToToken.Length;
        /// <summary>The ids of all special tokens (see the remarks of <see cref="HfTokenizer"/>), ascending.</summary>
        public IReadOnlyList<int> SpecialTokenIds { get; }

        /// <summary><c>bos_token</c> of tokenizer_config.json, or null.</summary>
        public string? BosToken => Config.BosToken;
        /// <summary>Id of <see cref="BosToken"/>, or null when there is none or it is not in the vocabulary.</summary>
        public int? BosTokenId { get; }
        /// <summary><c>eos_token</c> of tokenizer_config.json, or null.</summary>
        public string? EosToken => Config.EosToken;
        /// <summary>
        /// Every id that ends generation: the id of <see cref="EosToken"/> first (when it is in the vocabulary), then the
        /// <c>eos_token_id</c> values of generation_config.json not already listed. Empty when neither says anything.
        /// </summary>
        public IReadOnlyList<int> EosTokenIds => _eosIds;
        /// <summary><c>pad_token</c> of tokenizer_config.json, or null (see <see cref="PadTokenId"/> for the fallback).</summary>
        public string? PadToken => Config.PadToken;
        /// <summary>
        /// Id to pad with: the id of <see cref="PadToken"/> when the config names one that is in the vocabulary; otherwise
        /// the first of <see cref="EosTokenIds"/>, as transformers' <c>generate</c> does when <c>pad_token_id</c> is unset;
        /// null when there is neither.
        /// </summary>
        public int? PadTokenId { get; }
        /// <summary><c>unk_token</c> of tokenizer_config.json, or null.</summary>
        public string? UnkToken => Config.UnkToken;
        /// <summary>Id of <see cref="UnkToken"/>, or null.</summary>
        public int? UnkTokenId { get; }

        HfTokenizer(string path, Tokenizer native, Vocabulary vocab, PostProcessor post, TokenizerConfig config, IEnumerable<int> generationEos)
        {
            TokenizerJsonPath = path;
            _native = native;
            _tokenToId = vocab.TokenToId;
            _idToToken = vocab.IdToToken;
            _postProcessor = post;
            Config = config;

            _special = new HashSet<int>(vocab.SpecialIds);
            foreach (string? t in new[] { config.BosToken, config.EosToken, config.UnkToken, config.PadToken }.Concat(config.AdditionalSpecialTokens))
                if (t != null && _tokenToId.TryGetValue(t, out int id)) _special.Add(id);
            SpecialTokenIds = _special.OrderBy(i => i).ToArray();

            BosTokenId = IdOf(config.BosToken);
            UnkTokenId = IdOf(config.UnkToken);
            var eos = new List<int>();
            if (IdOf(config.EosToken) is int e) eos.Add(e);
            foreach (int g in generationEos)
                if (!eos.Contains(g)) eos.Add(g);
            _eosIds = eos.ToArray();
            PadTokenId = IdOf(config.PadToken) ?? (_eosIds.Length > 0 ? _eosIds[0] : null);
        }

        int? IdOf(string? token) => token != null && _tokenToId.TryGetValue(token, out int id) ? id : null;

        /// <summary>
        /// Loads the tokenizer of a Hugging Face model folder: <c>tokenizer.json</c> (required), <c>tokenizer_config.json</c>,
        /// <c>chat_template.jinja</c> and <c>generation_config.json</c> (each when present).
        /// </summary>
        /// <exception cref="GraloraException">
        /// <c>TokenizerNotFound</c> (NotFound) when the folder or its tokenizer.json is missing; <c>InvalidTokenizer</c>
        /// (InvalidData) when a file is not valid JSON or the native library rejects tokenizer.json;
        /// <c>TokenizerNativeMissing</c> (NotAvailable) when libhf_tokenizers cannot be loaded on this platform.
        /// </exception>
        public static HfTokenizer Load(string folder)
        {
            if (string.IsNullOrWhiteSpace(folder))
                throw new GraloraException("TokenizerNotFound", GraloraErrorKind.InvalidArgument, "No tokenizer folder given: pass the folder of a Hugging Face model (the one holding tokenizer.json).");
            string full = Path.GetFullPath(folder);
            if (!Directory.Exists(full))
                throw new GraloraException("TokenizerNotFound", GraloraErrorKind.NotFound,
                    $"Tokenizer folder '{full}' does not exist: pass the folder of a Hugging Face model (the one holding tokenizer.json).", full);
            string json = Path.Combine(full, "tokenizer.json");
            if (!File.Exists(json))
                throw new GraloraException("TokenizerNotFound", GraloraErrorKind.NotFound,
                    $"'{full}' has no tokenizer.json: only Hugging Face \"fast\" tokenizers are supported; in Python, AutoTokenizer.from_pretrained(...).save_pretrained(folder) writes one.", json);
            string configPath = Path.Combine(full, "tokenizer_config.json");
            var config = (File.Exists(configPath) ? TokenizerConfig.Load(configPath) : TokenizerConfig.Empty).WithTemplateFiles(full);
            string generationPath = Path.Combine(full, "generation_config.json");
            var generationEos = File.Exists(generationPath) ? TokenizerConfig.LoadGenerationEosTokenIds(generationPath) : Array.Empty<int>();
            return FromFiles(json, config, generationEos);
        }

        /// <summary>
        /// Loads <paramref name="tokenizerJsonPath"/> with an already parsed configuration (null: none) and extra EOS ids
        /// (e.g. from <see cref="TokenizerConfig.ParseGenerationEosTokenIds"/>).
        /// </summary>
        /// <exception cref="GraloraException">As for <see cref="Load(string)"/>.</exception>
        public static HfTokenizer FromFiles(string tokenizerJsonPath, TokenizerConfig? config = null, IEnumerable<int>? generationEosTokenIds = null)
        {
            ArgumentNullException.ThrowIfNull(tokenizerJsonPath);
            string path = Path.GetFullPath(tokenizerJsonPath);
            if (!File.Exists(path))
                throw new GraloraException("TokenizerNotFound", GraloraErrorKind.NotFound,
                    $"Tokenizer file '{path}' does not exist: pass the tokenizer.json of a Hugging Face model.", path);
            if (FirstLoneSurrogate(path) >= 0)
                throw new GraloraException("InvalidTokenizer", GraloraErrorKind.InvalidArgument, $"Tokenizer path '{path}' is not valid Unicode: rename the folder.", path);

            string temp;
            Vocabulary vocab;
            PostProcessor post;
            using (var doc = TokenizerConfig.ParseJson(TokenizerConfig.ReadText(path), path))
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    throw TokenizerConfig.Invalid(path, "the top level is not a JSON object");
                vocab = Vocabulary.Read(root, path);
                post = PostProcessor.Read(root.TryGetProperty("post_processor", out var pp) ? pp : default, path);
                temp = WritePlainCopy(root, path);
            }
            Tokenizer native;
            try { native = LoadNative(temp, path); }
            finally { TryDelete(temp); }
            return new HfTokenizer(path, native, vocab, post, config ?? TokenizerConfig.Empty, generationEosTokenIds ?? Array.Empty<int>());
        }

        /// <summary>
        /// Token ids of <paramref name="text"/>. With <paramref name="addSpecialTokens"/> the post-processor of
        /// tokenizer.json adds its tokens (e.g. BOS for Llama 3 and Gemma, nothing for Qwen). Special tokens written in the
        /// text (e.g. <c>&lt;|im_start|&gt;</c>) become their ids, as in transformers.
        /// </summary>
        /// <exception cref="GraloraException"><c>InvalidText</c> (InvalidArgument) when the text holds a lone UTF-16 surrogate.</exception>
        public int[] Encode(string text, bool addSpecialTokens = true)
        {
            ArgumentNullException.ThrowIfNull(text);
            ThrowIfDisposed();
            int bad = FirstLoneSurrogate(text);
            if (bad >= 0)
                throw new GraloraException("InvalidText", GraloraErrorKind.InvalidArgument,
                    $"Cannot tokenize text with a lone UTF-16 surrogate (U+{(int)text[bad]:X4} at index {bad}): it is not valid Unicode; fix or drop that character.", text);
            uint[] raw;
            try { raw = _native.Encode(text); }
            catch (TokenizerException ex) { throw NativeFailure("encode text", ex); }
            var ids = new int[raw.Length];
            for (int i = 0; i < raw.Length; i++) ids[i] = checked((int)raw[i]);
            return addSpecialTokens ? _postProcessor.Apply(ids) : ids;
        }

        /// <summary>
        /// A sentence pair as transformers' <c>tokenizer(text, text_pair)</c> encodes it: each text encoded alone, then
        /// joined by the post-processor's pair template (BERT: [CLS] a [SEP] b [SEP]; RoBERTa: &lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b
        /// &lt;/s&gt;), with the token type ids it assigns (0 for the first part, 1 for the second).
        /// </summary>
        /// <exception cref="GraloraException"><c>InvalidText</c> as <see cref="Encode"/>; <c>UnsupportedPairEncoding</c> for a chain of templating post-processors.</exception>
        public (int[] Ids, int[] TokenTypeIds) EncodePair(string text, string textPair, bool addSpecialTokens = true)
        {
            ArgumentNullException.ThrowIfNull(textPair);
            var a = Encode(text, addSpecialTokens: false);
            var b = Encode(textPair, addSpecialTokens: false);
            return _postProcessor.ApplyPair(a, b, addSpecialTokens, TokenizerJsonPath);
        }

        /// <summary>Encodes each text as <see cref="Encode"/> does.</summary>
        public int[][] EncodeBatch(IReadOnlyList<string> texts, bool addSpecialTokens = true)
        {
            ArgumentNullException.ThrowIfNull(texts);
            var result = new int[texts.Count][];
            for (int i = 0; i < result.Length; i++) result[i] = Encode(texts[i], addSpecialTokens);
            return result;
        }

        /// <summary>
        /// Text of <paramref name="ids"/>. <paramref name="skipSpecialTokens"/> drops special tokens (see
        /// <see cref="IsSpecial"/>); <paramref name="cleanUpTokenizationSpaces"/> (null: the config's
        /// <c>clean_up_tokenization_spaces</c>, false when absent) removes the space before <c>. , ! ?</c> and
        /// English contractions as transformers does. Ids without a token (beyond the vocabulary) are ignored, as the
        /// Rust library does; incomplete UTF-8 at the end decodes to U+FFFD.
        /// </summary>
        /// <exception cref="GraloraException"><c>InvalidTokenId</c> (InvalidArgument) for a negative id.</exception>
        public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true, bool? cleanUpTokenizationSpaces = null)
        {
            ArgumentNullException.ThrowIfNull(ids);
            ThrowIfDisposed();
            var kept = new List<uint>();
            foreach (int id in ids)
            {
                if (id < 0)
                    throw new GraloraException("InvalidTokenId", GraloraErrorKind.InvalidArgument, $"Token id {id} is negative: token ids run from 0 to {VocabSize - 1}.", id);
                if (id >= _idToToken.Length || _idToToken[id] == null) continue;
                if (skipSpecialTokens && _special.Contains(id)) continue;
                kept.Add((uint)id);
            }
            if (kept.Count == 0) return "";
            string text;
            try { text = _native.Decode(kept.ToArray()); }
            catch (TokenizerException ex) { throw NativeFailure("decode token ids", ex); }
            return cleanUpTokenizationSpaces ?? Config.CleanUpTokenizationSpaces ?? false ? CleanUpTokenization(text) : text;
        }

        /// <summary>A decoder that turns ids arriving one by one (generation) into text pieces; see <see cref="TokenStreamDecoder"/>.</summary>
        public TokenStreamDecoder CreateStreamDecoder(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);

        /// <summary>Id of a vocabulary entry (its raw form, e.g. "Ġhello" for byte-level BPE, or an added token), or null.</summary>
        public int? TokenToId(string token)
        {
            ArgumentNullException.ThrowIfNull(token);
            return _tokenToId.TryGetValue(token, out int id) ? id : null;
        }

        /// <summary>The vocabulary entry of <paramref name="id"/> (raw form, as transformers' convert_ids_to_tokens), or null when there is none.</summary>
        public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

        /// <summary>
        /// Whether <paramref name="id"/> is a special token: an added token marked special in tokenizer.json, or one that
        /// tokenizer_config.json names (bos/eos/unk/pad, additional_special_tokens).
        /// </summary>
        public bool IsSpecial(int id) => _special.Contains(id);

        /// <summary>Frees the native tokenizer. Calls after this throw <see cref="ObjectDisposedException"/>.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _native.Dispose();
        }

        void ThrowIfDisposed()
        {
            if (_disposed) throw new ObjectDisposedException(nameof(HfTokenizer));
        }

        GraloraException NativeFailure(string what, TokenizerException ex) =>
            new("TokenizerFailed", GraloraErrorKind.InvalidOperation, $"Hugging Face tokenizers could not {what} with '{TokenizerJsonPath}': {ex.Message}", TokenizerJsonPath, ex);

        /// <summary>transformers' <c>clean_up_tokenization</c>: drops the space before punctuation and English contractions.</summary>
        internal static string CleanUpTokenization(string text) => text
            .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
            .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

        internal static int FirstLoneSurrogate(string s)
        {
            for (int i = 0; i < s.Length; i++)
            {
                if (char.IsHighSurrogate(s[i]))
                {
                    if (i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
                    return i;
                }
                if (char.IsLowSurrogate(s[i])) return i;
            }
            return -1;
        }

        static Tokenizer LoadNative(string file, string shownPath)
        {
            try { return new Tokenizer(vocabPath: file); }
            catch (TokenizerException ex)
            {
                throw new GraloraException("InvalidTokenizer", GraloraErrorKind.InvalidData,
                    $"Hugging Face tokenizers rejected '{shownPath}': {ex.Message}. Check the file is a tokenizer.json saved by transformers/tokenizers.", shownPath, ex);
            }
            catch (Exception ex) when (ex is DllNotFoundException || ex is EntryPointNotFoundException || ex is BadImageFormatException)
            {
                throw new GraloraException("TokenizerNativeMissing", GraloraErrorKind.NotAvailable,
                    $"The native tokenizer library (libhf_tokenizers) could not be loaded: {ex.Message}. GraLoRA ships it for linux-x64 (NuGet Tokenizers.DotNet.runtime.linux-x64); on other platforms build it from the Tokenizers.DotNet sources.", shownPath, ex);
            }
        }

        /// <summary>
        /// Writes tokenizer.json to a temporary file with post_processor, truncation and padding set to null and every
        /// added token marked non-special (which only changes what native decoding skips; splitting on added tokens
        /// does not depend on it).
        /// </summary>
        static string WritePlainCopy(JsonElement root, string shownPath)
        {
            string temp = Path.Combine(Path.GetTempPath(), "gralora-tokenizer-" + Guid.NewGuid().ToString("N") + ".json");
            try
            {
                using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write);
                using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
                writer.WriteStartObject();
                foreach (var property in root.EnumerateObject())
                {
                    switch (property.Name)
                    {
                        case "post_processor":
                        case "truncation":
                        case "padding":
                            writer.WriteNull(property.Name);
                            break;
                        case "added_tokens" when property.Value.ValueKind == JsonValueKind.Array:
                            writer.WriteStartArray(property.Name);
                            foreach (var token in property.Value.EnumerateArray())
                            {
                                if (token.ValueKind != JsonValueKind.Object) { token.WriteTo(writer); continue; }
                                writer.WriteStartObject();
                                foreach (var field in token.EnumerateObject())
                                {
                                    if (field.Name == "special") writer.WriteBoolean("special", false);
                                    else field.WriteTo(writer);
                                }
                                writer.WriteEndObject();
                            }
                            writer.WriteEndArray();
                            break;
                        default:
                            property.WriteTo(writer);
                            break;
                    }
                }
                writer.WriteEndObject();
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                TryDelete(temp);
                throw new GraloraException("TokenizerReadFailed", GraloraErrorKind.IOFailure,
                    $"Could not write a working copy of '{shownPath}' to '{temp}': {ex.Message}. Check the temporary folder is writable.", shownPath, ex);
            }
            return temp;
        }

        static void TryDelete(string path)
        {
            try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }

        /// <summary>Token/id maps of tokenizer.json: model.vocab (object token→id, or Unigram's list of [token, score]) overlaid by added_tokens.</summary>
        sealed class Vocabulary
        {
            public required Dictionary<string, int> TokenToId { get; init; }
            public required string?[] IdToToken { get; init; }
            public required List<int> SpecialIds { get; init; }

            public static Vocabulary Read(JsonElement root, string path)
            {
                if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
                    throw TokenizerConfig.Invalid(path, "it has no 'model' object");
                var byId = new Dictionary<int, string>();
                var toId = new Dictionary<string, int>(StringComparer.Ordinal);
                if (model.TryGetProperty("vocab", out var vocab))
                {
                    if (vocab.ValueKind == JsonValueKind.Object)
                    {
                        foreach (var entry in vocab.EnumerateObject())
                        {
                            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                                throw TokenizerConfig.Invalid(path, $"model.vocab maps '{entry.Name}' to {entry.Value.GetRawText()}, not a token id");
                            toId[entry.Name] = id;
                            byId[id] = entry.Name;
                        }
                    }
                    else if (vocab.ValueKind == JsonValueKind.Array)
                    {
                        int id = 0;
                        foreach (var entry in vocab.EnumerateArray())
                        {
                            if (entry.ValueKind != JsonValueKind.Array || entry.GetArrayLength() < 1 || entry[0].ValueKind != JsonValueKind.String)
                                throw TokenizerConfig.Invalid(path, $"model.vocab entry {id} is not a [token, score] pair");
                            string token = entry[0].GetString()!;
                            toId.TryAdd(token, id);
                            byId[id] = token;
                            id++;
                        }
                    }
                    else throw TokenizerConfig.Invalid(path, "model.vocab is neither an object nor a list");
                }
                else throw TokenizerConfig.Invalid(path, "model has no 'vocab'");

                var special = new List<int>();
                if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
                {
                    foreach (var token in added.EnumerateArray())
                    {
                        if (token.ValueKind != JsonValueKind.Object
                            || !token.TryGetProperty("id", out var idElement) || !idElement.TryGetInt32(out int id) || id < 0
                            || !token.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                            throw TokenizerConfig.Invalid(path, $"added_tokens entry {Short(token)} lacks an 'id' or a 'content'");
                        string text = content.GetString()!;
                        toId[text] = id;
                        byId[id] = text;
                        if (token.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True) special.Add(id);
                    }
                }
                if (byId.Count == 0) throw TokenizerConfig.Invalid(path, "its vocabulary is empty");
                var idToToken = new string?[byId.Keys.Max() + 1];
                foreach (var (id, token) in byId) idToToken[id] = token;
                return new Vocabulary { TokenToId = toId, IdToToken = idToToken, SpecialIds = special };
            }

            static string Short(JsonElement e)
            {
                string raw = e.GetRawText();
                return raw.Length > 80 ? raw[..80] + "..." : raw;
            }
        }

        /// <summary>
        /// The post-processor of tokenizer.json, as the ids it puts around the encoded text(s) and the token type of each
        /// piece: TemplateProcessing ("single" and "pair" templates), BertProcessing ([cls] A [sep] B [sep], B part type
        /// 1), RobertaProcessing (&lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;, the second half type 1, as the Rust library and
        /// transformers.js do), ByteLevel (ids unchanged) or a Sequence of them, applied in order.
        /// </summary>
        sealed class PostProcessor
        {
            /// <summary>One piece of a template: fixed ids (special tokens) or sequence A (0) / B (1), with its type id.</summary>
            internal readonly record struct Piece(int[]? Ids, int Sequence, int TypeId);

            /// <summary>Each step: its single-sequence template and its pair template.</summary>
            readonly List<(Piece[] Single, Piece[] Pair)> _steps;

            PostProcessor(List<(Piece[], Piece[])> steps) => _steps = steps;

            public int[] Apply(int[] ids)
            {
                foreach (var (single, _) in _steps) ids = Build(single, ids, null).Ids;
                return ids;
            }

            /// <summary>The pair as the post-processor joins it, with token type ids; without one: A then B, B typed 1.</summary>
            public (int[] Ids, int[] TypeIds) ApplyPair(int[] a, int[] b, bool addSpecialTokens, string path)
            {
                if (!addSpecialTokens || _steps.Count == 0)
                    return (a.Concat(b).ToArray(), Enumerable.Repeat(0, a.Length).Concat(Enumerable.Repeat(1, b.Length)).ToArray());
                if (_steps.Count > 1)
                    throw new GraloraException("UnsupportedPairEncoding", GraloraErrorKind.InvalidArgument,
                        $"'{path}' chains {_steps.Count} templating post-processors; sentence pairs are supported with one (TemplateProcessing, BertProcessing or RobertaProcessing).", path);
                return Build(_steps[0].Pair, a, b);
            }

            static (int[] Ids, int[] TypeIds) Build(Piece[] template, int[] a, int[]? b)
            {
                var ids = new List<int>(a.Length + (b?.Length ?? 0) + 4);
                var types = new List<int>(ids.Capacity);
                foreach (var piece in template)
                {
                    var part = piece.Ids ?? (piece.Sequence == 0 ? a : b ?? Array.Empty<int>());
                    ids.AddRange(part);
                    types.AddRange(Enumerable.Repeat(piece.TypeId, part.Length));
                }
                return (ids.ToArray(), types.ToArray());
            }

            public static PostProcessor Read(JsonElement element, string path)
            {
                var steps = new List<(Piece[], Piece[])>();
                if (element.ValueKind is JsonValueKind.Object) AddSteps(element, steps, path);
                else if (element.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
                    throw TokenizerConfig.Invalid(path, "'post_processor' is neither an object nor null");
                return new PostProcessor(steps);
            }

            static void AddSteps(JsonElement p, List<(Piece[], Piece[])> steps, string path)
            {
                string type = p.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "";
                switch (type)
                {
                    case "ByteLevel":
                        break;
                    case "Sequence":
                        if (!p.TryGetProperty("processors", out var list) || list.ValueKind != JsonValueKind.Array)
                            throw TokenizerConfig.Invalid(path, "the Sequence post-processor has no 'processors' list");
                        foreach (var inner in list.EnumerateArray()) AddSteps(inner, steps, path);
                        break;
                    case "BertProcessing":
                    case "RobertaProcessing":
                    {
                        int[] cls = { PairId(p, "cls", path) }, sep = { PairId(p, "sep", path) };
                        var single = new[] { new Piece(cls, 0, 0), new Piece(null, 0, 0), new Piece(sep, 0, 0) };
                        var pair = type == "BertProcessing"
                            ? single.Concat(new[] { new Piece(null, 1, 1), new Piece(sep, 0, 1) }).ToArray()
                            : single.Concat(new[] { new Piece(sep, 0, 1), new Piece(null, 1, 1), new Piece(sep, 0, 1) }).ToArray();
                        steps.Add((single, pair));
                        break;
                    }
                    case "TemplateProcessing":
                        steps.Add((Template(p, "single", path), Template(p, "pair", path)));
                        break;
                    default:
                        throw TokenizerConfig.Invalid(path, $"post-processor type '{type}' is not one of TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence");
                }
            }

            static int PairId(JsonElement p, string key, string path) =>
                p.TryGetProperty(key, out var pair) && pair.ValueKind == JsonValueKind.Array && pair.GetArrayLength() == 2 && pair[1].TryGetInt32(out int id)
                    ? id
                    : throw TokenizerConfig.Invalid(path, $"the {p.GetProperty("type").GetString()} post-processor's '{key}' is not a [token, id] pair");

            static Piece[] Template(JsonElement p, string which, string path)
            {
                if (!p.TryGetProperty(which, out var template) || template.ValueKind != JsonValueKind.Array)
                {
                    if (which == "single") throw TokenizerConfig.Invalid(path, "the TemplateProcessing post-processor has no 'single' template");
                    return new[] { new Piece(null, 0, 0), new Piece(null, 1, 1) };
                }
                var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
                if (p.TryGetProperty("special_tokens", out var map) && map.ValueKind == JsonValueKind.Object)
                    foreach (var entry in map.EnumerateObject())
                    {
                        if (!entry.Value.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
                            throw TokenizerConfig.Invalid(path, $"TemplateProcessing special token '{entry.Name}' has no 'ids' list");
                        specials[entry.Name] = ids.EnumerateArray().Select(i => i.GetInt32()).ToArray();
                    }
                static int TypeOf(JsonElement e) => e.TryGetProperty("type_id", out var ti) && ti.TryGetInt32(out int v) ? v : 0;
                var parts = new List<Piece>();
                foreach (var piece in template.EnumerateArray())
                {
                    if (piece.TryGetProperty("Sequence", out var seq))
                        parts.Add(new Piece(null, seq.TryGetProperty("id", out var sid) && sid.GetString() == "B" ? 1 : 0, TypeOf(seq)));
                    else if (piece.TryGetProperty("SpecialToken", out var st) && st.TryGetProperty("id", out var name) && name.ValueKind == JsonValueKind.String)
                        parts.Add(new Piece(specials.TryGetValue(name.GetString()!, out var ids) ? ids
                            : throw TokenizerConfig.Invalid(path, $"the TemplateProcessing template uses '{name.GetString()}', which its special_tokens do not define"), 0, TypeOf(st)));
                    else throw TokenizerConfig.Invalid(path, $"TemplateProcessing piece {piece.GetRawText()} is neither a Sequence nor a SpecialToken");
                }
                return parts.ToArray();
            }
        }
    }
}
