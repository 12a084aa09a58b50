"""
Reference decoder forward, transcribed from Hugging Face transformers' eager modeling code (v4.5x line, checked
against the modeling files of llama, mistral, qwen2, qwen3, gemma2, gemma3 (text), phi3, masking_utils and
modeling_rope_utils). Plain PyTorch so it runs on Debian's torch 1.13 (recent transformers needs torch >= 2).
Scratch only: never part of the project.
"""
import copy, math
import torch
import torch.nn.functional as F

DEFAULTS = {
    "llama": dict(rope_theta=10000.0, rms_norm_eps=1e-6, attention_bias=False, mlp_bias=False, hidden_act="silu",
                  max_position_embeddings=2048, tie_word_embeddings=False),
    "mistral": dict(rope_theta=10000.0, rms_norm_eps=1e-6, hidden_act="silu", sliding_window=4096,
                    max_position_embeddings=4096 * 32, tie_word_embeddings=False),
    "qwen2": dict(rope_theta=10000.0, rms_norm_eps=1e-6, hidden_act="silu", use_sliding_window=False, sliding_window=4096,
                  max_window_layers=28, max_position_embeddings=32768, tie_word_embeddings=False),
    "qwen3": dict(rope_theta=10000.0, rms_norm_eps=1e-6, hidden_act="silu", use_sliding_window=False, sliding_window=4096,
                  max_window_layers=28, head_dim=128, attention_bias=False, max_position_embeddings=32768, tie_word_embeddings=False),
    "gemma2": dict(rope_theta=10000.0, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh", head_dim=256,
                   query_pre_attn_scalar=256, sliding_window=4096, final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                   attention_bias=False, max_position_embeddings=8192, tie_word_embeddings=True),
    "gemma3_text": dict(rope_theta=1_000_000.0, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh", head_dim=256,
                        query_pre_attn_scalar=256, sliding_window=4096, final_logit_softcapping=None, attn_logit_softcapping=None,
                        attention_bias=False, rope_local_base_freq=10000.0, sliding_window_pattern=6,
                        max_position_embeddings=131072, tie_word_embeddings=True),
    "phi3": dict(rope_theta=10000.0, rms_norm_eps=1e-5, hidden_act="silu", sliding_window=None, partial_rotary_factor=1.0,
                 original_max_position_embeddings=4096, max_position_embeddings=4096, tie_word_embeddings=False),
}


class Cfg:
    def __init__(self, d):
        t = d["model_type"]
        merged = dict(DEFAULTS[t]); merged.update({k: v for k, v in d.items()})
        self.__dict__.update(merged)
        self.num_key_value_heads = merged.get("num_key_value_heads") or merged["num_attention_heads"]
        if merged.get("head_dim") is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        rs = merged.get("rope_scaling")
        if rs is not None and "type" in rs and "rope_type" not in rs:
            rs = dict(rs); rs["rope_type"] = rs["type"]
        if t == "phi3" and rs is not None and rs.get("rope_type") in ("su", "yarn"):
            rs = dict(rs); rs["rope_type"] = "longrope"      # Phi3Config._rope_scaling_adjustment
        self.rope_scaling = rs
        # layer types (configuration_*.py)
        if t in ("qwen2", "qwen3"):
            self.sliding_window = merged["sliding_window"] if merged["use_sliding_window"] else None
            default_types = ["sliding_attention" if self.sliding_window is not None and i >= merged["max_window_layers"]
                             else "full_attention" for i in range(self.num_hidden_layers)]
        elif t == "gemma2":
            default_types = ["sliding_attention" if bool((i + 1) % 2) else "full_attention" for i in range(self.num_hidden_layers)]
        elif t == "gemma3_text":
            p = merged["sliding_window_pattern"]
            default_types = ["sliding_attention" if bool((i + 1) % p) else "full_attention" for i in range(self.num_hidden_layers)]
        else:   # mistral, phi3: every layer uses config.sliding_window when it is set; llama: none
            sw = merged.get("sliding_window") if t != "llama" else None
            self.sliding_window = sw
            default_types = ["sliding_attention" if sw is not None else "full_attention"] * self.num_hidden_layers
        self.layer_types = merged.get("layer_types") or default_types
        self.act = merged.get("hidden_activation") if t in ("gemma2", "gemma3_text") else merged["hidden_act"]
        if self.act is None:
            self.act = merged.get("hidden_act", "gelu_pytorch_tanh")


ACT = {"silu": F.silu, "swish": F.silu, "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"), "gelu": F.gelu}


# ---------------------------------------------------------------- RoPE (modeling_rope_utils)
def rope_params(cfg, rs, theta, seq_len=None):
    """(inv_freq, attention_factor) for rope_scaling dict rs (None = default)."""
    prf = getattr(cfg, "partial_rotary_factor", 1.0) or 1.0
    dim = int(cfg.head_dim * prf)
    typ = "default" if rs is None else rs.get("rope_type", "default")
    ar = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    if typ in ("default", "linear", "llama3"):
        inv = 1.0 / (theta ** ar)
        if typ == "linear":
            inv = inv / rs["factor"]
        if typ == "llama3":
            factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
            low_wl, high_wl = old / lo, old / hi
            wl = 2 * math.pi / inv
            inv_l = torch.where(wl > low_wl, inv / factor, inv)
            smooth = (old / wl - lo) / (hi - lo)
            smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
            med = ~(wl < high_wl) * ~(wl > low_wl)
            inv = torch.where(med, smoothed, inv_l)
        return inv, 1.0
    if typ == "dynamic":
        mpe = cfg.max_position_embeddings
        factor = rs["factor"]
        sl = mpe if seq_len is None else max(seq_len, mpe)
        base = theta * ((factor * sl / mpe) - (factor - 1)) ** (dim / (dim - 2))
        return 1.0 / (base ** ar), 1.0
    if typ == "yarn":
        factor = rs["factor"]
        att = rs.get("attention_factor")
        mscale, mscale_all = rs.get("mscale"), rs.get("mscale_all_dim")
        orig = rs.get("original_max_position_embeddings") or cfg.max_position_embeddings

        def get_mscale(scale, m=1):
            return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0
        if att is None:
            att = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all)) if (mscale and mscale_all) else get_mscale(factor)
        beta_fast = rs.get("beta_fast") or 32
        beta_slow = rs.get("beta_slow") or 1

        def corr_dim(rot):
            return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(theta))
        lo, hi = corr_dim(beta_fast), corr_dim(beta_slow)
        if rs.get("truncate", True):
            lo, hi = math.floor(lo), math.ceil(hi)
        lo, hi = max(lo, 0), min(hi, dim - 1)
        if lo == hi:
            hi += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - lo) / (hi - lo), 0, 1)
        pos_freqs = theta ** (torch.arange(0, dim, 2).float() / dim)
        extra, inter = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
        ef = 1 - ramp
        return inter * (1 - ef) + extra * ef, att
    if typ == "longrope":
        factor = rs.get("factor")
        att = rs.get("attention_factor")
        if hasattr(cfg, "original_max_position_embeddings") and cfg.original_max_position_embeddings is not None:
            orig = cfg.original_max_position_embeddings
            factor = cfg.max_position_embeddings / orig
        else:
            orig = cfg.max_position_embeddings
        if att is None:
            att = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
        ext = torch.tensor(rs["long_factor"] if (seq_len and seq_len > orig) else rs["short_factor"], dtype=torch.float32)
        return 1.0 / (ext * theta ** ar), att
    raise ValueError(typ)


class Rotary:
    """transformers' *RotaryEmbedding with the dynamic_rope_update decorator (stateful for dynamic/longrope)."""

    def __init__(self, cfg, rs, theta):
        self.cfg, self.rs, self.theta = cfg, rs, theta
        self.type = "default" if rs is None else rs.get("rope_type", "default")
        self.inv, self.att = rope_params(cfg, rs, theta)
        self.original_inv = self.inv
        self.max_seq_len_cached = self.original_max_seq_len = cfg.max_position_embeddings

    def __call__(self, position_ids, dtype):
        if self.type == "dynamic":
            seq_len = int(position_ids.max()) + 1
            if seq_len > self.max_seq_len_cached:
                self.inv, self.att = rope_params(self.cfg, self.rs, self.theta, seq_len=seq_len)
                self.max_seq_len_cached = seq_len
            if seq_len < self.original_max_seq_len and self.max_seq_len_cached > self.original_max_seq_len:
                self.inv = self.original_inv
                self.max_seq_len_cached = self.original_max_seq_len
        elif self.type == "longrope":
            seq_len = int(position_ids.max()) + 1
            orig = getattr(self.cfg, "original_max_position_embeddings", None) or self.cfg.max_position_embeddings
            if seq_len > orig:
                self.inv, _ = rope_params(self.cfg, self.rs, self.theta, seq_len=orig + 1)
            else:
                self.inv = self.original_inv
        freqs = (self.inv[None, :, None].float() @ position_ids[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.att).to(dtype), (emb.sin() * self.att).to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope(x, cos, sin):   # phi3's partial-rotary form (= llama's when rotary_dim == head_dim)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    rd = cos.shape[-1]
    xr, xp = x[..., :rd], x[..., rd:]
    return torch.cat([(xr * cos) + (rotate_half(xr) * sin), xp], dim=-1)


# ---------------------------------------------------------------- masks (masking_utils)
def make_mask(batch, cache_position, kv_len, attention_mask, sliding_window, segment_ids, dtype):
    """Additive [B, 1, q, kv]: causal (kv <= q), sliding overlay (kv > q - window), padding, packed sequences."""
    q = cache_position[:, None]
    kv = torch.arange(kv_len)[None, :]
    allowed = kv <= q
    if sliding_window is not None:
        allowed = allowed & (kv > q - sliding_window)
    allowed = allowed[None, None].expand(batch, 1, -1, -1)
    if attention_mask is not None:
        allowed = allowed & attention_mask[:, None, None, :].bool()
    if segment_ids is not None:
        allowed = allowed & (segment_ids[:, None, :, None] == segment_ids[:, None, None, :])
    return torch.where(allowed, torch.tensor(0.0, dtype=dtype), torch.tensor(torch.finfo(dtype).min, dtype=dtype))


def rms(x, w, eps, gemma):
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    if gemma:
        return (h * (1.0 + w.float())).type_as(x)
    return w * h.to(x.dtype)


def lin(sd, name, x):
    y = x @ sd[name + ".weight"].t()
    b = sd.get(name + ".bias")
    return y + b if b is not None else y


class Model:
    def __init__(self, config_dict, sd):
        self.c = c = Cfg(config_dict)
        self.sd = sd
        self.t = c.model_type
        self.gemma = self.t in ("gemma2", "gemma3_text")
        if self.t == "gemma3_text":
            self.rope_global = Rotary(c, c.rope_scaling, c.rope_theta)
            self.rope_local = Rotary(c, None, c.rope_local_base_freq)
        else:
            self.rope_global = self.rope_local = Rotary(c, c.rope_scaling, c.rope_theta)

    def attention(self, i, x, cos, sin, mask, cache):
        c, sd, p = self.c, self.sd, f"model.layers.{i}.self_attn."
        b, l, _ = x.shape
        H, KV, D = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        if self.t == "phi3":
            qkv = lin(sd, p + "qkv_proj", x)
            q, k, v = qkv[..., :H * D], qkv[..., H * D:H * D + KV * D], qkv[..., H * D + KV * D:]
        else:
            q, k, v = lin(sd, p + "q_proj", x), lin(sd, p + "k_proj", x), lin(sd, p + "v_proj", x)
        q = q.view(b, l, H, D).transpose(1, 2)
        k = k.view(b, l, KV, D).transpose(1, 2)
        v = v.view(b, l, KV, D).transpose(1, 2)
        if self.t in ("qwen3", "gemma3_text"):
            q = rms(q, sd[p + "q_norm.weight"], c.rms_norm_eps, self.gemma)
            k = rms(k, sd[p + "k_norm.weight"], c.rms_norm_eps, self.gemma)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            if i in cache:
                k = torch.cat([cache[i][0], k], 2); v = torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
        rep = H // KV
        k = k[:, :, None].expand(b, KV, rep, k.shape[2], D).reshape(b, H, k.shape[2], D)
        v = v[:, :, None].expand(b, KV, rep, v.shape[2], D).reshape(b, H, v.shape[2], D)
        scaling = c.query_pre_attn_scalar ** -0.5 if self.gemma else D ** -0.5
        w = torch.matmul(q, k.transpose(2, 3)) * scaling
        softcap = getattr(c, "attn_logit_softcapping", None) if self.gemma else None
        if softcap is not None:
            w = torch.tanh(w / softcap) * softcap
        w = w + mask[:, :, :, :k.shape[-2]]
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(w, v).transpose(1, 2).reshape(b, l, H * D)
        return lin(sd, p + "o_proj", o)

    def mlp(self, i, x):
        c, sd, p = self.c, self.sd, f"model.layers.{i}.mlp."
        act = ACT[c.act]
        if self.t == "phi3":
            gate, up = lin(sd, p + "gate_up_proj", x).chunk(2, dim=-1)
            return lin(sd, p + "down_proj", up * act(gate))
        return lin(sd, p + "down_proj", act(lin(sd, p + "gate_proj", x)) * lin(sd, p + "up_proj", x))

    def forward(self, input_ids, attention_mask=None, position_ids=None, segment_ids=None, cache=None, past=0):
        c, sd = self.c, self.sd
        b, l = input_ids.shape
        h = F.embedding(input_ids, sd["model.embed_tokens.weight"])
        if self.gemma:
            h = h * torch.tensor(c.hidden_size ** 0.5, dtype=h.dtype)
        cache_position = torch.arange(past, past + l)
        if position_ids is None:
            position_ids = cache_position.unsqueeze(0).expand(b, l)
        kv_len = past + l
        masks = {"full_attention": make_mask(b, cache_position, kv_len, attention_mask, None, segment_ids, h.dtype),
                 "sliding_attention": make_mask(b, cache_position, kv_len, attention_mask, c.sliding_window, segment_ids, h.dtype)}
        pe = {"full_attention": self.rope_global(position_ids, h.dtype), "sliding_attention": self.rope_local(position_ids, h.dtype)}
        states = []
        for i in range(c.num_hidden_layers):
            states.append(h)
            lt = c.layer_types[i]
            cos, sin = pe[lt]
            p = f"model.layers.{i}."
            eps = c.rms_norm_eps
            if self.gemma:
                a = self.attention(i, rms(h, sd[p + "input_layernorm.weight"], eps, True), cos, sin, masks[lt], cache)
                h = h + rms(a, sd[p + "post_attention_layernorm.weight"], eps, True)
                m = self.mlp(i, rms(h, sd[p + "pre_feedforward_layernorm.weight"], eps, True))
                h = h + rms(m, sd[p + "post_feedforward_layernorm.weight"], eps, True)
            else:
                h = h + self.attention(i, rms(h, sd[p + "input_layernorm.weight"], eps, False), cos, sin, masks[lt], cache)
                h = h + self.mlp(i, rms(h, sd[p + "post_attention_layernorm.weight"], eps, False))
        h = rms(h, sd["model.norm.weight"], c.rms_norm_eps, self.gemma)
        states.append(h)
        head = sd.get("lm_head.weight", sd["model.embed_tokens.weight"]) if c.tie_word_embeddings else sd["lm_head.weight"]
        logits = h @ head.t()
        fsc = getattr(c, "final_logit_softcapping", None) if self.gemma else None
        if fsc is not None:
            logits = torch.tanh(logits / fsc) * fsc
        return logits, states
