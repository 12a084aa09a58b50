using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>Sizes of a tiny random decoder (defaults: a 2-layer, 64-wide model with grouped-query attention).</summary>
    public sealed record TinyModelOptions
    {
        /// <summary>model_type: llama, mistral, qwen2, qwen3, gemma2, gemma3_text or phi3.</summary>
        public string Architecture { get; init; } = "llama";
        /// <summary>hidden_size.</summary>
        public int HiddenSize { get; init; } = 64;
        /// <summary>intermediate_size.</summary>
        public int IntermediateSize { get; init; } = 128;
        /// <summary>num_hidden_layers.</summary>
        public int Layers { get; init; } = 2;
        /// <summary>num_attention_heads.</summary>
        public int Heads { get; init; } = 4;
        /// <summary>num_key_value_heads.</summary>
        public int KeyValueHeads { get; init; } = 2;
        /// <summary>vocab_size (the tiny byte-level tokenizer needs 256 bytes plus its special tokens).</summary>
        public int VocabSize { get; init; } = 256;
        /// <summary>tie_word_embeddings.</summary>
        public bool TieWordEmbeddings { get; init; }
        /// <summary>Seed of the random weights.</summary>
        public long Seed { get; init; }
        /// <summary>dtype the weights are stored in.</summary>
        public string DType { get; init; } = "float32";
        /// <summary>Split the weights into shards of at most this many bytes.</summary>
        public long MaxShardBytes { get; init; } = CheckpointWriter.DefaultMaxShardBytes;
        /// <summary>bos_token_id written to config.json.</summary>
        public int? BosTokenId { get; init; }
        /// <summary>eos_token_id(s) written to config.json and generation_config.json.</summary>
        public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();
    }

    /// <summary>Random decoders of any supported architecture, in memory or saved as real Hugging Face folders.</summary>
    public static partial class TinyModelFactory
    {
        /// <summary>The configuration <paramref name="options"/> describe (validated like a loaded config.json).</summary>
        public static DecoderConfig Config(TinyModelOptions options)
        {
            if (!DecoderConfig.SupportedModelTypes.Contains(options.Architecture))
                throw new GraloraException("UnsupportedArchitecture", GraloraErrorKind.InvalidArgument,
                    $"Architecture '{options.Architecture}' is not supported; use one of {string.Join(", ", DecoderConfig.SupportedModelTypes)}.", options.Architecture);
            void Positive(string name, int value)
            {
                if (value < 1) throw new GraloraException("InvalidModelSize", GraloraErrorKind.InvalidArgument, $"{name} = {value} must be at least 1.", name);
            }
            Positive(nameof(options.HiddenSize), options.HiddenSize);
            Positive(nameof(options.IntermediateSize), options.IntermediateSize);
            Positive(nameof(options.Layers), options.Layers);
            Positive(nameof(options.Heads), options.Heads);
            Positive(nameof(options.KeyValueHeads), options.KeyValueHeads);
            Positive(nameof(options.VocabSize), options.VocabSize);
            if (options.HiddenSize % options.Heads != 0 || options.Heads % options.KeyValueHeads != 0 || (options.HiddenSize / options.Heads) % 2 != 0)
                throw new GraloraException("InvalidModelSize", GraloraErrorKind.InvalidArgument,
                    $"HiddenSize {options.HiddenSize}, Heads {options.Heads}, KeyValueHeads {options.KeyValueHeads}: hidden size must split into heads of even width, and heads into key/value groups.");
            string type = options.Architecture;
            bool gemma = type is "gemma2" or "gemma3_text";
            int headDim = options.HiddenSize / options.Heads;
            // Each family's own layout as its released checkpoints have it: Gemma 2 alternates local and global
            // layers (Gemma 3: five local, one global), Mistral and the rest attend to every earlier token.
            int? window = gemma ? 4096 : null;
            var layerTypes = Enumerable.Range(0, options.Layers).Select(i => type switch
            {
                "gemma2" => (i + 1) % 2 != 0,
                "gemma3_text" => (i + 1) % 6 != 0,
                _ => false,
            } ? DecoderConfig.SlidingAttention : DecoderConfig.FullAttention).ToArray();
            return new DecoderConfig
            {
                ModelType = type,
                VocabSize = options.VocabSize,
                HiddenSize = options.HiddenSize,
                IntermediateSize = options.IntermediateSize,
                NumLayers = options.Layers,
                NumHeads = options.Heads,
                NumKeyValueHeads = options.KeyValueHeads,
                HeadDim = headDim,
                RmsNormEps = type == "phi3" ? 1e-5 : 1e-6,
                HiddenAct = gemma ? "gelu_pytorch_tanh" : "silu",
                RopeTheta = type switch { "llama" => 500000, "gemma2" or "phi3" => 10000, _ => 1000000 },
                LocalRopeTheta = type == "gemma3_text" ? 10000 : null,
                OriginalMaxPositionEmbeddings = type == "phi3" ? 2048 : null,
                SlidingWindow = window,
                LayerTypes = layerTypes,
                QueryPreAttnScalar = gemma ? headDim : null,
                AttnLogitSoftcapping = type == "gemma2" ? 50.0 : null,
                FinalLogitSoftcapping = type == "gemma2" ? 30.0 : null,
                MaxPositionEmbeddings = 2048,
                TieWordEmbeddings = options.TieWordEmbeddings,
                QkvBias = type == "qwen2",
                QkNorm = type is "qwen3" or "gemma3_text",
                TorchDtype = ModelDType.Name(ModelDType.Parse(options.DType)),
                BosTokenId = options.BosTokenId,
                EosTokenIds = options.EosTokenIds,
            };
        }

        /// <summary>A random model in float32 on the CPU; the same seed gives the same weights.</summary>
        public static DecoderForCausalLM Create(TinyModelOptions options)
        {
            TorchRuntime.EnsureInitialized();
            var config = Config(options);
            manual_seed(options.Seed);
            var model = new DecoderForCausalLM(config);
            model.eval();
            return model;
        }

        /// <summary>
        /// Saves a random model as a Hugging Face folder (config.json, generation_config.json, weights in
        /// <see cref="TinyModelOptions.DType"/>, sharded when asked); <paramref name="writeExtras"/> may add files to
        /// the staging folder (e.g. a tokenizer). An existing non-empty folder is replaced only with
        /// <paramref name="overwrite"/> (<see cref="IO.OutputTarget"/>). Returns the full path.
        /// </summary>
        public static string Save(string folder, TinyModelOptions options, Action<string>? writeExtras = null, bool overwrite = false)
        {
            IO.OutputTarget.CheckFolder(folder, overwrite);
            using var model = Create(options);
            CheckpointWriter.Save(model, folder, ModelDType.Parse(options.DType), options.MaxShardBytes, writeExtras: staging =>
            {
                CheckpointWriter.WriteJson(Path.Combine(staging, "generation_config.json"), GenerationConfigJson(model.Config));
                writeExtras?.Invoke(staging);
            }, overwrite: overwrite);
            return Path.GetFullPath(folder);
        }

        static JsonObject GenerationConfigJson(DecoderConfig config)
        {
            var json = new JsonObject { ["_from_model_config"] = true };
            if (config.BosTokenId is { } bos) json["bos_token_id"] = bos;
            if (config.EosTokenIds.Count == 1) json["eos_token_id"] = config.EosTokenIds[0];
            else if (config.EosTokenIds.Count > 1) json["eos_token_id"] = new JsonArray(config.EosTokenIds.Select(i => (JsonNode?)i).ToArray());
            return json;
        }
    }
}
