using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using GraLoRA.Adapters;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>How a decoder's parameters start: randomly initialised, or uninitialised memory that a loader fills.</summary>
    internal readonly record struct ParameterInit(ScalarType? DType, Device? Device, bool Random)
    {
        public Linear Linear(long inFeatures, long outFeatures, bool bias) => Random
            ? nn.Linear(inFeatures, outFeatures, hasBias: bias, device: Device, dtype: DType)
            : nn.Linear(new Parameter(empty(outFeatures, inFeatures, dtype: DType, device: Device)),
                        bias ? new Parameter(empty(outFeatures, dtype: DType, device: Device)) : null);

        // Always initialised: an Embedding built from a given tensor did not use the memory a loader later filled.
        public Embedding Embedding(long count, long width) => nn.Embedding(count, width, device: Device, dtype: DType);
    }

    /// <summary>RMSNorm as transformers computes it: normalise in float32, scale in the input dtype.</summary>
    public sealed class RmsNorm : nn.Module<Tensor, Tensor>
    {
        readonly Parameter weight;
        readonly double _eps;

        /// <summary>Creates the norm over the last dimension of size <paramref name="size"/>.</summary>
        public RmsNorm(long size, double eps, ScalarType? dtype = null, Device? device = null) : base(nameof(RmsNorm))
        {
            weight = new Parameter(ones(size, dtype: dtype, device: device));
            _eps = eps;
            RegisterComponents();
        }

        /// <inheritdoc />
        public override Tensor forward(Tensor x)
        {
            var dtype = x.dtype;
            var h = x.to(ScalarType.Float32);
            h = h * rsqrt(h.pow(2).mean(new long[] { -1 }, keepdim: true) + _eps);
            return weight * h.to(dtype);
        }
    }

    /// <summary>Rotary position embedding (transformers' default and llama3 rope types).</summary>
    public sealed class RotaryEmbedding
    {
        /// <summary>Inverse frequencies [rotary_dim / 2] (float32).</summary>
        public Tensor InvFreq { get; }
        /// <summary>Rotated width of each head.</summary>
        public long RotaryDim { get; }

        /// <summary>Builds the frequencies for <paramref name="config"/>.</summary>
        public RotaryEmbedding(DecoderConfig config, Device? device = null)
        {
            RotaryDim = (long)(config.HeadDim * config.PartialRotaryFactor);
            var exponents = arange(0, RotaryDim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32) / RotaryDim;
            var inv = 1.0f / pow(config.RopeTheta, exponents);
            if (config.Llama3RopeScaling is { } s)
            {
                // transformers' _compute_llama3_parameters
                double lowWavelen = s.OriginalMaxPositions / s.LowFreqFactor, highWavelen = s.OriginalMaxPositions / s.HighFreqFactor;
                var wavelen = 2 * Math.PI / inv;
                var scaled = where(wavelen > lowWavelen, inv / s.Factor, inv);
                var smooth = (s.OriginalMaxPositions / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                var smoothed = (1 - smooth) * scaled / s.Factor + smooth * scaled;
                var medium = (wavelen >= highWavelen).logical_and(wavelen <= lowWavelen);
                inv = where(medium, smoothed, scaled);
            }
            InvFreq = (device is null ? inv : inv.to(device)).DetachFromDisposeScope();
        }

        /// <summary>cos and sin [B, L, rotary_dim] for position ids [B, L], in <paramref name="dtype"/>.</summary>
        public (Tensor Cos, Tensor Sin) Compute(Tensor positionIds, ScalarType dtype)
        {
            var freqs = positionIds.to(ScalarType.Float32).unsqueeze(-1) * InvFreq.to(positionIds.device);   // [B, L, dim/2]
            var emb = cat(new[] { freqs, freqs }, -1);
            return (emb.cos().to(dtype), emb.sin().to(dtype));
        }

        static Tensor RotateHalf(Tensor x)
        {
            long half = x.shape[^1] / 2;
            return cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1);
        }

        /// <summary>Applies the rotation to x [B, H, L, D] (the first rotary_dim features).</summary>
        public Tensor Apply(Tensor x, Tensor cos, Tensor sin)
        {
            cos = cos.unsqueeze(1);
            sin = sin.unsqueeze(1);
            if (RotaryDim == x.shape[^1]) return x * cos + RotateHalf(x) * sin;
            var rot = x.narrow(-1, 0, RotaryDim);
            var pass = x.narrow(-1, RotaryDim, x.shape[^1] - RotaryDim);
            return cat(new[] { rot * cos + RotateHalf(rot) * sin, pass }, -1);
        }
    }

    /// <summary>Self-attention with grouped-query heads; projections are replaceable by adapters.</summary>
    public sealed class DecoderAttention : nn.Module<Tensor, Tensor>, ILinearSlots
    {
        static readonly string[] SlotNames = { "q_proj", "k_proj", "v_proj", "o_proj" };

        /// <inheritdoc />
        public IReadOnlyList<string> LinearSlotNames => SlotNames;

        /// <inheritdoc />
        public nn.Module<Tensor, Tensor> GetSlot(string name) => name switch
        {
            "q_proj" => q_proj, "k_proj" => k_proj, "v_proj" => v_proj, "o_proj" => o_proj,
            _ => throw Slots.Unknown(name, SlotNames),
        };

        /// <inheritdoc />
        public void SetSlot(string name, nn.Module<Tensor, Tensor> module) => Slots.Replace(this, name, module, name switch
        {
            "q_proj" => m => q_proj = m, "k_proj" => m => k_proj = m, "v_proj" => m => v_proj = m, "o_proj" => m => o_proj = m,
            _ => throw Slots.Unknown(name, SlotNames),
        });

        internal nn.Module<Tensor, Tensor> q_proj, k_proj, v_proj, o_proj;
        internal RmsNorm? q_norm, k_norm;
        readonly DecoderConfig _c;

        /// <summary>Creates the projections for <paramref name="c"/>.</summary>
        internal DecoderAttention(DecoderConfig c, ParameterInit p) : base(nameof(DecoderAttention))
        {
            _c = c;
            q_proj = p.Linear(c.HiddenSize, c.NumHeads * c.HeadDim, c.QkvBias);
            k_proj = p.Linear(c.HiddenSize, c.NumKeyValueHeads * c.HeadDim, c.QkvBias);
            v_proj = p.Linear(c.HiddenSize, c.NumKeyValueHeads * c.HeadDim, c.QkvBias);
            o_proj = p.Linear(c.NumHeads * c.HeadDim, c.HiddenSize, c.OutputBias);
            if (c.QkNorm)
            {
                q_norm = new RmsNorm(c.HeadDim, c.RmsNormEps, p.DType, p.Device);
                k_norm = new RmsNorm(c.HeadDim, c.RmsNormEps, p.DType, p.Device);
            }
            RegisterComponents();
        }

        /// <summary>Not used: attention needs positions and a mask (see <see cref="Forward"/>).</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("DecoderAttention needs rotary embeddings and a mask: call Forward.");

        /// <summary>
        /// Attention over x [B, L, hidden] with an additive mask [B, 1, L, T] where T = cached + L keys, or, without a
        /// mask, plain causal attention over T = L keys. With a cache, this layer's new keys and values are written into
        /// it and attention reads all T of them.
        /// </summary>
        public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, RotaryEmbedding rope, KeyValueCache? cache = null, int layerIndex = 0)
        {
            long b = x.shape[0], l = x.shape[1];
            Tensor Heads(Tensor t, long n, RmsNorm? norm)
            {
                var h = t.view(b, l, n, _c.HeadDim);
                if (norm != null) h = norm.forward(h);
                return h.transpose(1, 2);                                             // [B, n, L, D]
            }
            var q = rope.Apply(Heads(q_proj.forward(x), _c.NumHeads, q_norm), cos, sin);
            var k = rope.Apply(Heads(k_proj.forward(x), _c.NumKeyValueHeads, k_norm), cos, sin);
            var v = Heads(v_proj.forward(x), _c.NumKeyValueHeads, null);
            if (cache is not null) (k, v) = cache.Append(layerIndex, k, v);            // [B, n_kv, T, D]
            long groups = _c.NumHeads / _c.NumKeyValueHeads;
            // TorchSharp 0.107's SDPA has no enable_gqa. With one query position (a cached decoding step) the mask has one
            // row, the same for every head, so a group's g query heads can stand as g query rows against their shared
            // key/value head: no copy of the cache. Otherwise each key/value head is repeated for its group.
            bool foldGroups = groups > 1 && l == 1 && mask is not null;
            if (foldGroups) q = q.reshape(b, _c.NumKeyValueHeads, groups, _c.HeadDim);             // [B, n_kv, g, D]
            else if (groups > 1)
            {
                k = k.repeat_interleave(groups, 1);
                v = v.repeat_interleave(groups, 1);
            }
            // Without a mask the kernel applies causality itself (and may use flash attention).
            var attended = nn.functional.scaled_dot_product_attention(q, k, v, mask, is_casual: mask is null);
            if (foldGroups) attended = attended.reshape(b, _c.NumHeads, l, _c.HeadDim);           // [B, H, L, D]
            return o_proj.forward(attended.transpose(1, 2).reshape(b, l, _c.NumHeads * _c.HeadDim));
        }
    }

    /// <summary>SwiGLU MLP: down(silu(gate(x)) · up(x)).</summary>
    public sealed class DecoderMlp : nn.Module<Tensor, Tensor>, ILinearSlots
    {
        static readonly string[] SlotNames = { "gate_proj", "up_proj", "down_proj" };

        /// <inheritdoc />
        public IReadOnlyList<string> LinearSlotNames => SlotNames;

        /// <inheritdoc />
        public nn.Module<Tensor, Tensor> GetSlot(string name) => name switch
        {
            "gate_proj" => gate_proj, "up_proj" => up_proj, "down_proj" => down_proj,
            _ => throw Slots.Unknown(name, SlotNames),
        };

        /// <inheritdoc />
        public void SetSlot(string name, nn.Module<Tensor, Tensor> module) => Slots.Replace(this, name, module, name switch
        {
            "gate_proj" => m => gate_proj = m, "up_proj" => m => up_proj = m, "down_proj" => m => down_proj = m,
            _ => throw Slots.Unknown(name, SlotNames),
        });

        internal nn.Module<Tensor, Tensor> gate_proj, up_proj, down_proj;

        /// <summary>Creates the projections for <paramref name="c"/>.</summary>
        internal DecoderMlp(DecoderConfig c, ParameterInit p) : base(nameof(DecoderMlp))
        {
            gate_proj = p.Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias);
            up_proj = p.Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias);
            down_proj = p.Linear(c.IntermediateSize, c.HiddenSize, c.MlpBias);
            RegisterComponents();
        }

        /// <inheritdoc />
        public override Tensor forward(Tensor x) => down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x));
    }

    /// <summary>One pre-norm decoder layer.</summary>
    public sealed class DecoderLayer : nn.Module<Tensor, Tensor>
    {
        internal DecoderAttention self_attn;
        internal DecoderMlp mlp;
        internal RmsNorm input_layernorm, post_attention_layernorm;

        /// <summary>Creates the layer for <paramref name="c"/>.</summary>
        internal DecoderLayer(DecoderConfig c, ParameterInit p) : base(nameof(DecoderLayer))
        {
            self_attn = new DecoderAttention(c, p);
            mlp = new DecoderMlp(c, p);
            input_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, p.DType, p.Device);
            post_attention_layernorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, p.DType, p.Device);
            RegisterComponents();
        }

        /// <summary>Not used: see <see cref="Forward"/>.</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("DecoderLayer needs rotary embeddings and a mask: call Forward.");

        /// <summary>x + attn(norm(x)), then + mlp(norm(·)); a null mask means plain causal attention.</summary>
        public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, RotaryEmbedding rope, KeyValueCache? cache = null, int layerIndex = 0)
        {
            // Intermediates (norm temporaries, q/k/v before the heads split, MLP products) die with this scope as they
            // would in Python; autograd holds its own references to what backward needs.
            using var scope = NewDisposeScope();
            var h = x + self_attn.Forward(input_layernorm.forward(x), cos, sin, mask, rope, cache, layerIndex);
            return (h + mlp.forward(post_attention_layernorm.forward(h))).MoveToOuterDisposeScope();
        }
    }

    /// <summary>The "model." part of a causal LM: embeddings, layers, final norm.</summary>
    public sealed class DecoderBackbone : nn.Module<Tensor, Tensor>
    {
        internal Embedding embed_tokens;
        internal ModuleList<DecoderLayer> layers;
        internal RmsNorm norm;

        /// <summary>Creates the backbone for <paramref name="c"/>.</summary>
        internal DecoderBackbone(DecoderConfig c, ParameterInit p) : base(nameof(DecoderBackbone))
        {
            embed_tokens = p.Embedding(c.VocabSize, c.HiddenSize);
            layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, c.NumLayers).Select(_ => new DecoderLayer(c, p)).ToArray());
            norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, p.DType, p.Device);
            RegisterComponents();
        }

        /// <summary>Not used: see <see cref="DecoderForCausalLM.Forward"/>.</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("Call DecoderForCausalLM.Forward.");
    }

    /// <summary>Outputs of one forward pass.</summary>
    public sealed record DecoderOutput(Tensor Logits, IReadOnlyList<Tensor> HiddenStates);

    /// <summary>
    /// A Llama-family causal LM (Llama, Mistral, Qwen2, Qwen3) with transformers' module names
    /// (model.layers.N.self_attn.q_proj, …, lm_head), so checkpoint keys and adapter targets line up.
    /// </summary>
    public sealed class DecoderForCausalLM : nn.Module<Tensor, Tensor>, ILinearSlots, ITransformerNetwork
    {
        internal DecoderBackbone model;
        internal nn.Module<Tensor, Tensor> lm_head;
        internal nn.Module<Tensor, Tensor>? score;

        /// <inheritdoc />
        public IReadOnlyList<string> LinearSlotNames => score is null ? new[] { "lm_head" } : new[] { "lm_head", "score" };

        /// <inheritdoc />
        public nn.Module<Tensor, Tensor> GetSlot(string name) => name switch
        {
            "lm_head" => lm_head,
            "score" when score is not null => score,
            _ => throw Slots.Unknown(name, LinearSlotNames),
        };

        /// <inheritdoc />
        public void SetSlot(string name, nn.Module<Tensor, Tensor> module) => Slots.Replace(this, name, module, name switch
        {
            "lm_head" => m => lm_head = m,
            "score" when score is not null => m => score = m,
            _ => throw Slots.Unknown(name, LinearSlotNames),
        });

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

        /// <summary>The configuration the model was built from.</summary>
        public DecoderConfig Config { get; }

        /// <summary>
        /// Creates a randomly initialised model for <paramref name="config"/>, its parameters created directly in
        /// <paramref name="dtype"/> on <paramref name="device"/> (so loading never holds a float32 copy of a bf16 model).
        /// </summary>
        public DecoderForCausalLM(DecoderConfig config, ScalarType? dtype = null, Device? device = null)
            : this(config, new ParameterInit(dtype, device, Random: true)) { }

        /// <summary>A model whose parameters are uninitialised memory, for a loader to fill (random initialisation is most of a load's time).</summary>
        internal static DecoderForCausalLM Uninitialized(DecoderConfig config, ScalarType dtype, Device device) =>
            new(config, new ParameterInit(dtype, device, Random: false));

        DecoderForCausalLM(DecoderConfig config, ParameterInit p) : base(nameof(DecoderForCausalLM))
        {
            Config = config;
            var device = p.Device;
            model = new DecoderBackbone(config, p);
            var head = p.Linear(config.HiddenSize, config.VocabSize, bias: false);
            if (config.TieWordEmbeddings) head.weight = model.embed_tokens.weight!;
            lm_head = head;
            _rope = new RotaryEmbedding(config, device);
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
            return new DecoderOutput(lm_head.forward(h), states);
        }

        /// <summary>
        /// Whether attention needs the explicit additive mask. Padding, packed segments and a cache (keys before the
        /// queries) make it more than plain causal attention; without them SDPA applies causality itself (is_causal, no
        /// mask), as transformers does, which lets libtorch pick its fused kernels and builds no [B, 1, L, T] tensor.
        /// </summary>
        internal bool NeedsExplicitMask(Tensor? attentionMask, Tensor? segmentIds, KeyValueCache? cache) =>
            cache is not null || segmentIds is not null || (attentionMask is not null && !attentionMask.all().item<bool>());

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
            positionIds ??= arange(past, total, device: device).unsqueeze(0).expand(b, l);
            var (cos, sin) = _rope.Compute(positionIds, dtype);

            // Additive mask [B, 1, L, T]: query i (absolute position past + i) sees keys 0..past + i, minus padding.
            // The most negative finite value (not -inf) keeps fully masked rows (left padding) finite, as
            // transformers' eager attention does. Plain causal attention needs none (see NeedsExplicitMask).
            Tensor? mask = null;
            if (NeedsExplicitMask(attentionMask, segmentIds, cache))
            {
                var allowed = (arange(total, device: device).unsqueeze(0) <= arange(past, total, device: device).unsqueeze(1)).unsqueeze(0).unsqueeze(0);
                if (attentionMask is not null) allowed = allowed.logical_and(attentionMask.to(ScalarType.Bool).view(b, 1, 1, total));
                if (segmentIds is not null)
                {
                    if (cache is not null || !segmentIds.shape.SequenceEqual(inputIds.shape))
                        throw new GraloraException("SegmentIdsShape", GraloraErrorKind.InvalidArgument,
                            $"segment ids must have the input's shape [{b}, {l}] and cannot be combined with a key/value cache.");
                    var same = segmentIds.unsqueeze(2).eq(segmentIds.unsqueeze(1)).logical_and(segmentIds.ne(0).unsqueeze(1));   // [B, L, L]
                    allowed = allowed.logical_and(same.unsqueeze(1));
                }
                double min = finfo(dtype).min;
                mask = where(allowed, zeros(1, dtype: dtype, device: device), full(1, min, dtype: dtype, device: device));
            }

            bool checkpoint = GradientCheckpointing && training && cache is null && is_grad_enabled();
            // Checkpointed layers only join the graph when their input requires grad (transformers' enable_input_require_grads).
            if (checkpoint && !h.requires_grad) h = h.detach().requires_grad_(true);
            var states = new List<Tensor>();
            int index = 0;
            foreach (var layer in model.layers)
            {
                if (hiddenStates) states.Add(h);
                h = checkpoint ? LayerCheckpoint.apply(layer, h, cos, sin, mask, _rope) : layer.Forward(h, cos, sin, mask, _rope, cache, index);
                index++;
            }
            cache?.Advance(l);
            h = model.norm.forward(h);
            if (hiddenStates) states.Add(h);
            return (h, states);
        }
    }
}

