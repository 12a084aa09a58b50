using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Text;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>Sizes of a tiny random encoder (defaults: a 2-layer, 64-wide BERT).</summary>
    public sealed record TinyEncoderOptions
    {
        /// <summary>model_type: bert or roberta.</summary>
        public string Architecture { get; init; } = "bert";
        /// <summary>hidden_size.</summary>
        public int HiddenSize { get; init; } = 64;
        /// <summary>intermediate_size.</summary>
        public int IntermediateSize { get; init; } = 128;
        /// <summary>num_hidden_layers.</summary>
        public int Layers { get; init; } = 2;
        /// <summary>num_attention_heads.</summary>
        public int Heads { get; init; } = 4;
        /// <summary>Longest input in tokens (max_position_embeddings; RoBERTa adds pad_token_id + 1 rows).</summary>
        public int MaxLength { get; init; } = 128;
        /// <summary>Label names: given, the model is the …ForSequenceClassification one with a fresh head; null: the bare encoder.</summary>
        public IReadOnlyList<string>? Labels { get; init; }
        /// <summary>Whole words for the WordPiece vocabulary (e.g. the frequent words of a corpus).</summary>
        public IReadOnlyList<string> Words { get; init; } = Array.Empty<string>();
        /// <summary>Seed of the random weights.</summary>
        public long Seed { get; init; }
    }

    /// <summary>
    /// Random BERT/RoBERTa encoders saved as real Hugging Face folders with a WordPiece tokenizer
    /// (<see cref="WordPieceTokenizerFactory"/>), initialised as transformers does (weights normal(0, 0.02), biases 0,
    /// LayerNorm 1 and 0), for tests and examples.
    /// </summary>
    public static class TinyEncoderFactory
    {
        /// <summary>The configuration <paramref name="options"/> describe, for a vocabulary of <paramref name="vocabSize"/> tokens.</summary>
        public static EncoderConfig Config(TinyEncoderOptions options, int vocabSize)
        {
            if (!EncoderConfig.SupportedModelTypes.Contains(options.Architecture))
                throw new GraloraException("UnsupportedArchitecture", GraloraErrorKind.InvalidArgument,
                    $"Architecture '{options.Architecture}' is not an encoder; use bert or roberta.", options.Architecture);
            foreach (var (name, value) in new[] { ("HiddenSize", options.HiddenSize), ("IntermediateSize", options.IntermediateSize), ("Layers", options.Layers), ("Heads", options.Heads), ("MaxLength", options.MaxLength) })
                if (value < 1) throw new GraloraException("InvalidModelSize", GraloraErrorKind.InvalidArgument, $"{name} = {value} must be at least 1.", name);
            if (options.HiddenSize % options.Heads != 0)
                throw new GraloraException("InvalidModelSize", GraloraErrorKind.InvalidArgument, $"HiddenSize {options.HiddenSize} must split into {options.Heads} heads.", options.HiddenSize);
            bool roberta = options.Architecture == "roberta";
            return new EncoderConfig
            {
                ModelType = options.Architecture,
                VocabSize = vocabSize,
                HiddenSize = options.HiddenSize,
                IntermediateSize = options.IntermediateSize,
                NumLayers = options.Layers,
                NumHeads = options.Heads,
                MaxPositionEmbeddings = options.MaxLength + (roberta ? 2 : 0),
                TypeVocabSize = roberta ? 1 : 2,
                LayerNormEps = roberta ? 1e-5 : 1e-12,
                PadTokenId = roberta ? 1 : 0,
                BosTokenId = roberta ? 0 : null,
                EosTokenId = roberta ? 2 : null,
                Labels = options.Labels ?? new[] { "LABEL_0", "LABEL_1" },
                IsSequenceClassification = options.Labels is not null,
                TorchDtype = "float32",
            };
        }

        /// <summary>
        /// Saves a random encoder with its tokenizer as a Hugging Face folder; an existing non-empty folder is replaced only
        /// with <paramref name="overwrite"/> (<see cref="IO.OutputTarget"/>). Returns the full path.
        /// </summary>
        public static string Save(string folder, TinyEncoderOptions options, bool overwrite = false)
        {
            IO.OutputTarget.CheckFolder(folder, overwrite);
            TorchRuntime.EnsureInitialized();
            int vocabSize = WordPieceTokenizerFactory.Vocabulary(new WordPieceTokenizerOptions { Style = options.Architecture == "roberta" ? "roberta" : "bert", Words = options.Words }).Count;
            var config = Config(options, vocabSize);
            bool classification = options.Labels is not null;
            if (classification && (options.Labels!.Count < 2 || options.Labels.Distinct().Count() != options.Labels.Count))
                throw new GraloraException("InvalidClassLabels", GraloraErrorKind.InvalidArgument, $"Labels ({string.Join(", ", options.Labels)}) must be at least two distinct names.", string.Join(",", options.Labels));
            using var model = new EncoderModel(config, classification);
            var generator = new Generator((ulong)options.Seed);
            using (no_grad())
                foreach (var (name, p) in model.named_parameters())
                {
                    if (name.EndsWith("LayerNorm.weight", StringComparison.Ordinal)) p.fill_(1);
                    else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
                    else p.copy_(normal(0, 0.02, p.shape, generator: generator));
                }
            var weights = new AdapterHost(model, EncoderModel.ClassificationHeadName).MergedWeights();
            CheckpointWriter.SaveFolder(folder, weights, ScalarType.Float32, CheckpointWriter.DefaultMaxShardBytes, config.ToJson(classification), staging =>
                WordPieceTokenizerFactory.Write(staging, new WordPieceTokenizerOptions { Style = config.ModelType, Words = options.Words, ModelMaxLength = options.MaxLength }), overwrite);
            return Path.GetFullPath(folder);
        }
    }
}
