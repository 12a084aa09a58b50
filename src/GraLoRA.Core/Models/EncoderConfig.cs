using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GraLoRA.Models
{
    /// <summary>What an encoder checkpoint is loaded as: the bare encoder (BertModel) or the sequence classifier (…ForSequenceClassification).</summary>
    public enum EncoderTask
    {
        /// <summary>Whatever config.json's architectures name (a …ForSequenceClassification checkpoint loads with its head).</summary>
        Auto,
        /// <summary>The bare encoder: last_hidden_state, pooler_output, hidden states.</summary>
        Base,
        /// <summary>The encoder with transformers' classification head (logits per label).</summary>
        SequenceClassification,
    }

    /// <summary>The config.json fields a BERT or RoBERTa encoder needs, validated on load.</summary>
    public sealed record EncoderConfig
    {
        /// <summary>model_type: bert or roberta.</summary>
        public string ModelType { get; init; } = "bert";
        /// <summary>vocab_size.</summary>
        public int VocabSize { get; init; }
        /// <summary>hidden_size.</summary>
        public int HiddenSize { get; init; }
        /// <summary>intermediate_size.</summary>
        public int IntermediateSize { get; init; }
        /// <summary>num_hidden_layers.</summary>
        public int NumLayers { get; init; }
        /// <summary>num_attention_heads.</summary>
        public int NumHeads { get; init; }
        /// <summary>hidden_act: gelu (exact), gelu_new / gelu_pytorch_tanh (tanh approximation) or relu.</summary>
        public string HiddenAct { get; init; } = "gelu";
        /// <summary>max_position_embeddings (rows of the position table; RoBERTa's first padding_idx + 1 rows are never used by real tokens).</summary>
        public int MaxPositionEmbeddings { get; init; } = 512;
        /// <summary>type_vocab_size (2 for BERT, 1 for RoBERTa).</summary>
        public int TypeVocabSize { get; init; } = 2;
        /// <summary>layer_norm_eps.</summary>
        public double LayerNormEps { get; init; } = 1e-12;
        /// <summary>pad_token_id (RoBERTa's position ids start at pad_token_id + 1).</summary>
        public int PadTokenId { get; init; }
        /// <summary>hidden_dropout_prob (applied in training only).</summary>
        public double HiddenDropout { get; init; } = 0.1;
        /// <summary>attention_probs_dropout_prob (training only).</summary>
        public double AttentionDropout { get; init; } = 0.1;
        /// <summary>classifier_dropout; null: hidden_dropout_prob, as transformers does.</summary>
        public double? ClassifierDropout { get; init; }
        /// <summary>The label names in index order (id2label); their count is num_labels.</summary>
        public IReadOnlyList<string> Labels { get; init; } = new[] { "LABEL_0", "LABEL_1" };
        /// <summary>True when config.json's architectures name a …ForSequenceClassification model.</summary>
        public bool IsSequenceClassification { get; init; }
        /// <summary>torch_dtype; null when the config does not say.</summary>
        public string? TorchDtype { get; init; }
        /// <summary>bos_token_id / eos_token_id (RoBERTa 0 / 2); null when absent.</summary>
        public int? BosTokenId { get; init; }
        /// <summary>eos_token_id; null when absent.</summary>
        public int? EosTokenId { get; init; }

        /// <summary>The model types implemented.</summary>
        public static IReadOnlyCollection<string> SupportedModelTypes { get; } = new[] { "bert", "roberta" };

        /// <summary>True when <paramref name="configPath"/>'s model_type is an encoder this toolkit implements.</summary>
        public static bool IsEncoderConfig(string configPath)
        {
            if (!File.Exists(configPath)) return false;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
                return doc.RootElement.TryGetProperty("model_type", out var t) && t.ValueKind == JsonValueKind.String && SupportedModelTypes.Contains(t.GetString());
            }
            catch (JsonException) { return false; }
        }

        /// <summary>Head width per attention head.</summary>
        public int HeadDim => HiddenSize / NumHeads;

        /// <summary>The dropout of the classification head.</summary>
        public double HeadDropout => ClassifierDropout ?? HiddenDropout;

        /// <summary>transformers' class name for this type and task.</summary>
        public string ArchitectureName(bool classification) =>
            (ModelType == "roberta" ? "Roberta" : "Bert") + (classification ? "ForSequenceClassification" : "Model");

        /// <summary>config.json as transformers writes it (labels as id2label/label2id).</summary>
        public JsonObject ToJson(bool classification)
        {
            var id2label = new JsonObject();
            var label2id = new JsonObject();
            for (int i = 0; i < Labels.Count; i++)
            {
                id2label[i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = Labels[i];
                label2id[Labels[i]] = i;
            }
            var json = new JsonObject
            {
                ["architectures"] = new JsonArray(ArchitectureName(classification)),
                ["model_type"] = ModelType,
                ["vocab_size"] = VocabSize,
                ["hidden_size"] = HiddenSize,
                ["intermediate_size"] = IntermediateSize,
                ["num_hidden_layers"] = NumLayers,
                ["num_attention_heads"] = NumHeads,
                ["hidden_act"] = HiddenAct,
                ["max_position_embeddings"] = MaxPositionEmbeddings,
                ["type_vocab_size"] = TypeVocabSize,
                ["layer_norm_eps"] = LayerNormEps,
                ["pad_token_id"] = PadTokenId,
                ["hidden_dropout_prob"] = HiddenDropout,
                ["attention_probs_dropout_prob"] = AttentionDropout,
                ["classifier_dropout"] = ClassifierDropout,
                ["position_embedding_type"] = "absolute",
                ["id2label"] = id2label,
                ["label2id"] = label2id,
                ["torch_dtype"] = TorchDtype ?? "float32",
            };
            if (BosTokenId is { } bos) json["bos_token_id"] = bos;
            if (EosTokenId is { } eos) json["eos_token_id"] = eos;
            return json;
        }

        /// <summary>Reads config.json of a BERT or RoBERTa checkpoint; missing or mistyped fields and unimplemented settings name the field.</summary>
        public static EncoderConfig Load(string path) => Load(path, out _);

        /// <summary>Reads config.json, also returning every field consulted (the audit in docs/models.md is checked against it).</summary>
        internal static EncoderConfig Load(string path, out IReadOnlySet<string> fieldsRead)
        {
            using var f = ConfigFields.Open(path);
            fieldsRead = f.Read;
            int Int(string name, int? fallback = null) => f.Int(name, fallback);
            double Num(string name, double fallback) => f.Num(name, fallback);
            int? OptionalInt(string name) => f.TryGet(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;

            string type = f.String("model_type") ?? throw f.Bad("model_type", "is missing");
            if (!SupportedModelTypes.Contains(type))
                throw new GraloraException("UnsupportedArchitecture", GraloraErrorKind.InvalidData,
                    $"'{path}': model_type '{type}' is not an encoder this toolkit implements (bert, roberta).", type);
            string act = f.String("hidden_act") ?? "gelu";
            if (act is not ("gelu" or "gelu_new" or "gelu_pytorch_tanh" or "relu"))
                throw f.Unsupported("hidden_act", $"'{act}'", "gelu, gelu_new, gelu_pytorch_tanh and relu are");
            f.RefuseUnless("position_embedding_type", v => v.ValueKind == JsonValueKind.String && v.GetString() == "absolute", "only absolute position embeddings are");
            f.RefuseUnless("problem_type", v => v.ValueKind == JsonValueKind.String && v.GetString() == "single_label_classification",
                "only single_label_classification (cross-entropy over one label) is");
            f.RefuseUnless("is_decoder", ConfigFields.IsFalse, "only the bidirectional encoder (false) is");
            f.RefuseUnless("add_cross_attention", ConfigFields.IsFalse, "cross-attention is not implemented (false)");
            f.RefuseUnless("quantization_config", _ => false, "quantised encoders are not implemented: load the full-precision checkpoint");
            GraloraException Bad(string _, string field, string problem) => f.Bad(field, problem);

            var labels = new List<string>();
            if (f.TryGet("id2label", out var id2label) && id2label.ValueKind == JsonValueKind.Object)
            {
                var pairs = new SortedDictionary<int, string>();
                foreach (var p in id2label.EnumerateObject())
                {
                    if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id) || p.Value.ValueKind != JsonValueKind.String)
                        throw Bad(path, "id2label", $"maps '{p.Name}' to {p.Value.GetRawText()}: keys must be label ids and values names");
                    pairs[id] = p.Value.GetString()!;
                }
                if (pairs.Count > 0 && (pairs.Keys.First() != 0 || pairs.Keys.Last() != pairs.Count - 1))
                    throw Bad(path, "id2label", "must number its labels 0, 1, 2 … without gaps");
                labels.AddRange(pairs.Values);
            }
            int numLabels = OptionalInt("num_labels") ?? (labels.Count > 0 ? labels.Count : 2);
            if (labels.Count == 0) labels.AddRange(Enumerable.Range(0, numLabels).Select(i => "LABEL_" + i));
            bool classification = f.TryGet("architectures", out var arch) && arch.ValueKind == JsonValueKind.Array
                && arch.EnumerateArray().Any(a => a.ValueKind == JsonValueKind.String && a.GetString()!.EndsWith("ForSequenceClassification", StringComparison.Ordinal));
            int hidden = Int("hidden_size"), heads = Int("num_attention_heads");
            if (hidden % heads != 0) throw Bad(path, "num_attention_heads", $"({heads}) does not divide hidden_size {hidden}");
            return new EncoderConfig
            {
                ModelType = type,
                VocabSize = Int("vocab_size"),
                HiddenSize = hidden,
                IntermediateSize = Int("intermediate_size"),
                NumLayers = Int("num_hidden_layers"),
                NumHeads = heads,
                HiddenAct = act,
                MaxPositionEmbeddings = Int("max_position_embeddings", 512),
                TypeVocabSize = Int("type_vocab_size", 2),
                LayerNormEps = Num("layer_norm_eps", 1e-12),
                PadTokenId = Int("pad_token_id", type == "roberta" ? 1 : 0),
                HiddenDropout = Num("hidden_dropout_prob", 0.1),
                AttentionDropout = Num("attention_probs_dropout_prob", 0.1),
                ClassifierDropout = f.OptionalNum("classifier_dropout"),
                Labels = labels,
                IsSequenceClassification = classification,
                TorchDtype = f.DType(),
                BosTokenId = OptionalInt("bos_token_id"),
                EosTokenId = OptionalInt("eos_token_id"),
            };
        }
    }
}
