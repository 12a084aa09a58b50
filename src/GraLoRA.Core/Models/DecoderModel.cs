using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using GraLoRA.Adapters;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>Outputs of one forward pass.</summary>
    public sealed record DecoderOutput(Tensor Logits, IReadOnlyList<Tensor> HiddenStates);

    /// <summary>
    /// A decoder-only causal LM (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3 text, Phi-3) with transformers' module names
    /// (model.layers.N.self_attn.q_proj, …, lm_head), so checkpoint keys and adapter targets line up.
    /// </summary>
    public sealed class DecoderForCausalLM : LinearSlotModule, ITransformerNetwork
    {
        internal DecoderBackbone model;
        [LinearSlot] internal nn.Module<Tensor, Tensor> lm_head;
        [LinearSlot] internal nn.Module<Tensor, Tensor>? score;

        /// <summary>The classification head's name (transformers' *ForSequenceClassification "score").</summary>
        public const string ClassificationHeadName = "score";

        /// <summary>Labels of the classification head, or 0 when there is none.</summary>
        public int ClassificationLabels => score is null ? 0 : (int)Slots.BaseWeight(score).shape[0];

        /// <summary>
        /// Adds transformers' sequence-classification head: "score", Linear(hidden, <paramref name="labels"/>, no bias),
        /// read at each row's last real token. Random (seeded) like a fresh head; train it as a module to save.
        /// </summary>
        public void AttachClassificationHead(int labels, long seed = 0)
        {
            if (labels < 2)
                throw new GraloraException("InvalidClassificationHead", GraloraErrorKind.InvalidArgument, $"A classification head needs at least 2 labels, not {labels}.", labels);
            if (score is not null)
                throw new GraloraException("ClassificationHeadExists", GraloraErrorKind.InvalidOperation,
                    $"The model already has a classification head with {ClassificationLabels} labels.", ClassificationLabels);
            var generator = new Generator((ulong)seed);
            var head = nn.Linear(Config.HiddenSize, labels, hasBias: false, device: Device, dtype: DType);
            using (no_grad())
                head.weight!.copy_(normal(0, 0.02, new long[] { labels, Config.HiddenSize }, generator: generator));   // transformers' initializer_range
            score = head;
            register_module(ClassificationHeadName, head);
        }

        /// <summary>Class logits [B, labels] from the hidden state of each row's last real token (right padding).</summary>
        public Tensor ClassificationLogits(Tensor inputIds, Tensor? attentionMask = null)
        {
            if (score is null)
                throw new GraloraException("NoClassificationHead", GraloraErrorKind.InvalidOperation,
                    "The model has no classification head: attach one for the label set first (training on text + label data does).");
            var hidden = Backbone(inputIds, attentionMask, null, false, null, null).Hidden;                   // [B, L, hidden]
            long b = inputIds.shape[0], l = inputIds.shape[1];
            var last = attentionMask is null ? full(b, l - 1, dtype: ScalarType.Int64, device: inputIds.device) : attentionMask.sum(1, false, ScalarType.Int64) - 1;
            var picked = hidden.gather(1, last.view(b, 1, 1).expand(b, 1, hidden.shape[2])).squeeze(1);    // [B, hidden]
            return score.forward(picked);
        }

        /// <inheritdoc />
        public string ModelType => Config.ModelType;
        /// <inheritdoc />
        public int VocabSize => Config.VocabSize;
        /// <inheritdoc />
        public string ClassificationHead => ClassificationHeadName;
        /// <inheritdoc />
        public bool UsesTokenTypes => false;

        /// <inheritdoc />
        Tensor ITransformerNetwork.ClassificationLogits(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds) => tokenTypeIds is null
            ? ClassificationLogits(inputIds, attentionMask)
            : throw new GraloraException("TokenTypesUnsupported", GraloraErrorKind.InvalidArgument,
                $"{Config.ModelType} decoders have no token types: drop the text pair / token type ids, or join the texts into one.");

        /// <summary>The output head's name: PEFT's all-linear never targets it.</summary>
        public const string OutputHeadName = "lm_head";
        readonly RotaryEmbedding _rope;
        readonly RotaryEmbedding? _localRope;

        /// <summary>The configuration the model was built from.</summary>
        public DecoderConfig Config { get; }

        /// <summary>
        /// Creates a randomly initialised model for <paramref name="config"/>, its parameters created directly in
        /// <paramref name="dtype"/> on <paramref name="device"/> (so loading never holds a float32 copy of a bf16 model).
        /// </summary>
        public DecoderForCausalLM(DecoderConfig config, ScalarType? dtype = null, Device? device = null)
            : this(config, new ParameterInit(dtype, device, Random: true)) { }

        /// <summary>A model whose parameters are uninitialised memory, for a loader to fill (random initialisation is most of a load's time).</summary>
        internal static DecoderForCausalLM Uninitialized(DecoderConfig config, ScalarType dtype, Device device, ScalarType? quantizedCompute = null) =>
            new(config, new ParameterInit(dtype, device, Random: false, quantizedCompute));

        DecoderForCausalLM(DecoderConfig config, ParameterInit p) : base(nameof(DecoderForCausalLM))
        {
            Config = config;
            var device = p.Device;
            model = new DecoderBackbone(config, p);
            var head = p.Linear(config.HiddenSize, config.VocabSize, bias: false);
            if (config.TieWordEmbeddings) head.weight = model.embed_tokens.weight!;
            lm_head = head;
            _rope = new RotaryEmbedding(config, device);
            // Gemma 3's sliding-window layers rotate with their own base and no scaling.
            if (config.LocalRopeTheta is { } local) _localRope = new RotaryEmbedding(config, local, null, device);
            RegisterComponents();
        }

        /// <summary>Logits [B, L, vocab] for input ids [B, L].</summary>
        public override Tensor forward(Tensor inputIds) => Forward(inputIds).Logits;

        /// <summary>
        /// Recompute each decoder layer's activations during backward instead of keeping them (training only): memory
        /// for long sequences at the price of one more forward per layer.
        /// </summary>
        public bool GradientCheckpointing { get; set; }

        /// <summary>The device the parameters live on.</summary>
        public Device Device => model.embed_tokens.weight!.device;

        /// <summary>The dtype of the parameters.</summary>
        public ScalarType DType => model.embed_tokens.weight!.dtype;

        /// <summary>
        /// One forward pass. attention_mask [B, T] (1 = token, 0 = padding; T = cached + L) masks keys; position
        /// ids default to cached..cached+L-1 (as transformers 4.47 does without them). With a
        /// <paramref name="cache"/>, only the new tokens <paramref name="inputIds"/> [B, L] are computed and the cache
        /// grows by L. Hidden states follow transformers: the embeddings, the output of each layer but the last,
        /// then the final norm's output.
        /// </summary>
        /// <param name="inputIds">Token ids [B, L].</param>
        /// <param name="attentionMask">1 = token, 0 = padding, [B, cached + L].</param>
        /// <param name="positionIds">Positions [B, L] (default cached..cached+L-1).</param>
        /// <param name="hiddenStates">Also return the hidden states.</param>
        /// <param name="cache">Key/value cache for incremental decoding.</param>
        /// <param name="segmentIds">
        /// For packed sequences [B, L] (no cache): a token attends only to earlier tokens of the same segment; 0 marks padding.
        /// </param>
        public DecoderOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, bool hiddenStates = false, KeyValueCache? cache = null,
                                     Tensor? segmentIds = null)
        {
            var (h, states) = Backbone(inputIds, attentionMask, positionIds, hiddenStates, cache, segmentIds);
            var logits = lm_head.forward(h);                                                              // [B, L, vocab]
            if (Config.FinalLogitSoftcapping is { } cap) logits = (logits / cap).tanh() * cap;             // Gemma 2
            return new DecoderOutput(logits, states);
        }

        /// <summary>The final norm's output [B, L, hidden] (and, when asked, every hidden state): Forward without the head.</summary>
        (Tensor Hidden, List<Tensor> States) Backbone(Tensor inputIds, Tensor? attentionMask, Tensor? positionIds, bool hiddenStates, KeyValueCache? cache, Tensor? segmentIds)
        {
            long b = inputIds.shape[0], l = inputIds.shape[1];
            long past = cache?.Length ?? 0, total = past + l;
            if (cache is not null && (cache.BatchSize != b || total > cache.Capacity))
                throw new GraloraException("KeyValueCacheTooSmall", GraloraErrorKind.InvalidArgument,
                    $"The key/value cache holds batch {cache.BatchSize} × {cache.Capacity} positions, but this step needs batch {b} × {total}: create it with a larger capacity.");
            if (attentionMask is not null && (attentionMask.shape.Length != 2 || attentionMask.shape[0] != b || attentionMask.shape[1] != total))
                throw new GraloraException("AttentionMaskShape", GraloraErrorKind.InvalidArgument,
                    $"attention_mask has shape [{string.Join(", ", attentionMask.shape)}] but must be [{b}, {total}] (batch × (cached + new) tokens).");
            var device = inputIds.device;
            var h = model.embed_tokens.forward(inputIds);
            var dtype = h.dtype;
            // Gemma scales embeddings by √hidden, the factor rounded to the model's dtype first (as transformers does).
            if (Config.IsGemma) h = h * tensor(Math.Sqrt(Config.HiddenSize), dtype: ScalarType.Float32).to(dtype);
            positionIds ??= arange(past, total, device: device).unsqueeze(0).expand(b, l);
            var (cos, sin) = _rope.Compute(positionIds, dtype);
            var (localCos, localSin) = _localRope is null ? (cos, sin) : _localRope.Compute(positionIds, dtype);
            if (segmentIds is not null && (cache is not null || !segmentIds.shape.SequenceEqual(inputIds.shape)))
                throw new GraloraException("SegmentIdsShape", GraloraErrorKind.InvalidArgument,
                    $"segment ids must have the input's shape [{b}, {l}] and cannot be combined with a key/value cache.");
            // One mask per distinct window (most models have one or two): full layers see every earlier key. None
            // (plain causal attention) where AttentionMask.NeedsExplicitMask says it would change nothing.
            var masks = new Dictionary<int, Tensor?>();
            Tensor? MaskFor(int? window) => masks.TryGetValue(window ?? 0, out var m) ? m
                : masks[window ?? 0] = AttentionMask.NeedsExplicitMask(past, l, attentionMask, segmentIds, window, Config.EagerAttention)
                    ? AttentionMask.Build(b, past, l, attentionMask, segmentIds, window, dtype, device)
                    : null;

            bool checkpoint = GradientCheckpointing && training && cache is null && is_grad_enabled();
            // Checkpointed layers only join the graph when their input requires grad (transformers' enable_input_require_grads).
            if (checkpoint && !h.requires_grad) h = h.detach().requires_grad_(true);
            var states = new List<Tensor>();
            for (int index = 0; index < model.layers.Count; index++)
            {
                var layer = model.layers[index];
                if (hiddenStates) states.Add(h);
                int? window = Config.WindowOf(index);
                var mask = MaskFor(window);
                var (layerCos, layerSin, rope) = window is not null && _localRope is not null ? (localCos, localSin, _localRope) : (cos, sin, _rope);
                h = checkpoint ? LayerCheckpoint.apply(layer, h, layerCos, layerSin, mask, rope) : layer.Forward(h, layerCos, layerSin, mask, rope, cache, index);
            }
            cache?.Advance(l);
            h = model.norm.forward(h);
            if (hiddenStates) states.Add(h);
            return (h, states);
        }
    }
}

