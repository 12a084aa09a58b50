using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using GraLoRA.Adapters;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>
    /// How a decoder's parameters start: randomly initialised, or uninitialised memory that a loader fills. With
    /// <paramref name="QuantizedCompute"/>, the decoder layers' projections are quantised layers computing in that dtype,
    /// with no weight yet (the loader quantises or reads one tensor at a time, so no full-precision copy is ever allocated).
    /// </summary>
    internal readonly record struct ParameterInit(ScalarType? DType, Device? Device, bool Random, ScalarType? QuantizedCompute = null)
    {
        public Linear Linear(long inFeatures, long outFeatures, bool bias) => Random
            ? nn.Linear(inFeatures, outFeatures, hasBias: bias, device: Device, dtype: DType)
            : nn.Linear(new Parameter(empty(outFeatures, inFeatures, dtype: DType, device: Device)),
                        bias ? new Parameter(empty(outFeatures, dtype: DType, device: Device)) : null);

        /// <summary>A decoder layer's projection: a Linear, or an empty quantised layer when the model loads quantised.</summary>
        public nn.Module<Tensor, Tensor> Projection(long inFeatures, long outFeatures, bool bias) => QuantizedCompute is { } compute
            ? new Quantization.QuantizedLinear(inFeatures, outFeatures, bias ? new Parameter(empty(outFeatures, dtype: DType, device: Device)) : null, compute)
            : Linear(inFeatures, outFeatures, bias);

        // Always initialised: an Embedding built from a given tensor did not use the memory a loader later filled.
        public Embedding Embedding(long count, long width) => nn.Embedding(count, width, device: Device, dtype: DType);

        public RmsNorm Norm(long size, DecoderConfig c) => new(size, c.RmsNormEps, DType, Device, c.IsGemma);
    }

    /// <summary>
    /// RMSNorm as transformers computes it: normalise in float32; Llama-style scales by the weight in the input dtype,
    /// Gemma-style by (1 + weight) in float32 before casting back.
    /// </summary>
    public sealed class RmsNorm : nn.Module<Tensor, Tensor>
    {
        readonly Parameter weight;
        readonly double _eps;
        readonly bool _plusOne;

        /// <summary>Creates the norm over the last dimension of size <paramref name="size"/>; <paramref name="plusOne"/>: Gemma's (1 + weight).</summary>
        public RmsNorm(long size, double eps, ScalarType? dtype = null, Device? device = null, bool plusOne = false) : base(nameof(RmsNorm))
        {
            weight = new Parameter(plusOne ? zeros(size, dtype: dtype, device: device) : ones(size, dtype: dtype, device: device));
            _eps = eps;
            _plusOne = plusOne;
            RegisterComponents();
        }

        /// <inheritdoc />
        public override Tensor forward(Tensor x)
        {
            var dtype = x.dtype;
            var h = x.to(ScalarType.Float32);
            h = h * rsqrt(h.square().mean(new long[] { -1 }, keepdim: true) + _eps);
            return _plusOne ? (h * (1.0 + weight.to(ScalarType.Float32))).to(dtype) : weight * h.to(dtype);
        }
    }

    /// <summary>
    /// Self-attention with grouped-query heads; projections (q/k/v/o, or Phi-3's fused qkv_proj and o_proj) are
    /// replaceable by adapters.
    /// </summary>
    public sealed class DecoderAttention : LinearSlotModule
    {
        // Slots are the projections the config builds (the others stay null): q/k/v/o, or qkv_proj and o_proj.
        [LinearSlot] internal nn.Module<Tensor, Tensor>? q_proj, k_proj, v_proj, qkv_proj, o_proj;
        internal RmsNorm? q_norm, k_norm;
        readonly DecoderConfig _c;

        /// <summary>Creates the projections for <paramref name="c"/>.</summary>
        internal DecoderAttention(DecoderConfig c, ParameterInit p) : base(nameof(DecoderAttention))
        {
            _c = c;
            long q = c.NumHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim;
            if (c.FusedProjections) qkv_proj = p.Projection(c.HiddenSize, q + 2 * kv, c.QkvBias);
            else
            {
                q_proj = p.Projection(c.HiddenSize, q, c.QkvBias);
                k_proj = p.Projection(c.HiddenSize, kv, c.QkvBias);
                v_proj = p.Projection(c.HiddenSize, kv, c.QkvBias);
            }
            o_proj = p.Projection(q, c.HiddenSize, c.OutputBias);
            if (c.QkNorm)
            {
                q_norm = p.Norm(c.HeadDim, c);
                k_norm = p.Norm(c.HeadDim, c);
            }
            RegisterComponents();
        }

        /// <summary>Not used: attention needs positions and a mask (see <see cref="Forward"/>).</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("DecoderAttention needs rotary embeddings and a mask: call Forward.");

        /// <summary>
        /// Attention over x [B, L, hidden] with an additive mask [B, 1, L, T] where T = cached + L keys, or, without a
        /// mask (see <see cref="AttentionMask.NeedsExplicitMask"/>), plain causal attention over T = L keys. With a
        /// cache, this layer's new keys and values are written into it and attention reads all T of them.
        /// </summary>
        public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, RotaryEmbedding rope, KeyValueCache? cache = null, int layerIndex = 0)
        {
            long b = x.shape[0], l = x.shape[1], qWidth = _c.NumHeads * _c.HeadDim, kvWidth = _c.NumKeyValueHeads * _c.HeadDim;
            Tensor Heads(Tensor t, long n, RmsNorm? norm)
            {
                var h = t.view(b, l, n, _c.HeadDim);
                if (norm != null) h = norm.forward(h);
                return h.transpose(1, 2);                                             // [B, n, L, D]
            }
            Tensor queries, keys, values;
            if (qkv_proj is not null)
            {
                var qkv = qkv_proj.forward(x);                                        // [B, L, (H + 2·KV)·D], q then k then v
                (queries, keys, values) = (qkv.narrow(-1, 0, qWidth), qkv.narrow(-1, qWidth, kvWidth), qkv.narrow(-1, qWidth + kvWidth, kvWidth));
            }
            else (queries, keys, values) = (q_proj!.forward(x), k_proj!.forward(x), v_proj!.forward(x));
            var q = rope.Apply(Heads(queries, _c.NumHeads, q_norm), cos, sin);
            var k = rope.Apply(Heads(keys, _c.NumKeyValueHeads, k_norm), cos, sin);
            var v = Heads(values, _c.NumKeyValueHeads, null);
            if (cache is not null) (k, v) = cache.Append(layerIndex, k, v);            // [B, n_kv, T, D]
            long groups = _c.NumHeads / _c.NumKeyValueHeads;
            // TorchSharp 0.107's SDPA has no enable_gqa. With one query position (a cached decoding step) the mask has one
            // row, the same for every head, so a group's g query heads can stand as g query rows against their shared
            // key/value head: no copy of the cache. Otherwise each key/value head is repeated for its group.
            bool foldGroups = groups > 1 && l == 1 && mask is not null;
            if (foldGroups) q = q.reshape(b, _c.NumKeyValueHeads, groups, _c.HeadDim);        // [B, n_kv, g, D]
            else if (groups > 1)
            {
                k = k.repeat_interleave(groups, 1);
                v = v.repeat_interleave(groups, 1);
            }
            // Without a mask the kernel applies causality itself (and may pick flash attention).
            var attended = _c.EagerAttention
                ? EagerAttention(q, k, v, mask ?? throw new InvalidOperationException("Eager attention always takes an explicit mask (AttentionMask.NeedsExplicitMask)."))
                : nn.functional.scaled_dot_product_attention(q, k, v, mask, is_casual: mask is null);
            if (foldGroups) attended = attended.reshape(b, _c.NumHeads, l, _c.HeadDim);      // [B, H, L, D]
            return o_proj!.forward(attended.transpose(1, 2).reshape(b, l, qWidth));
        }

        /// <summary>
        /// transformers' eager attention, for Gemma's query_pre_attn_scalar scale and attention soft-capping (which
        /// fused attention kernels cannot apply): cap·tanh(scores/cap) before the mask, softmax in float32.
        /// </summary>
        Tensor EagerAttention(Tensor q, Tensor k, Tensor v, Tensor mask)
        {
            var scores = matmul(q, k.transpose(2, 3)) * _c.AttentionScale;              // [B, H, L, T]
            if (_c.AttnLogitSoftcapping is { } cap) scores = (scores / cap).tanh() * cap;
            var weights = nn.functional.softmax(scores + mask, -1, ScalarType.Float32).to(q.dtype);
            return matmul(weights, v);                                                  // [B, H, L, D]
        }
    }

    /// <summary>Gated MLP: down(act(gate(x)) · up(x)), with gate and up fused in Phi-3's gate_up_proj.</summary>
    public sealed class DecoderMlp : LinearSlotModule
    {
        // Slots are the projections the config builds (the others stay null): gate/up/down, or gate_up_proj and down_proj.
        [LinearSlot] internal nn.Module<Tensor, Tensor>? gate_proj, up_proj, gate_up_proj, down_proj;
        readonly DecoderConfig _c;

        /// <summary>Creates the projections for <paramref name="c"/>.</summary>
        internal DecoderMlp(DecoderConfig c, ParameterInit p) : base(nameof(DecoderMlp))
        {
            _c = c;
            if (c.FusedProjections) gate_up_proj = p.Projection(c.HiddenSize, 2 * c.IntermediateSize, c.MlpBias);
            else
            {
                gate_proj = p.Projection(c.HiddenSize, c.IntermediateSize, c.MlpBias);
                up_proj = p.Projection(c.HiddenSize, c.IntermediateSize, c.MlpBias);
            }
            down_proj = p.Projection(c.IntermediateSize, c.HiddenSize, c.MlpBias);
            RegisterComponents();
        }

        Tensor Activation(Tensor x) => Activations.Apply(_c.HiddenAct, x);

        /// <inheritdoc />
        public override Tensor forward(Tensor x)
        {
            if (gate_up_proj is null) return down_proj!.forward(Activation(gate_proj!.forward(x)) * up_proj!.forward(x));
            var gateUp = gate_up_proj.forward(x);                                       // [B, L, 2·intermediate]: gate, then up
            long n = _c.IntermediateSize;
            return down_proj!.forward(gateUp.narrow(-1, n, n) * Activation(gateUp.narrow(-1, 0, n)));
        }
    }

    /// <summary>One decoder layer: pre-norm (Llama family), or Gemma's norms before and after each sublayer.</summary>
    public sealed class DecoderLayer : nn.Module<Tensor, Tensor>
    {
        internal DecoderAttention self_attn;
        internal DecoderMlp mlp;
        internal RmsNorm input_layernorm, post_attention_layernorm;
        internal RmsNorm? pre_feedforward_layernorm, post_feedforward_layernorm;

        /// <summary>Creates the layer for <paramref name="c"/>.</summary>
        internal DecoderLayer(DecoderConfig c, ParameterInit p) : base(nameof(DecoderLayer))
        {
            self_attn = new DecoderAttention(c, p);
            mlp = new DecoderMlp(c, p);
            input_layernorm = p.Norm(c.HiddenSize, c);
            post_attention_layernorm = p.Norm(c.HiddenSize, c);
            if (c.IsGemma)
            {
                pre_feedforward_layernorm = p.Norm(c.HiddenSize, c);
                post_feedforward_layernorm = p.Norm(c.HiddenSize, c);
            }
            RegisterComponents();
        }

        /// <summary>Not used: see <see cref="Forward"/>.</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("DecoderLayer needs rotary embeddings and a mask: call Forward.");

        /// <summary>x + attn(norm(x)), then + mlp(norm(·)); Gemma also normalises each sublayer's output. A null mask means plain causal attention.</summary>
        public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, RotaryEmbedding rope, KeyValueCache? cache = null, int layerIndex = 0)
        {
            // Intermediates (norm temporaries, q/k/v before the heads split, MLP products) die with this scope as they
            // would in Python; autograd holds its own references to what backward needs.
            using var scope = NewDisposeScope();
            var attended = self_attn.Forward(input_layernorm.forward(x), cos, sin, mask, rope, cache, layerIndex);
            if (pre_feedforward_layernorm is null)
            {
                var h = x + attended;
                return (h + mlp.forward(post_attention_layernorm.forward(h))).MoveToOuterDisposeScope();
            }
            var g = x + post_attention_layernorm.forward(attended);
            return (g + post_feedforward_layernorm!.forward(mlp.forward(pre_feedforward_layernorm.forward(g)))).MoveToOuterDisposeScope();
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
            norm = p.Norm(c.HiddenSize, c);
            RegisterComponents();
        }

        /// <summary>Not used: see <see cref="DecoderForCausalLM.Forward"/>.</summary>
        public override Tensor forward(Tensor x) => throw new NotSupportedException("Call DecoderForCausalLM.Forward.");
    }
}
