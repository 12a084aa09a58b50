using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Generation;
using GraLoRA.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>How to load a model folder.</summary>
    public sealed record BaseModelLoadOptions
    {
        /// <summary>float32, bfloat16 or float16; null keeps the checkpoint's own dtype.</summary>
        public string? DType { get; init; }
        /// <summary>cpu, cuda, cuda:N or auto.</summary>
        public string Device { get; init; } = "cpu";
        /// <summary>
        /// Auto: what config.json names. SequenceClassification: with transformers' classification head (encoders: the
        /// checkpoint's head, or a fresh one when it has none; decoders: a fresh "score" head). Base: the bare model.
        /// </summary>
        public EncoderTask Task { get; init; } = EncoderTask.Auto;
        /// <summary>Number of labels of the classification head (default: the config's id2label, or 2; or the count of <see cref="Labels"/>).</summary>
        public int? NumLabels { get; init; }
        /// <summary>Label names in class-id order (replace the config's id2label).</summary>
        public IReadOnlyList<string>? Labels { get; init; }
        /// <summary>
        /// Quantise the decoder layers' linear weights while loading (bitsandbytes' NF4 or int8; <see cref="DType"/> is then
        /// the compute dtype). Null: load as stored (a checkpoint saved quantised by bitsandbytes loads quantised either way).
        /// </summary>
        public Quantization.QuantizationOptions? Quantize { get; init; }

        /// <summary>The label names these options ask for (null: the config's), checked against <see cref="NumLabels"/>.</summary>
        internal IReadOnlyList<string>? ResolveLabels()
        {
            if (NumLabels is < 2)
                throw new GraloraException("InvalidClassLabels", GraloraErrorKind.InvalidArgument, $"NumLabels {NumLabels} is too small: a classifier needs at least 2 labels.", NumLabels);
            if (Labels is not null && NumLabels is { } n && n != Labels.Count)
                throw new GraloraException("InvalidClassLabels", GraloraErrorKind.InvalidArgument,
                    $"NumLabels {n} disagrees with the {Labels.Count} Labels given ({string.Join(", ", Labels)}): give one of them, or make them agree.", n);
            if (Labels is null && NumLabels is null && Task != EncoderTask.SequenceClassification) return null;
            return Labels ?? (NumLabels is { } count ? Enumerable.Range(0, count).Select(i => "LABEL_" + i).ToArray() : null);
        }
    }

    /// <summary>
    /// A Hugging Face checkpoint loaded for use — a decoder (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 text, Phi-3) or an encoder (BERT, RoBERTa)
    /// — with its configuration, its generation defaults and (when the folder has one) its tokenizer. This is the
    /// object the cmdlets pass down the pipeline.
    /// </summary>
    public sealed partial class BaseModel : IDisposable
    {
        readonly DecoderForCausalLM? _decoder;
        readonly EncoderModel? _encoder;

        /// <summary>A display name: the repository id or the folder name.</summary>
        public string Name { get; }
        /// <summary>The local folder the model was loaded from.</summary>
        public string Path { get; }
        /// <summary>The decoder's configuration (encoders: see <see cref="EncoderConfig"/>).</summary>
        public DecoderConfig Config => _decoder?.Config ?? throw NotADecoder("its decoder configuration");
        /// <summary>The decoder network (adapters are injected into it in place); encoders: see <see cref="Encoder"/>.</summary>
        public DecoderForCausalLM Module => _decoder ?? throw NotADecoder("a causal-LM network");
        /// <summary>The encoder network, or null for decoders.</summary>
        public EncoderModel? Encoder => _encoder;
        /// <summary>The encoder's configuration, or null for decoders.</summary>
        public EncoderConfig? EncoderConfig => _encoder?.Config;
        /// <summary>True for BERT/RoBERTa encoders.</summary>
        public bool IsEncoder => _encoder is not null;
        /// <summary>The network, decoder or encoder (the adapters' root).</summary>
        public nn.Module<Tensor, Tensor> Network => (nn.Module<Tensor, Tensor>?)_decoder ?? _encoder!;
        /// <summary>The network's common face: device, dtype, classification head.</summary>
        public ITransformerNetwork Transformer => (ITransformerNetwork?)_decoder ?? _encoder!;
        /// <summary>Generation defaults from generation_config.json (encoders: the defaults, unused).</summary>
        public GenerationOptions GenerationDefaults { get; }
        /// <summary>Names of the classification labels in class-id order (encoder heads: id2label; after classification training: the data's labels), or null.</summary>
        public IReadOnlyList<string>? ClassLabels { get; private set; }

        /// <summary>model_type.</summary>
        public string Architecture => Transformer.ModelType;
        /// <summary>The dtype the weights are held in.</summary>
        public string DType => ModelDType.Name(Transformer.DType);
        /// <summary>The device the weights live on.</summary>
        public string Device => Transformer.Device.ToString();
        /// <summary>Number of parameters (a tied head counted once; a quantised weight counts the values it stands for).</summary>
        public long ParameterCount => Network.parameters().GroupBy(p => p.Handle).Sum(g => g.First().numel()) + QuantizedLoading.Layers(Network).Sum(l => l.Layer.Weight.Count);
        /// <summary>How the decoder layers' linear weights are held: nf4, int8, or null for full precision.</summary>
        public QuantizationScheme? Quantization => QuantizedLoading.Layers(Network).Select(l => (QuantizationScheme?)l.Layer.Weight.Scheme).FirstOrDefault();
        /// <summary>Bytes held by the quantised weights (0 for a full-precision model).</summary>
        public long QuantizedBytes => QuantizedLoading.Layers(Network).Sum(l => l.Layer.Weight.StorageBytes);

        GraloraException NotADecoder(string what) => new("NotADecoder", GraloraErrorKind.InvalidOperation,
            $"Model '{Name}' is a {Architecture} encoder, which has no {what}: generation and causal-LM training need a decoder (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 text, Phi-3); use the encoder for classification and Invoke-BaseModel.", Name);

        BaseModel(string name, string path, DecoderForCausalLM? decoder, EncoderModel? encoder, GenerationOptions defaults)
        {
            Name = name;
            Path = path;
            _decoder = decoder;
            _encoder = encoder;
            GenerationDefaults = defaults;
            if (encoder is { ClassificationLabels: > 0 }) ClassLabels = encoder.Config.Labels;
        }

        /// <summary>Loads a Hugging Face model folder (weights, config, generation config, tokenizer when present).</summary>
        public static BaseModel Load(string folder, BaseModelLoadOptions? options = null, string? name = null)
        {
            options ??= new BaseModelLoadOptions();
            TorchRuntime.EnsureInitialized();
            string full = System.IO.Path.GetFullPath(folder);
            if (!Directory.Exists(full))
                throw new GraloraException("ModelFolderNotFound", GraloraErrorKind.NotFound,
                    $"Model folder '{full}' does not exist: give a folder with config.json and *.safetensors, or a Hugging Face repository id such as Qwen/Qwen2.5-0.5B.", full);
            var device = TorchRuntime.ResolveDevice(options.Device);
            ScalarType? dtype = options.DType is null ? null : ModelDType.Parse(options.DType);
            var labels = options.ResolveLabels();
            string display = name ?? System.IO.Path.GetFileName(full.TrimEnd(System.IO.Path.DirectorySeparatorChar));
            if (EncoderConfig.IsEncoderConfig(System.IO.Path.Combine(full, "config.json")))
            {
                if (options.Quantize is not null)
                    throw new GraloraException("QuantizationUnsupported", GraloraErrorKind.InvalidArgument,
                        $"'{full}' is an encoder (BERT/RoBERTa): quantised bases are implemented for decoders (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 text, Phi-3). Load it without -Quantize.", full);
                var encoder = CheckpointLoader.LoadEncoder(full, options.Task, labels, dtype, device, out _);
                try
                {
                    var model = new BaseModel(display, full, null, encoder, new GenerationOptions());
                    model.AttachTokenizer();
                    return model;
                }
                catch
                {
                    encoder.Dispose();
                    throw;
                }
            }
            var module = CheckpointLoader.LoadDecoder(full, dtype, device, options.Quantize);
            try
            {
                var defaults = GenerationConfig.Load(System.IO.Path.Combine(full, "generation_config.json"), module.Config);
                var model = new BaseModel(display, full, module, null, defaults);
                model.AttachTokenizer();
                if (options.Task == EncoderTask.SequenceClassification || labels is not null)
                {
                    var names = labels ?? new[] { "LABEL_0", "LABEL_1" };
                    module.AttachClassificationHead(names.Count);
                    model.ClassLabels = names;
                }
                return model;
            }
            catch
            {
                module.Dispose();
                throw;
            }
        }

        partial void AttachTokenizer();

        /// <summary>
        /// One forward pass over rectangular token ids [batch][position], with an optional attention mask
        /// (1 = token, 0 = padding) and position ids of the same shape; runs with whatever adapters are active.
        /// </summary>
        public ForwardOutput Forward(IReadOnlyList<IReadOnlyList<int>> inputIds, IReadOnlyList<IReadOnlyList<int>>? attentionMask = null,
                                     IReadOnlyList<IReadOnlyList<int>>? positionIds = null, bool hiddenStates = false)
        {
            using var scope = NewDisposeScope();
            var ids = Matrix(inputIds, "InputIds", null);
            for (int i = 0; i < inputIds.Count; i++)
                foreach (var id in inputIds[i])
                    if (id < 0 || id >= Config.VocabSize)
                        throw new GraloraException("TokenOutOfRange", GraloraErrorKind.InvalidArgument,
                            $"InputIds row {i} has token id {id}, outside the model's vocabulary [0, {Config.VocabSize}).", id);
            var mask = attentionMask is null ? null : Matrix(attentionMask, "AttentionMask", ids.shape);
            var positions = positionIds is null ? null : Matrix(positionIds, "PositionIds", ids.shape);
            var module = Module;
            bool wasTraining = module.training;
            module.eval();
            try
            {
                using var _ = no_grad();
                return new ForwardOutput(module.Forward(ids, mask, positions, hiddenStates));
            }
            finally
            {
                if (wasTraining) module.train();
            }
        }

        /// <summary>
        /// One encoder pass (BERT/RoBERTa) over rectangular token ids [batch][position], with optional attention mask,
        /// token type ids and position ids of the same shape: last_hidden_state, pooler_output (when the model has a
        /// pooler), logits (classification models) and, when asked, the hidden states.
        /// </summary>
        public EncoderForwardOutput ForwardEncoder(IReadOnlyList<IReadOnlyList<int>> inputIds, IReadOnlyList<IReadOnlyList<int>>? attentionMask = null,
                                                  IReadOnlyList<IReadOnlyList<int>>? tokenTypeIds = null, IReadOnlyList<IReadOnlyList<int>>? positionIds = null,
                                                  bool hiddenStates = false)
        {
            var encoder = _encoder ?? throw new GraloraException("NotAnEncoder", GraloraErrorKind.InvalidOperation,
                $"Model '{Name}' is a {Architecture} decoder: token type ids and pooled outputs belong to encoders (BERT, RoBERTa); call Forward.", Name);
            using var scope = NewDisposeScope();
            var ids = Matrix(inputIds, "InputIds", null);
            for (int i = 0; i < inputIds.Count; i++)
                foreach (var id in inputIds[i])
                    if (id < 0 || id >= encoder.Config.VocabSize)
                        throw new GraloraException("TokenOutOfRange", GraloraErrorKind.InvalidArgument,
                            $"InputIds row {i} has token id {id}, outside the model's vocabulary [0, {encoder.Config.VocabSize}).", id);
            var mask = attentionMask is null ? null : Matrix(attentionMask, "AttentionMask", ids.shape);
            var types = tokenTypeIds is null ? null : Matrix(tokenTypeIds, "TokenTypeIds", ids.shape);
            var positions = positionIds is null ? null : Matrix(positionIds, "PositionIds", ids.shape);
            bool wasTraining = encoder.training;
            encoder.eval();
            try
            {
                using var _ = no_grad();
                return new EncoderForwardOutput(encoder.Forward(ids, mask, types, positions, hiddenStates));
            }
            finally
            {
                if (wasTraining) encoder.train();
            }
        }

        Tensor Matrix(IReadOnlyList<IReadOnlyList<int>> rows, string what, long[]? shape)
        {
            if (rows.Count == 0 || rows[0].Count == 0)
                throw new GraloraException("EmptyInput", GraloraErrorKind.InvalidArgument, $"{what} is empty: give at least one row with at least one token.", what);
            for (int i = 1; i < rows.Count; i++)
                if (rows[i].Count != rows[0].Count)
                    throw new GraloraException("RaggedInput", GraloraErrorKind.InvalidArgument,
                        $"{what} row {i} has {rows[i].Count} entries but row 0 has {rows[0].Count}: pad rows to one length and mark padding with AttentionMask 0.", what);
            if (shape is not null && (rows.Count != shape[0] || rows[0].Count != shape[1]))
                throw new GraloraException("InputShapeMismatch", GraloraErrorKind.InvalidArgument,
                    $"{what} is {rows.Count} × {rows[0].Count} but InputIds is {shape[0]} × {shape[1]}.", what);
            var flat = rows.SelectMany(r => r.Select(v => (long)v)).ToArray();
            return tensor(flat, new long[] { rows.Count, rows[0].Count }, device: Transformer.Device);
        }

        /// <inheritdoc />
        public override string ToString() => $"{Name} ({Architecture}, {DType}, {Device})";

        /// <inheritdoc />
        public void Dispose()
        {
            DisposeTokenizer();
            Network.Dispose();
        }

        partial void DisposeTokenizer();
    }
}
