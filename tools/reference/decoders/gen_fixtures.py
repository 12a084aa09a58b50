"""Generates tiny decoder fixtures with hfref (transformers' eager math on torch 1.13): config.json,
model.safetensors, reference.safetensors. Usage: python3 gen_fixtures.py OUT_DIR"""
import json, os, sys, math
import torch
import st, hfref

OUT = sys.argv[1]
L = 12
BASE = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2,
            head_dim=16, rms_norm_eps=1e-6, torch_dtype="float32", bos_token_id=1, eos_token_id=2, use_cache=True,
            attention_dropout=0.0, initializer_range=0.02)
ARCH = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
        "gemma2": "Gemma2ForCausalLM", "gemma3_text": "Gemma3ForCausalLM", "phi3": "Phi3ForCausalLM"}

SPECS = {
    "mistral_sw3": dict(model_type="mistral", num_hidden_layers=2, sliding_window=3, rope_theta=10000.0, max_position_embeddings=128,
                        tie_word_embeddings=False, hidden_act="silu"),
    "qwen2_swa": dict(model_type="qwen2", num_hidden_layers=3, use_sliding_window=True, sliding_window=2, max_window_layers=1,
                      rope_theta=10000.0, max_position_embeddings=128, tie_word_embeddings=True, hidden_act="silu"),
    "qwen3_layer_types": dict(model_type="qwen3", num_hidden_layers=3, use_sliding_window=True, sliding_window=4, max_window_layers=28,
                              layer_types=["sliding_attention", "full_attention", "sliding_attention"], attention_bias=False,
                              rope_theta=10000.0, max_position_embeddings=128, tie_word_embeddings=False, hidden_act="silu"),
    "llama_rope_linear": dict(model_type="llama", num_hidden_layers=2, rope_theta=10000.0, max_position_embeddings=64,
                              rope_scaling={"rope_type": "linear", "factor": 2.5}, attention_bias=False, mlp_bias=False,
                              tie_word_embeddings=False, hidden_act="silu"),
    "llama_rope_dynamic": dict(model_type="llama", num_hidden_layers=2, rope_theta=10000.0, max_position_embeddings=8,
                               rope_scaling={"type": "dynamic", "factor": 3.0}, attention_bias=False, mlp_bias=False,
                               tie_word_embeddings=False, hidden_act="silu"),
    "qwen2_rope_yarn": dict(model_type="qwen2", num_hidden_layers=2, rope_theta=10000.0, max_position_embeddings=64,
                            use_sliding_window=False, sliding_window=None, max_window_layers=2,
                            rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
                            tie_word_embeddings=False, hidden_act="silu"),
    "phi3_longrope": dict(model_type="phi3", num_hidden_layers=2, rope_theta=10000.0, max_position_embeddings=32,
                          original_max_position_embeddings=8, partial_rotary_factor=0.75, sliding_window=5,
                          rope_scaling={"type": "longrope", "short_factor": [1.0, 1.1, 1.3, 1.7, 2.2, 3.0],
                                        "long_factor": [1.2, 1.9, 3.1, 5.2, 8.4, 13.0]},
                          resid_pdrop=0.0, embd_pdrop=0.0, tie_word_embeddings=False, hidden_act="silu", pad_token_id=0,
                          rms_norm_eps=1e-5),
    "gemma2": dict(model_type="gemma2", num_hidden_layers=4, rope_theta=10000.0, max_position_embeddings=128, sliding_window=3,
                   query_pre_attn_scalar=24, attn_logit_softcapping=5.0, final_logit_softcapping=3.0, attention_bias=False,
                   hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, pad_token_id=0),
    "gemma3_text": dict(model_type="gemma3_text", num_hidden_layers=4, rope_theta=1000000.0, rope_local_base_freq=10000.0,
                        rope_scaling={"rope_type": "linear", "factor": 2.0}, max_position_embeddings=128, sliding_window=3,
                        sliding_window_pattern=3, query_pre_attn_scalar=24, attn_logit_softcapping=None, final_logit_softcapping=None,
                        attention_bias=False, hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True, pad_token_id=0),
}


def weights(cfg, g):
    c = hfref.Cfg(cfg)
    H, KV, D, hid, inter = c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.hidden_size, c.intermediate_size
    gemma = c.model_type in ("gemma2", "gemma3_text")
    sd = {}

    def lin(name, i, o, bias=False):
        sd[name + ".weight"] = torch.randn(o, i, generator=g) / math.sqrt(i)
        if bias:
            sd[name + ".bias"] = torch.randn(o, generator=g) * 0.1

    def norm(name, n):
        sd[name + ".weight"] = torch.randn(n, generator=g) * 0.1 + (0.0 if gemma else 1.0)
    sd["model.embed_tokens.weight"] = torch.randn(c.vocab_size, hid, generator=g) * 0.5
    qkv_bias = c.model_type == "qwen2" or bool(getattr(c, "attention_bias", False))
    o_bias = c.model_type != "qwen2" and bool(getattr(c, "attention_bias", False))
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        if c.model_type == "phi3":
            lin(p + "self_attn.qkv_proj", hid, (H + 2 * KV) * D)
            lin(p + "mlp.gate_up_proj", hid, 2 * inter)
        else:
            lin(p + "self_attn.q_proj", hid, H * D, qkv_bias)
            lin(p + "self_attn.k_proj", hid, KV * D, qkv_bias)
            lin(p + "self_attn.v_proj", hid, KV * D, qkv_bias)
            lin(p + "mlp.gate_proj", hid, inter)
            lin(p + "mlp.up_proj", hid, inter)
        lin(p + "self_attn.o_proj", H * D, hid, o_bias)
        lin(p + "mlp.down_proj", inter, hid)
        norm(p + "input_layernorm", hid)
        norm(p + "post_attention_layernorm", hid)
        if gemma:
            norm(p + "pre_feedforward_layernorm", hid)
            norm(p + "post_feedforward_layernorm", hid)
        if c.model_type in ("qwen3", "gemma3_text"):
            norm(p + "self_attn.q_norm", D)
            norm(p + "self_attn.k_norm", D)
    norm("model.norm", hid)
    if not c.tie_word_embeddings:
        lin("lm_head", hid, c.vocab_size)
    return sd


def cases(g, vocab):
    ids = torch.randint(3, vocab, (2, L), generator=g)
    out = {"plain": dict(input_ids=ids)}
    mask = torch.ones(2, L, dtype=torch.int64)
    mask[0, :2] = 0
    mask[1, L - 3:] = 0
    padded = ids.clone(); padded[mask == 0] = 0
    out["padded"] = dict(input_ids=padded, attention_mask=mask)
    pos = mask.cumsum(-1) - 1
    pos = pos.masked_fill(mask == 0, 1)
    out["padded_posids"] = dict(input_ids=padded, attention_mask=mask, position_ids=pos)
    # packed: row 0 = samples of 5 and 7 tokens; row 1 = 4 + 6 tokens and 2 padding
    seg = torch.tensor([[1] * 5 + [2] * 7, [1] * 4 + [2] * 6 + [0] * 2])
    ppos = torch.tensor([list(range(5)) + list(range(7)), list(range(4)) + list(range(6)) + [0, 0]])
    pmask = (seg != 0).long()
    pids = ids.clone(); pids[pmask == 0] = 0
    out["packed"] = dict(input_ids=pids, attention_mask=pmask, position_ids=ppos, segment_ids=seg)
    # short: fewer tokens than max_position_embeddings of the rope fixtures (dynamic: no scaling; longrope: short factors)
    out["short"] = dict(input_ids=ids[:, :6].clone())
    return out


def run(name, spec):
    cfg = dict(BASE); cfg.update(spec); cfg["architectures"] = [ARCH[spec["model_type"]]]
    if "rms_norm_eps" in spec:
        cfg["rms_norm_eps"] = spec["rms_norm_eps"]
    g = torch.Generator().manual_seed(abs(hash(name)) % (2 ** 31) if False else sum(map(ord, name)))
    sd = weights(cfg, g)
    ref = {}
    for case, inp in cases(g, cfg["vocab_size"]).items():
        m = hfref.Model(cfg, sd)
        logits, states = m.forward(inp["input_ids"], inp.get("attention_mask"), inp.get("position_ids"), inp.get("segment_ids"))
        for k, v in inp.items():
            ref[f"{case}.{k}"] = v
        ref[f"{case}.logits"] = logits
        if case == "plain":
            for i, s in enumerate(states):
                ref[f"{case}.hidden_states.{i}"] = s
            # the fixture must exercise the window: without it the logits differ
            if any(t == "sliding_attention" for t in m.c.layer_types):
                m3 = hfref.Model(cfg, sd); m3.c.sliding_window = None
                diff = ((m3.forward(inp["input_ids"])[0] - logits).abs().max() / logits.abs().max()).item()
                print(f"  {name}: relative change without the window {diff:.3f}")
        if case in ("plain", "padded_posids"):
            # sanity: transformers-style cached decoding (prefill 5, then one token a step) gives the same logits
            m2 = hfref.Model(cfg, sd); cache = {}
            am, pos = inp.get("attention_mask"), inp.get("position_ids")
            steps = [m2.forward(inp["input_ids"][:, :5], None if am is None else am[:, :5], None if pos is None else pos[:, :5], cache=cache, past=0)[0]]
            for t in range(5, L):
                steps.append(m2.forward(inp["input_ids"][:, t:t + 1], None if am is None else am[:, :t + 1],
                                        None if pos is None else pos[:, t:t + 1], cache=cache, past=t)[0])
            cached = torch.cat(steps, 1)
            valid = am.bool() if am is not None else torch.ones(2, L, dtype=torch.bool)
            err = (cached[valid] - logits[valid]).abs().max().item()
            assert err < 1e-4 or spec.get("rope_scaling", {}).get("type") in ("dynamic", "longrope"), (name, case, err)
    c = hfref.Cfg(cfg)
    m = hfref.Model(cfg, sd)
    ref["rope.inv_freq"] = m.rope_global.original_inv
    ref["rope.attention_factor"] = torch.tensor([m.rope_global.att], dtype=torch.float32)
    if c.model_type == "gemma3_text":
        ref["rope_local.inv_freq"] = m.rope_local.original_inv
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2, sort_keys=True)
    st.write(os.path.join(d, "model.safetensors"), sd, {"format": "pt"})
    st.write(os.path.join(d, "reference.safetensors"), ref)
    print(name, "ok", sorted({k.split(".")[0] for k in ref}))


for name in (sys.argv[2:] or SPECS):
    run(name, SPECS[name])
