"""Writes bitsandbytes-format fixtures with bnbref (bitsandbytes' reference kernels on torch 1.13).
Usage: /usr/bin/python3 gen_fixtures.py SHARED_FIXTURES OUT_DIR
- <OUT>/llama_nf4, llama_nf4_dq, llama_int8: the shared tiny Llama with every decoder-layer linear quantised as
  transformers + bitsandbytes save it (config.json with quantization_config, model.safetensors with the packed weights
  and quant-state keys), and reference.safetensors: dequant.<key> (bitsandbytes' dequantisation) and <case>.logits of
  the model computed over those dequantised weights (hfref: transformers' eager Llama).
- <OUT>/layers.safetensors: single weights with their bitsandbytes state, source and dequantisation (odd sizes, a
  short last block, several nested blocks)."""
import json, os, sys
import numpy as np
import torch
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "decoders"))
import st, hfref, bnbref

for name, pair in {"U8": (torch.uint8, np.uint8), "I8": (torch.int8, np.int8)}.items():
    st._DT[name] = pair
    st._NAME[pair[0]] = name

SHARED, OUT = sys.argv[1], sys.argv[2]
src = os.path.join(SHARED, "models", "llama")
cfg = json.load(open(os.path.join(src, "config.json")))
sd = st.read(os.path.join(src, "model.safetensors"))
shared_ref = st.read(os.path.join(src, "reference.safetensors"))
linear = sorted(k for k in sd if ".layers." in k and k.endswith(".weight") and sd[k].dim() == 2)

for variant in ["llama_nf4", "llama_nf4_dq", "llama_int8"]:
    qsd, deq = dict(sd), {}
    for key in linear:
        prefix = key[: -len("weight")]
        del qsd[key]
        if variant == "llama_int8":
            CB, SCB = bnbref.int8_vectorwise_quant(sd[key])
            qsd.update(bnbref.state_dict_8bit(prefix, CB, SCB))
            deq[key] = bnbref.int8_vectorwise_dequant(CB, SCB)
        else:
            packed, state = bnbref.quantize_4bit(sd[key], 64, variant.endswith("_dq"))
            qsd.update(bnbref.state_dict_4bit(prefix, packed, state))
            deq[key] = bnbref.dequantize_4bit(packed, state)
    dsd = dict(sd); dsd.update(deq)
    ref = {"dequant." + k: v for k, v in deq.items()}
    for case in ["plain", "padded_posids"]:
        inputs = {k.split(".", 1)[1]: v for k, v in shared_ref.items() if k.startswith(case + ".") and k.split(".", 1)[1] in ("input_ids", "attention_mask", "position_ids")}
        logits, _ = hfref.Model(cfg, dsd).forward(inputs["input_ids"], inputs.get("attention_mask"), inputs.get("position_ids"))
        for k, v in inputs.items():
            ref[f"{case}.{k}"] = v
        ref[f"{case}.logits"] = logits
        full = shared_ref[case + ".logits"]
        valid = inputs["attention_mask"].bool() if "attention_mask" in inputs else torch.ones(full.shape[:2], dtype=torch.bool)
        print(f"{variant}/{case}: max |logits - fp32 logits| / max |fp32| = {((logits - full)[valid].abs().max() / full[valid].abs().max()).item():.4f}")
    config = dict(cfg)
    config["quantization_config"] = bnbref.quantization_config(variant != "llama_int8", variant.endswith("_dq"))
    d = os.path.join(OUT, variant)
    os.makedirs(d, exist_ok=True)
    json.dump(config, open(os.path.join(d, "config.json"), "w"), indent=2, sort_keys=True)
    st.write(os.path.join(d, "model.safetensors"), qsd, {"format": "pt"})
    st.write(os.path.join(d, "reference.safetensors"), ref)

g = torch.Generator().manual_seed(25)
layers = {}
for case, shape, blocksize, nested in [("nf4", (97, 201), 64, False), ("nf4_dq", (97, 201), 64, True), ("nf4_b128", (31, 45), 128, False)]:
    w = torch.randn(*shape, generator=g) * 0.02
    w[3, 5] = 0.5                                     # an outlier block
    packed, state = bnbref.quantize_4bit(w, blocksize, nested)
    layers.update({case + "." + k: v for k, v in bnbref.state_dict_4bit("", packed, state).items()})
    layers[case + ".source"] = w
    layers[case + ".dequant"] = bnbref.dequantize_4bit(packed, state)
w = torch.randn(33, 70, generator=g) * 0.05
CB, SCB = bnbref.int8_vectorwise_quant(w)
layers.update({"int8." + k: v for k, v in bnbref.state_dict_8bit("", CB, SCB).items()})
layers["int8.source"] = w
layers["int8.dequant"] = bnbref.int8_vectorwise_dequant(CB, SCB)
st.write(os.path.join(OUT, "layers.safetensors"), layers)
print("layers:", sorted(layers))
