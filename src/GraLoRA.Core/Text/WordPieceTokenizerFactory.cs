using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using GraLoRA.IO;

namespace GraLoRA.Text
{
    /// <summary>What <see cref="WordPieceTokenizerFactory.Write"/> writes.</summary>
    public sealed record WordPieceTokenizerOptions
    {
        /// <summary>"bert": [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0–4) and [CLS] a [SEP] b [SEP]; "roberta": &lt;s&gt; &lt;pad&gt; &lt;/s&gt; &lt;unk&gt; &lt;mask&gt; and &lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b &lt;/s&gt;.</summary>
        public string Style { get; init; } = "bert";
        /// <summary>Whole words added to the vocabulary after the characters (lower-cased; duplicates dropped).</summary>
        public IReadOnlyList<string> Words { get; init; } = Array.Empty<string>();
        /// <summary>tokenizer_config.json's model_max_length.</summary>
        public int ModelMaxLength { get; init; } = 512;
    }

    /// <summary>
    /// Writes a real WordPiece tokenizer (tokenizer.json + tokenizer_config.json, as transformers saves BERT's) for tiny
    /// encoders: lower-casing BertNormalizer, BertPreTokenizer, a vocabulary of the special tokens, every printable
    /// ASCII character alone and as a "##" continuation, then the given words; anything else is the unknown token.
    /// The post-processor adds the special tokens for single texts and pairs with token types.
    /// </summary>
    public static class WordPieceTokenizerFactory
    {
        /// <summary>The special tokens of <paramref name="style"/>, in id order: pad, unk, cls, sep, mask (RoBERTa: &lt;s&gt;, &lt;pad&gt;, &lt;/s&gt;, &lt;unk&gt;, &lt;mask&gt;).</summary>
        public static IReadOnlyList<string> SpecialTokens(string style) => style switch
        {
            "bert" => new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" },
            "roberta" => new[] { "<s>", "<pad>", "</s>", "<unk>", "<mask>" },
            _ => throw new GraloraException("InvalidTokenizerOptions", GraloraErrorKind.InvalidArgument, $"Tokenizer style '{style}' is not bert or roberta.", style),
        };

        /// <summary>The vocabulary <paramref name="options"/> give, in id order.</summary>
        public static IReadOnlyList<string> Vocabulary(WordPieceTokenizerOptions options)
        {
            var vocab = new List<string>(SpecialTokens(options.Style));
            var seen = new HashSet<string>(vocab, StringComparer.Ordinal);
            void Add(string token)
            {
                if (seen.Add(token)) vocab.Add(token);
            }
            for (char c = '!'; c <= '~'; c++)
                if (!char.IsUpper(c)) Add(c.ToString());
            for (char c = '!'; c <= '~'; c++)
                if (!char.IsUpper(c)) Add("##" + c);
            foreach (var word in options.Words)
            {
                string w = word.Trim().ToLowerInvariant();
                if (w.Length > 0 && !w.Any(char.IsWhiteSpace)) Add(w);
            }
            return vocab;
        }

        /// <summary>Writes tokenizer.json and tokenizer_config.json into <paramref name="folder"/> (atomically); returns the vocabulary size.</summary>
        public static int Write(string folder, WordPieceTokenizerOptions options)
        {
            ArgumentNullException.ThrowIfNull(options);
            var specials = SpecialTokens(options.Style);
            var vocab = Vocabulary(options);
            bool bert = options.Style == "bert";
            string pad = specials[bert ? 0 : 1], unk = specials[bert ? 1 : 3], cls = specials[bert ? 2 : 0], sep = specials[bert ? 3 : 2], mask = specials[4];
            int Id(string token) => Array.IndexOf(specials.ToArray(), token);
            var added = new JsonArray(specials.Select((t, i) => (JsonNode?)new JsonObject
            {
                ["id"] = i, ["content"] = t, ["single_word"] = false, ["lstrip"] = t == mask && !bert, ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            }).ToArray());
            JsonObject Special(string token, int type) => new() { ["SpecialToken"] = new JsonObject { ["id"] = token, ["type_id"] = type } };
            JsonObject Sequence(string id, int type) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
            JsonNode post = bert
                ? new JsonObject
                {
                    ["type"] = "TemplateProcessing",
                    ["single"] = new JsonArray(Special(cls, 0), Sequence("A", 0), Special(sep, 0)),
                    ["pair"] = new JsonArray(Special(cls, 0), Sequence("A", 0), Special(sep, 0), Sequence("B", 1), Special(sep, 1)),
                    ["special_tokens"] = new JsonObject
                    {
                        [cls] = new JsonObject { ["id"] = cls, ["ids"] = new JsonArray(Id(cls)), ["tokens"] = new JsonArray(cls) },
                        [sep] = new JsonObject { ["id"] = sep, ["ids"] = new JsonArray(Id(sep)), ["tokens"] = new JsonArray(sep) },
                    },
                }
                : new JsonObject
                {
                    ["type"] = "RobertaProcessing", ["sep"] = new JsonArray(sep, Id(sep)), ["cls"] = new JsonArray(cls, Id(cls)),
                    ["trim_offsets"] = true, ["add_prefix_space"] = false,
                };
            var vocabJson = new JsonObject();
            for (int i = 0; i < vocab.Count; i++) vocabJson[vocab[i]] = i;
            var tokenizer = new JsonObject
            {
                ["version"] = "1.0",
                ["truncation"] = null,
                ["padding"] = null,
                ["added_tokens"] = added,
                ["normalizer"] = new JsonObject { ["type"] = "BertNormalizer", ["clean_text"] = true, ["handle_chinese_chars"] = true, ["strip_accents"] = null, ["lowercase"] = true },
                ["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" },
                ["post_processor"] = post,
                ["decoder"] = new JsonObject { ["type"] = "WordPiece", ["prefix"] = "##", ["cleanup"] = true },
                ["model"] = new JsonObject
                {
                    ["type"] = "WordPiece", ["unk_token"] = unk, ["continuing_subword_prefix"] = "##", ["max_input_chars_per_word"] = 100, ["vocab"] = vocabJson,
                },
            };
            var decoderTable = new JsonObject();
            for (int i = 0; i < specials.Count; i++)
                decoderTable[i.ToString(CultureInfo.InvariantCulture)] = new JsonObject
                {
                    ["content"] = specials[i], ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = true,
                };
            var config = new JsonObject
            {
                ["added_tokens_decoder"] = decoderTable,
                ["clean_up_tokenization_spaces"] = true,
                ["cls_token"] = cls, ["sep_token"] = sep, ["pad_token"] = pad, ["unk_token"] = unk, ["mask_token"] = mask,
                ["do_lower_case"] = true,
                ["model_max_length"] = options.ModelMaxLength,
                ["tokenizer_class"] = bert ? "BertTokenizer" : "RobertaTokenizer",
            };
            if (!bert)
            {
                config["bos_token"] = cls;
                config["eos_token"] = sep;
            }
            string full = Path.GetFullPath(folder);
            Directory.CreateDirectory(full);
            Models.CheckpointWriter.WriteJson(Path.Combine(full, "tokenizer.json"), tokenizer);
            Models.CheckpointWriter.WriteJson(Path.Combine(full, "tokenizer_config.json"), config);
            return vocab.Count;
        }
    }
}
