"""
bitsandbytes' quantisation as its pure-PyTorch reference backend computes it (bitsandbytes/backends/default/ops.py,
functional.py: get_4bit_type, create_dynamic_map, quantize_blockwise, quantize_4bit with compress_statistics,
QuantState.as_dict(packed=True), int8_vectorwise_quant / _dequant; nn/modules.py: Linear4bit and Linear8bitLt
state-dict keys; utils.py: pack_dict_to_tensor). Transcribed so it runs on Debian's torch 1.13 without the
bitsandbytes package (not on this machine's registries). Scratch only: never part of the project.
"""
import json
import torch

NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
       0.7229568362236023, 1.0]


def nf4_code():
    data = torch.tensor(NF4)
    return data / data.abs().max()


def dynamic_map(max_exponent_bits=7, total_bits=8):
    data = []
    non_sign = total_bits - 1
    for i in range(max_exponent_bits):
        items = int(2 ** (i + non_sign - max_exponent_bits) + 1)
        b = torch.linspace(0.1, 1, items, dtype=torch.float32)
        means = (b[:-1] + b[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


def _scale_blocks(A, blocksize):
    flat = A.reshape(-1).float()
    n = flat.numel()
    rem = n % blocksize
    full = n - rem
    com = flat[:full].reshape(full // blocksize, blocksize)
    absmax = com.abs().max(dim=-1)[0]
    scaled = torch.clamp(com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(flat[full:] / am, -1, 1)])
    return scaled, absmax


def quantize_blockwise(A, code, blocksize):
    scaled, absmax = _scale_blocks(A, blocksize)
    bounds = (code[:-1] + code[1:]) / 2
    return torch.bucketize(scaled, bounds, out_int32=True).to(torch.uint8), absmax


def dequantize_blockwise(q, absmax, code, blocksize):
    out = code[q.reshape(-1).long()]
    n = out.numel()
    rem = n % blocksize
    full = n - rem
    head = (out[:full].reshape(-1, blocksize) * absmax[:full // blocksize].view(-1, 1)).reshape(full)
    if rem:
        return torch.cat([head, out[full:] * absmax[full // blocksize]])
    return head


def quantize_4bit(A, blocksize=64, compress_statistics=False):
    """Returns (packed [(n+1)//2, 1] uint8, quant-state dict as QuantState.as_dict())."""
    scaled, absmax = _scale_blocks(A, blocksize)
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    code = nf4_code()
    q = torch.bucketize(scaled, (code[:-1] + code[1:]) / 2, out_int32=True).to(torch.uint8)
    packed = ((q[::2] << 4) | q[1::2]).unsqueeze(1)
    state = {"quant_type": "nf4", "absmax": absmax, "blocksize": blocksize, "quant_map": code,
             "dtype": str(A.dtype).strip("torch."), "shape": tuple(A.shape)}
    if compress_statistics:
        offset = absmax.mean()
        nested_code = dynamic_map()
        qabsmax, nested_absmax = quantize_blockwise(absmax - offset, nested_code, 256)
        state.update({"absmax": qabsmax, "nested_absmax": nested_absmax, "nested_blocksize": 256,
                      "nested_quant_map": nested_code.clone(), "nested_dtype": "float32", "nested_offset": offset.item()})
    return packed, state


def dequantize_4bit(packed, state):
    absmax = state["absmax"]
    if "nested_absmax" in state:
        absmax = dequantize_blockwise(absmax, state["nested_absmax"], state["nested_quant_map"], state["nested_blocksize"])
        absmax = absmax + state["nested_offset"]
    flat = packed.reshape(-1)
    q = torch.empty(flat.numel() * 2, dtype=torch.int64)
    q[1::2] = (flat & 0xF).long()
    q[::2] = (flat >> 4).long()
    n = 1
    for d in state["shape"]:
        n *= d
    values = nf4_code()[q][:n]
    return dequantize_blockwise_values(values, absmax.float(), state["blocksize"]).reshape(state["shape"])


def dequantize_blockwise_values(values, absmax, blocksize):
    n = values.numel()
    rem = n % blocksize
    full = n - rem
    head = (values[:full].view(-1, blocksize) * absmax[:full // blocksize].view(-1, 1)).reshape(full)
    return torch.cat([head, values[full:] * absmax[full // blocksize]]) if rem else head


def state_dict_4bit(prefix, packed, state):
    """The keys Linear4bit._save_to_state_dict writes for its weight: QuantState.as_dict(packed=True)."""
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    others = {k: v for k, v in state.items() if not isinstance(v, torch.Tensor)}
    out = {prefix + "weight": packed}
    for k, v in tensors.items():
        out[prefix + "weight." + k] = v
    out[prefix + "weight.quant_state.bitsandbytes__nf4"] = torch.tensor(list(json.dumps(others).encode("utf-8")), dtype=torch.uint8)
    return out


def int8_vectorwise_quant(A):
    """Int8Params._quantize: the weight in float16, row absmax, round(A·127/absmax)."""
    A = A.contiguous().to(torch.float16)
    row_stats = torch.max(A.abs(), dim=1).values.float()
    return torch.round(A * (127.0 / row_stats.unsqueeze(-1))).to(torch.int8), row_stats


def int8_vectorwise_dequant(CB, SCB):
    return CB * SCB.view(-1, 1) * 7.874015718698502e-3


def state_dict_8bit(prefix, CB, SCB):
    """Linear8bitLt._save_to_state_dict: weight (int8), SCB, weight_format (0 = row)."""
    return {prefix + "weight": CB, prefix + "SCB": SCB, prefix + "weight_format": torch.tensor(0, dtype=torch.uint8)}


def quantization_config(load_in_4bit, double_quant=False, compute="float32"):
    """BitsAndBytesConfig(...).to_dict() as transformers writes it into config.json."""
    return {"_load_in_4bit": load_in_4bit, "_load_in_8bit": not load_in_4bit, "bnb_4bit_compute_dtype": compute,
            "bnb_4bit_quant_storage": "uint8", "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": double_quant,
            "llm_int8_enable_fp32_cpu_offload": False, "llm_int8_has_fp16_weight": False, "llm_int8_skip_modules": None,
            "llm_int8_threshold": 6.0, "load_in_4bit": load_in_4bit, "load_in_8bit": not load_in_4bit,
            "quant_method": "bitsandbytes"}
