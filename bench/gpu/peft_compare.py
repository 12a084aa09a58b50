"""PEFT's LoRA / GraLoRA on the same Llama shape as the kit's runner (bench/gpu/run-gpu.sh, docs/gpu.md).

Same loop as `GraLoRA.GpuKit train`: random Llama-architecture model in the given dtype, adapters on all linear layers
(PEFT keeps them in float32: autocast_adapter_dtype), AdamW lr 1e-4, next-token cross-entropy on random ids; step 0
warms up. Prints its steps, then one line "RESULT <json>". Exit 3 when torch/transformers/peft (or PEFT's GraLoRA) is
missing, with the reason.
"""
import argparse
import json
import resource
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--method", default="gralora", choices=["lora", "gralora", "dora"])
    for name, default in [("rank", 32), ("k", 2), ("hidden", 2048), ("layers", 16), ("heads", 16), ("kv-heads", 4),
                          ("intermediate", 5632), ("vocab", 32000), ("seq", 1024), ("batch", 4), ("steps", 5)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bf16")
    a = p.parse_args()
    try:
        import torch
        import transformers
        import peft
    except ImportError as e:
        print(f"SKIP: {e}")
        return 3
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[a.dtype]
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    if a.method == "gralora" and not hasattr(peft, "GraloraConfig"):
        print(f"SKIP: peft {peft.__version__} has no GraloraConfig")
        return 3

    t0 = time.perf_counter()
    torch.manual_seed(1)
    config = transformers.LlamaConfig(
        vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.intermediate, num_hidden_layers=a.layers,
        num_attention_heads=a.heads, num_key_value_heads=a.kv_heads, max_position_embeddings=max(2048, a.seq),
        rope_theta=500000.0, tie_word_embeddings=False, rms_norm_eps=1e-6)
    with device:   # initialise on the device: a CPU init of ~1B parameters costs more than the timed steps
        model = transformers.LlamaForCausalLM(config).to(dtype)
    base_params = sum(t.numel() for t in model.parameters())
    if a.method in ("lora", "dora"):
        pc = peft.LoraConfig(r=a.rank, lora_alpha=2 * a.rank, target_modules="all-linear", init_lora_weights=False, use_dora=a.method == "dora")
    else:
        fields = peft.GraloraConfig.__dataclass_fields__
        alpha = {"alpha": 2 * a.rank} if "alpha" in fields else {"gralora_alpha": 2 * a.rank}
        pc = peft.GraloraConfig(r=a.rank, gralora_k=a.k, target_modules="all-linear", init_weights=False, **alpha)
    model = peft.get_peft_model(model, pc)
    trainable = [t for t in model.parameters() if t.requires_grad]
    adapter_params = sum(t.numel() for t in trainable)
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    torch.manual_seed(2)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq), device=device)
    model.train()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_alloc = torch.cuda.memory_allocated() if cuda else 0
    print(f"peft {peft.__version__} {a.method} r={a.rank}{'' if a.method != 'gralora' else f' k={a.k}'}: {base_params / 1e6:.0f}M base parameters in {dtype} "
          f"on {device}, {adapter_params / 1e6:.2f}M adapter parameters in {trainable[0].dtype}, built in {time.perf_counter() - t0:.1f} s")
    times, loss_value = [], float("nan")
    for s in range(a.steps + 1):
        t = time.perf_counter()
        logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, a.vocab).float(), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_value = loss.item()
        if cuda:
            torch.cuda.synchronize()
        if s > 0:
            times.append(time.perf_counter() - t)
        print(f"  step {s}: {time.perf_counter() - t:.3f} s, loss {loss_value:.4f}")
    median = sorted(times)[len(times) // 2]
    result = {
        "Implementation": f"PEFT {peft.__version__}", "Method": a.method, "Rank": a.rank, "K": a.k if a.method == "gralora" else 0,
        "Device": str(device), "DType": str(dtype), "AdapterDType": str(trainable[0].dtype), "BaseParameters": base_params,
        "AdapterParameters": adapter_params, "Hidden": a.hidden, "Layers": a.layers, "Seq": a.seq, "Batch": a.batch, "Steps": a.steps,
        "StepSeconds": times, "MedianStepSeconds": median, "TokensPerSecond": a.batch * a.seq / median, "LastLoss": loss_value,
        "TorchPeakAllocatedBytes": torch.cuda.max_memory_allocated() - base_alloc if cuda else None,
        "TorchPeakReservedBytes": torch.cuda.max_memory_reserved() if cuda else None,
        "PeakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(f"median step {median:.3f} s = {a.batch * a.seq / median:.0f} tokens/s")
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
