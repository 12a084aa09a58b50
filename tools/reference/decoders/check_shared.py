"""Checks hfref against the shared fixtures that real transformers 4.47.1 produced."""
import json, sys, os
import torch
import st, hfref
root = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/fixtures/models"
worst = 0
for name in ["llama", "mistral", "qwen2"]:
    d = os.path.join(root, name)
    cfg = json.load(open(os.path.join(d, "config.json")))
    sd = st.read(os.path.join(d, "model.safetensors"))
    ref = st.read(os.path.join(d, "reference.safetensors"))
    for case in ["plain", "padded", "padded_posids"]:
        m = hfref.Model(cfg, sd)
        am = ref.get(case + ".attention_mask"); pos = ref.get(case + ".position_ids")
        logits, _ = m.forward(ref[case + ".input_ids"], am, pos)
        valid = am.bool() if am is not None else torch.ones(logits.shape[:2], dtype=torch.bool)
        r = ref[case + ".logits"][valid]
        err = ((logits[valid] - r).abs().max() / r.abs().max()).item()
        worst = max(worst, err)
        print(f"{name}/{case}: max rel err {err:.2e}")
print("worst", worst)
