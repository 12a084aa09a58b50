using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Adapters;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>Word, position and token-type embeddings, summed, layer-normed and dropped out (BertEmbeddings / RobertaEmbeddings).</summary>
    public sealed class EncoderEmbeddings : nn.Module<Tensor, Tensor>
    {
        internal Embedding word_embeddings, position_embeddings, token_type_embeddings;
        internal LayerNorm LayerNorm;
        readonly EncoderConfig _c;

        internal EncoderEmbeddings(EncoderConfig c, ParameterInit p) : base(nameof(EncoderEmbeddings))
        {
            _c = c;
            word_embeddings = p.Embedding(c.VocabSize, c.HiddenSize);
            position_embeddings = p.Embedding(c.MaxPositionEmbeddings, c.HiddenSize);
            token_type_embeddings = p.Embedding(c.TypeVocabSize, c.HiddenSize);
            LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps, device: p.Device, dtype: p.DType);
            RegisterComponents();
        }

        /// <summary>Not used: see <see cref="Forward"/>.</summary>
        public override Tensor forward(Tensor inputIds) => Forward(inputIds, null, null);

        /// <summary>
        /// Position ids default to 0..L-1 (BERT) or, for RoBERTa, padding_idx + 1 + the running count of non-pad tokens,
        /// with pad tokens at padding_idx (transformers' create_position_ids_from_input_ids).
        /// </summary>
        public Tensor Forward(Tensor inputIds, Tensor? tokenTypeIds, Tensor? positionIds)
        {
            long b = inputIds.shape[0], l = inputIds.shape[1];
            if (positionIds is null)
            {
                if (_c.ModelType == "roberta")
                {
                    var notPad = inputIds.ne(_c.PadTokenId).to(ScalarType.Int64);
                    positionIds = notPad.cumsum(1) * notPad + _c.PadTokenId;
                }
                else positionIds = arange(l, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0).expand(b, l);
            }
            tokenTypeIds ??= zeros(b, l, dtype: ScalarType.Int64, device: inputIds.device);
            long maxPosition = positionIds.max().item<long>();
            if (maxPosition >= _c.MaxPositionEmbeddings)
                throw new GraloraException("SequenceTooLong", GraloraErrorKind.InvalidArgument,
                    $"Position {maxPosition} is beyond the model's {_c.MaxPositionEmbeddings} position embeddings: truncate inputs to at most {(_c.ModelType == "roberta" ? _c.MaxPositionEmbeddings - _c.PadTokenId - 1 : _c.MaxPositionEmbeddings)} tokens.", maxPosition);
            var h = word_embeddings.forward(inputIds) + token_type_embeddings.forward(tokenTypeIds) + position_embeddings.forward(positionIds);
            return nn.functional.dropout(LayerNorm.forward(h), _c.HiddenDropout, training);
        }
    }

    /// <summary>BertSelfAttention: query, key, value.</summary>
    public sealed class EncoderSelfAttention : LinearSlotModule
    {
        [LinearSlot] internal nn.Module<Tensor, Tensor> query, key, value;
        readonly EncoderConfig _c;

        internal EncoderSelfAttention(EncoderConfig c, ParameterInit p) : base(nameof(EncoderSelfAttention))
        {
            _c = c;
            query = p.Linear(c.HiddenSize, c.HiddenSize, true);
            key = p.Linear(c.HiddenSize, c.HiddenSize, true);
            value = p.Linear(c.HiddenSize, c.HiddenSize, true);
            RegisterComponents();
        }

        /// <summary>Not used: attention needs a mask (see <see cref="Forward"/>).</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("Call Forward with a mask.");

        /// <summary>Bidirectional attention over x [B, L, hidden] with an additive key mask [B, 1, 1, L].</summary>
        public Tensor Forward(Tensor x, Tensor mask)
        {
            long b = x.shape[0], l = x.shape[1];
            Tensor Heads(Tensor t) => t.view(b, l, _c.NumHeads, _c.HeadDim).transpose(1, 2);     // [B, H, L, D]
            var attended = nn.functional.scaled_dot_product_attention(Heads(query.forward(x)), Heads(key.forward(x)), Heads(value.forward(x)), mask,
                training ? _c.AttentionDropout : 0.0);
            return attended.transpose(1, 2).reshape(b, l, _c.HiddenSize);
        }
    }

    /// <summary>A dense projection, dropout, residual and LayerNorm (BertSelfOutput, BertOutput).</summary>
    public sealed class EncoderResidualOutput : LinearSlotModule
    {
        [LinearSlot] internal nn.Module<Tensor, Tensor> dense;
        internal LayerNorm LayerNorm;
        readonly double _dropout;

        internal EncoderResidualOutput(EncoderConfig c, long inFeatures, ParameterInit p) : base(nameof(EncoderResidualOutput))
        {
            dense = p.Linear(inFeatures, c.HiddenSize, true);
            LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps, device: p.Device, dtype: p.DType);
            _dropout = c.HiddenDropout;
            RegisterComponents();
        }

        /// <summary>Not used: see <see cref="Forward"/>.</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("Call Forward with the residual.");

        /// <summary>LayerNorm(dropout(dense(x)) + residual): the post-LN step.</summary>
        public Tensor Forward(Tensor x, Tensor residual) => LayerNorm.forward(nn.functional.dropout(dense.forward(x), _dropout, training) + residual);
    }

    /// <summary>BertAttention: "self" and "output".</summary>
    public sealed class EncoderAttention : nn.Module<Tensor, Tensor>
    {
        // Registered as "self" (a C# keyword); held in an array so TorchSharp's field discovery does not register it twice.
        readonly EncoderSelfAttention[] _self;
        internal EncoderResidualOutput output;

        internal EncoderAttention(EncoderConfig c, ParameterInit p) : base(nameof(EncoderAttention))
        {
            _self = new[] { new EncoderSelfAttention(c, p) };
            output = new EncoderResidualOutput(c, c.HiddenSize, p);
            register_module("self", _self[0]);
            RegisterComponents();
        }

        /// <summary>Not used: see <see cref="Forward"/>.</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("Call Forward with a mask.");

        /// <summary>LayerNorm(x + attention(x)).</summary>
        public Tensor Forward(Tensor x, Tensor mask) => output.Forward(_self[0].Forward(x, mask), x);
    }

    /// <summary>BertIntermediate: dense then the activation.</summary>
    public sealed class EncoderIntermediate : LinearSlotModule
    {
        [LinearSlot] internal nn.Module<Tensor, Tensor> dense;
        readonly string _act;

        internal EncoderIntermediate(EncoderConfig c, ParameterInit p) : base(nameof(EncoderIntermediate))
        {
            dense = p.Linear(c.HiddenSize, c.IntermediateSize, true);
            _act = c.HiddenAct;
            RegisterComponents();
        }

        /// <inheritdoc />
        public override Tensor forward(Tensor x)
        {
            var h = dense.forward(x);
            return Activations.Apply(_act, h);
        }
    }

    /// <summary>One post-LN encoder layer (BertLayer).</summary>
    public sealed class EncoderLayer : nn.Module<Tensor, Tensor>
    {
        internal EncoderAttention attention;
        internal EncoderIntermediate intermediate;
        internal EncoderResidualOutput output;

        internal EncoderLayer(EncoderConfig c, ParameterInit p) : base(nameof(EncoderLayer))
        {
            attention = new EncoderAttention(c, p);
            intermediate = new EncoderIntermediate(c, p);
            output = new EncoderResidualOutput(c, c.IntermediateSize, p);
            RegisterComponents();
        }

        /// <summary>Not used: see <see cref="Forward"/>.</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("Call Forward with a mask.");

        /// <summary>h = LN(x + attn(x)); LN(h + ffn(h)).</summary>
        public Tensor Forward(Tensor x, Tensor mask)
        {
            var h = attention.Forward(x, mask);
            return output.Forward(intermediate.forward(h), h);
        }
    }

    /// <summary>BertEncoder: the layer list.</summary>
    public sealed class EncoderStack : nn.Module<Tensor, Tensor>
    {
        internal ModuleList<EncoderLayer> layer;

        internal EncoderStack(EncoderConfig c, ParameterInit p) : base(nameof(EncoderStack))
        {
            layer = new ModuleList<EncoderLayer>(Enumerable.Range(0, c.NumLayers).Select(_ => new EncoderLayer(c, p)).ToArray());
            RegisterComponents();
        }

        /// <summary>Not used.</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("Call EncoderModel.Forward.");
    }

    /// <summary>BertPooler: tanh(dense(first token)).</summary>
    public sealed class EncoderPooler : LinearSlotModule
    {
        [LinearSlot] internal nn.Module<Tensor, Tensor> dense;

        internal EncoderPooler(EncoderConfig c, ParameterInit p) : base(nameof(EncoderPooler))
        {
            dense = p.Linear(c.HiddenSize, c.HiddenSize, true);
            RegisterComponents();
        }

        /// <summary>Pooled output [B, hidden] from hidden states [B, L, hidden].</summary>
        public override Tensor forward(Tensor hidden) => tanh(dense.forward(hidden.select(1, 0)));
    }

    /// <summary>RobertaClassificationHead: dropout, dense, tanh, dropout, out_proj on the &lt;s&gt; token.</summary>
    public sealed class RobertaClassificationHead : LinearSlotModule
    {
        [LinearSlot] internal nn.Module<Tensor, Tensor> dense, out_proj;
        readonly double _dropout;

        internal RobertaClassificationHead(EncoderConfig c, int labels, ParameterInit p) : base(nameof(RobertaClassificationHead))
        {
            dense = p.Linear(c.HiddenSize, c.HiddenSize, true);
            out_proj = p.Linear(c.HiddenSize, labels, true);
            _dropout = c.HeadDropout;
            RegisterComponents();
        }

        /// <summary>Logits [B, labels] from hidden states [B, L, hidden].</summary>
        public override Tensor forward(Tensor hidden)
        {
            var x = nn.functional.dropout(hidden.select(1, 0), _dropout, training);
            x = nn.functional.dropout(tanh(dense.forward(x)), _dropout, training);
            return out_proj.forward(x);
        }
    }

    /// <summary>Outputs of one encoder pass: last_hidden_state [B, L, H], pooler_output [B, H] (when the model has a pooler), logits [B, labels] (classification models), hidden states (embeddings + each layer).</summary>
    public sealed record EncoderOutput(Tensor LastHiddenState, Tensor? PoolerOutput, Tensor? Logits, IReadOnlyList<Tensor> HiddenStates);

    /// <summary>
    /// A BERT or RoBERTa encoder with transformers' module names: the bare model (BertModel/RobertaModel:
    /// embeddings.*, encoder.layer.N.attention.self.query, …, pooler.dense) or the sequence classifier
    /// (BertForSequenceClassification: bert.* + classifier on the pooled output; RobertaForSequenceClassification:
    /// roberta.* without pooler + classifier.dense/classifier.out_proj on the &lt;s&gt; token), so checkpoint keys and
    /// PEFT adapter keys line up.
    /// </summary>
    public sealed class EncoderModel : LinearSlotModule, ITransformerNetwork
    {
        readonly EncoderEmbeddings _embeddings;
        readonly EncoderStack _encoder;
        readonly EncoderPooler? _pooler;
        [LinearSlot(ClassificationHeadName)]
        nn.Module<Tensor, Tensor>? _classifier;      // BERT: a Linear slot "classifier"; RoBERTa: a RobertaClassificationHead (slots of its own)
        readonly ParameterInit _init;

        /// <summary>The classification head's module name.</summary>
        public const string ClassificationHeadName = "classifier";

        /// <summary>The configuration the model was built from.</summary>
        public EncoderConfig Config { get; }

        /// <summary>Whether this is the …ForSequenceClassification model (keys under bert./roberta.).</summary>
        public bool IsSequenceClassification { get; }

        /// <summary>The key prefix of the backbone: "" for the bare model, "bert." or "roberta." for the classifier.</summary>
        public string BackbonePrefix => IsSequenceClassification ? Config.ModelType + "." : "";

        /// <summary>Creates a randomly initialised encoder (transformers' initialisation is not reproduced; use a loader for real weights).</summary>
        public EncoderModel(EncoderConfig config, bool sequenceClassification, ScalarType? dtype = null, Device? device = null)
            : this(config, sequenceClassification, new ParameterInit(dtype, device, Random: true)) { }

        internal static EncoderModel Uninitialized(EncoderConfig config, bool sequenceClassification, ScalarType dtype, Device device) =>
            new(config, sequenceClassification, new ParameterInit(dtype, device, Random: false));

        EncoderModel(EncoderConfig config, bool sequenceClassification, ParameterInit p) : base(nameof(EncoderModel))
        {
            Config = config;
            IsSequenceClassification = sequenceClassification;
            _init = p;
            _embeddings = new EncoderEmbeddings(config, p);
            _encoder = new EncoderStack(config, p);
            // RobertaForSequenceClassification builds its backbone without the pooler; every other variant has one.
            bool pooler = !(sequenceClassification && config.ModelType == "roberta");
            _pooler = pooler ? new EncoderPooler(config, p) : null;
            nn.Module owner = this;
            if (sequenceClassification)
            {
                var backbone = new EncoderBackboneContainer();
                register_module(config.ModelType, backbone);
                owner = backbone;
            }
            owner.register_module("embeddings", _embeddings);
            owner.register_module("encoder", _encoder);
            if (_pooler is not null) owner.register_module("pooler", _pooler);
            if (sequenceClassification) AttachHead(config.Labels.Count, p);
        }

        /// <summary>An empty module that only names the backbone ("bert" / "roberta").</summary>
        sealed class EncoderBackboneContainer : nn.Module<Tensor, Tensor>
        {
            public EncoderBackboneContainer() : base("EncoderBackbone") { }
            public override Tensor forward(Tensor x) => throw new NotSupportedException("Call EncoderModel.Forward.");
        }

        void AttachHead(int labels, ParameterInit p)
        {
            _classifier = Config.ModelType == "roberta"
                ? new RobertaClassificationHead(Config, labels, p)
                : p.Linear(Config.HiddenSize, labels, true);
            register_module(ClassificationHeadName, _classifier);
        }

        /// <summary>
        /// Initialises the classification head as transformers does for a fresh one (weights normal(0, 0.02) from <paramref name="seed"/>, biases 0). Only for a model loaded as the sequence
        /// classifier whose checkpoint had no head.
        /// </summary>
        internal void InitializeHead(long seed = 0)
        {
            var generator = new Generator((ulong)seed);
            using var _ = no_grad();
            foreach (var (name, param) in _classifier!.named_parameters())
            {
                if (name.EndsWith("bias", StringComparison.Ordinal)) param.zero_();
                else param.copy_(normal(0, 0.02, param.shape, generator: generator).to(param.dtype, param.device));
            }
        }

        /// <inheritdoc />
        public string ModelType => Config.ModelType;
        /// <inheritdoc />
        public int VocabSize => Config.VocabSize;
        /// <inheritdoc />
        public Device Device => _embeddings.word_embeddings.weight!.device;
        /// <inheritdoc />
        public ScalarType DType => _embeddings.word_embeddings.weight!.dtype;
        /// <inheritdoc />
        public string ClassificationHead => ClassificationHeadName;
        /// <inheritdoc />
        public bool UsesTokenTypes => Config.TypeVocabSize > 1;
        /// <summary>Whether the model has a pooler (every variant but RobertaForSequenceClassification).</summary>
        public bool HasPooler => _pooler is not null;

        /// <inheritdoc />
        public bool GradientCheckpointing
        {
            get => false;
            set
            {
                if (value)
                    throw new GraloraException("GradientCheckpointingUnsupported", GraloraErrorKind.InvalidArgument,
                        $"Gradient checkpointing is implemented for decoders only; {Config.ModelType} encoders train without it: turn it off.");
            }
        }

        /// <inheritdoc />
        public int ClassificationLabels => _classifier switch
        {
            null => 0,
            RobertaClassificationHead r => (int)Slots.BaseWeight(r.out_proj).shape[0],
            var linear => (int)Slots.BaseWeight(linear).shape[0],
        };

        /// <summary>Final hidden states [B, L, H] for token ids [B, L].</summary>
        public override Tensor forward(Tensor inputIds) => Forward(inputIds).LastHiddenState;

        /// <inheritdoc />
        public Tensor ClassificationLogits(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
        {
            if (_classifier is null)
                throw new GraloraException("NoClassificationHead", GraloraErrorKind.InvalidOperation,
                    $"The {Config.ModelType} model was loaded without a classification head: load it with -Task SequenceClassification (BaseModelLoadOptions.Task).");
            return Forward(inputIds, attentionMask, tokenTypeIds).Logits!;
        }

        /// <summary>
        /// One pass. attention_mask [B, L] (1 = token, 0 = padding) masks keys; token_type_ids default to 0; position ids
        /// default as <see cref="EncoderEmbeddings.Forward"/> says. Hidden states follow transformers: the embeddings
        /// output, then each layer's output (the last equals last_hidden_state).
        /// </summary>
        public EncoderOutput Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null, bool hiddenStates = false)
        {
            long b = inputIds.shape[0], l = inputIds.shape[1];
            void CheckShape(Tensor? t, string what)
            {
                if (t is not null && !t.shape.SequenceEqual(inputIds.shape))
                    throw new GraloraException("InputShapeMismatch", GraloraErrorKind.InvalidArgument,
                        $"{what} has shape [{string.Join(", ", t.shape)}] but input_ids is [{b}, {l}].", what);
            }
            CheckShape(attentionMask, "attention_mask");
            CheckShape(tokenTypeIds, "token_type_ids");
            CheckShape(positionIds, "position_ids");
            if (tokenTypeIds is not null && tokenTypeIds.numel() > 0)
            {
                long maxType = tokenTypeIds.max().item<long>(), minType = tokenTypeIds.min().item<long>();
                if (minType < 0 || maxType >= Config.TypeVocabSize)
                    throw new GraloraException("TokenTypeOutOfRange", GraloraErrorKind.InvalidArgument,
                        $"token_type_ids holds {(minType < 0 ? minType : maxType)}, but this {Config.ModelType} model has {Config.TypeVocabSize} token type(s) (0{(Config.TypeVocabSize > 1 ? $"..{Config.TypeVocabSize - 1}" : "")}).", maxType);
            }
            var h = _embeddings.Forward(inputIds, tokenTypeIds, positionIds);
            var dtype = h.dtype;
            // Additive key mask [B, 1, 1, L] with the most negative finite value, as transformers' extended attention mask.
            var mask = attentionMask is null
                ? zeros(b, 1, 1, l, dtype: dtype, device: h.device)
                : (1.0 - attentionMask.to(dtype).view(b, 1, 1, l)) * finfo(dtype).min;
            var states = new List<Tensor>();
            if (hiddenStates) states.Add(h);
            foreach (var layer in _encoder.layer)
            {
                h = layer.Forward(h, mask);
                if (hiddenStates) states.Add(h);
            }
            var pooled = _pooler?.forward(h);
            Tensor? logits = _classifier switch
            {
                null => null,
                RobertaClassificationHead head => head.forward(h),
                var linear => linear.forward(nn.functional.dropout(pooled!, Config.HeadDropout, training)),
            };
            return new EncoderOutput(h, pooled, logits, states);
        }
    }
}
