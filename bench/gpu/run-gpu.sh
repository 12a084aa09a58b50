#!/usr/bin/env bash
# The GPU kit's driver (docs/gpu.md). On the GPU machine, from the repository root, with the kit carried:
#   artifacts/gpukit/run-gpu.sh
# Settings (environment): KIT_DEVICE=cuda|cpu (default cuda), KIT_SIZE=full|small (small: a tiny model, for the CPU
# check in CI; fp32 unless KIT_DTYPE=bf16), OUT (results folder, default ./gpukit-results), GRALORA_LIBTORCH (default: python3's torch/lib),
# PYTHON (default python3). Prints a short table last; under $OUT: run.log (all output), results.jsonl (one JSON
# object per stage), details.txt (each command's own output).
set -uo pipefail
kit=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$PWD/gpukit-results}
mkdir -p "$out"
exec > >(tee "$out/run.log") 2>&1
py=${PYTHON:-python3}
runner="$kit/runner/GraLoRA.GpuKit"
device=${KIT_DEVICE:-cuda}
size=${KIT_SIZE:-full}
results="$out/results.jsonl"
: > "$results"
# Each command's own output goes to a scratch folder, gathered into $out/details.txt at the end: the device machine
# returns at most 8 files from $OUT.
work=$(mktemp -d "${TMPDIR:-/tmp}/gpukit.XXXXXX")
gather() { for f in "$work"/*.txt; do [[ -e $f ]] && { echo "===== $(basename "$f" .txt)"; cat "$f"; }; done > "$out/details.txt"; }
trap gather EXIT
if [[ $size == small ]]; then
  dtype=${KIT_DTYPE:-fp32}     # CPU bfloat16 kernels are slow; KIT_DTYPE=bf16 runs the GPU's path here too
  shape=(--hidden 128 --layers 2 --heads 2 --kv-heads 1 --intermediate 256 --vocab 512 --seq 32 --batch 2 --steps 1)
  layer=(--features 128 --tokens 32)
  layerops=(--features 128 --tokens 64 --reps 3)
  quant=(--hidden 128 --layers 2 --vocab 512); quant_run=(32 8 2 1); loss_steps=4
else
  dtype=${KIT_DTYPE:-bf16}
  # ~0.86B parameters, Llama-shaped (TinyLlama-like widths, 16 layers), batch 4 × 1024 tokens.
  shape=(--hidden 2048 --layers 16 --heads 16 --kv-heads 4 --intermediate 5632 --vocab 32000 --seq 1024 --batch 4 --steps 5)
  layer=(--features 2048 --tokens 2048)
  layerops=(--features 2048 --tokens 4096 --reps 20)    # the training run's token count per step
  # The same 0.86B shape for the quantised base (vocab 32000), batch 1 × 1024 tokens, GraLoRA r 32 k 2, 5 timed steps.
  quant=(--hidden 2048 --layers 16 --vocab 32000); quant_run=(1024 32 2 5); loss_steps=200
fi

echo "== GraLoRA GPU kit: device $device, size $size, $(date -u +%FT%TZ)"
source "$kit/kit-env.sh"

echo "== 1. CUDA visible"
if [[ $device == cuda ]]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi failed"
fi
"$py" -c 'import torch; print("python torch", torch.__version__, "| CUDA", torch.version.cuda, "| available", torch.cuda.is_available())' 2>&1 || echo "python torch not importable"

# Runs one command; appends its RESULT line (plus the peak GPU memory nvidia-smi saw, for CUDA) to results.jsonl.
run() {
  local name=$1; shift
  local sampler="" peakfile="$work/peak-$name"
  local base=0
  if [[ $device == cuda ]] && command -v nvidia-smi >/dev/null; then
    base=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 > "$peakfile" 2>/dev/null &
    sampler=$!
  fi
  "$@" > "$work/$name.txt" 2>&1
  local rc=$?
  [[ -n $sampler ]] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null
  grep -v '^RESULT ' "$work/$name.txt" | sed 's/^/  /'
  local line
  line=$(grep '^RESULT ' "$work/$name.txt" | tail -1 | sed 's/^RESULT //')
  if [[ $rc -ne 0 || -z $line ]]; then
    echo "  FAILED ($name, exit $rc)"
    printf '{"Name":"%s","Failed":true,"Exit":%d}\n' "$name" "$rc" >> "$results"
    return 1
  fi
  local peak=-1
  if [[ -s $peakfile ]]; then peak=$(sort -n "$peakfile" | tail -1); peak=$(( (peak - base) * 1048576 )); fi
  rm -f "$peakfile"
  "$py" -c 'import json,sys; d=json.loads(sys.argv[1]); d["Name"]=sys.argv[2]; d["GpuPeakBytes"]=int(sys.argv[3]); print(json.dumps(d))' "$line" "$name" "$peak" >> "$results" 2>/dev/null ||
    echo "$line" >> "$results"
}

echo "== 2. probe (which libtorch the runner loaded)"
# Every function the glue imports that this libtorch does not export (a newer PyTorch may have dropped or changed a few):
# the whole list at once, so one GPU run tells what a fix needs.
if command -v nm >/dev/null; then
  for f in libc10.so libtorch_cpu.so libtorch.so libc10_cuda.so libtorch_cuda.so; do
    [[ -e $GRALORA_LIBTORCH/$f ]] && nm -D --defined-only "$GRALORA_LIBTORCH/$f" 2>/dev/null
  done | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | sort -u > "$work/defined.sym"
  nm -D --undefined-only "$kit/runner/libLibTorchSharp.so" | awk '$1 == "U" && $2 !~ /@/ { print $2 }' | sort -u > "$work/needed.sym"
  comm -23 "$work/needed.sym" "$work/defined.sym" > "$work/missing-symbols.txt"
  echo "  glue imports $(wc -l < "$work/needed.sym") libtorch symbols; $(wc -l < "$work/missing-symbols.txt") not exported here$( [[ -s $work/missing-symbols.txt ]] && echo ":")"
  head -40 "$work/missing-symbols.txt" | sed 's/^/    /'
  rm -f "$work/defined.sym" "$work/needed.sym"
else
  echo "  (nm not found: symbol check skipped)"
fi
net_ok=1
if ! run probe "$runner" probe; then
  # A PyTorch newer than TorchSharp's libtorch may lack a few functions the glue could call: try binding them lazily.
  if grep -q LibTorchIncompatible "$work/probe.txt" && [[ -z ${GRALORA_LIBTORCH_BIND:-} ]]; then
    echo "  retrying with GRALORA_LIBTORCH_BIND=lazy (missing functions abort only if called)"
    export GRALORA_LIBTORCH_BIND=lazy
    run probe-lazy "$runner" probe || net_ok=0
  else
    net_ok=0
  fi
fi
# Without a working runner the PEFT side still runs, so a GPU call is never wasted; the summary then fails.
[[ $net_ok == 1 ]] || echo "FAIL: the runner could not load libtorch from $GRALORA_LIBTORCH; running the PEFT side only"

# libtorch's own allocator statistics (torch.cuda.max_memory_allocated's numbers), read through its C++ allocator
# object (CudaMemoryStats.cs); the train runs report them only when this check passed. Not a failure when unreadable;
# without CUDA it checks the reader's layout and type checks on the CPU allocator.
if [[ $net_ok == 1 ]]; then
  run cudamem "$runner" cudamem
  grep -q 'statistics: readable' "$work/cudamem.txt" && export KIT_TORCH_STATS=1
fi

echo "== 3. layers on $device vs CPU (relative errors)"
[[ $net_ok == 1 ]] && run compare "$runner" compare --device "$device" "${layer[@]}"

echo "== 3b. where a layer's time goes: GraLoRA and LoRA ops on $device ($dtype base, fp32 adapters)"
[[ $net_ok == 1 ]] && run layerops "$runner" layerops --device "$device" --dtype "$dtype" "${layerops[@]}"

echo "== 4. training steps, $dtype base, fp32 adapters"
has_peft=0
if "$py" -c 'import peft, transformers' 2>/dev/null; then has_peft=1; else echo "  PEFT comparison skipped: python 'peft'/'transformers' not importable with $py"; fi
printf '{"Name":"peft","Available":%s}\n' "$([[ $has_peft == 1 ]] && echo true || echo false)" >> "$results"
for rk in "32 2" "128 4"; do
  set -- $rk
  for method in lora gralora; do
    [[ $net_ok == 1 ]] && run "net-$method-r$1" "$runner" train --method "$method" --rank "$1" --k "$2" --device "$device" --dtype "$dtype" "${shape[@]}"
    if [[ $has_peft == 1 ]]; then
      run "peft-$method-r$1" "$py" "$kit/peft_compare.py" --method "$method" --rank "$1" --k "$2" --device "$device" --dtype "$dtype" "${shape[@]}"
    fi
  done
done
# The same r=32 runs with attention through the explicit mask and the loss on a float32 copy of the logits (the code
# before issue 21): what those two changes bring, measured in this run.
for method in lora gralora; do
  [[ $net_ok == 1 ]] && run "net-$method-r32-baseline" "$runner" train --method "$method" --rank 32 --k 2 --device "$device" --dtype "$dtype" "${shape[@]}" --baseline
done

echo "== 5. baselines at r 32 (the paper's time table): DoRA, MoRA, RaSA, Full vs LoRA, same shape and dtype"
for method in dora mora rasa full; do
  [[ $net_ok == 1 ]] && run "net-$method-r32" "$runner" train --method "$method" --rank 32 --k 2 --device "$device" --dtype "$dtype" "${shape[@]}"
done
if [[ $has_peft == 1 ]]; then run "peft-dora-r32" "$py" "$kit/peft_compare.py" --method dora --rank 32 --k 2 --device "$device" --dtype "$dtype" "${shape[@]}"; fi
echo "== 6. NCCL: a one-rank communicator on the device (data-parallel training's GPU path)"
# On the CPU this only checks that libnccl loads or says why not, and reports the stage skipped.
[[ $net_ok == 1 ]] && run nccl "$runner" nccl --device "$device" --elements "$([[ $size == small ]] && echo 1000000 || echo 25000000)"

echo "== 7. quantised base: bf16 vs NF4 vs int8 (peak memory, step time), and the quickstart loss curve over bf16 and NF4"
if [[ $net_ok == 1 ]]; then
  qfolder="$work/quant-model"
  "$runner" quant --prepare-only --folder "$qfolder" "${quant[@]}" > "$work/quant-prepare.txt" 2>&1 || echo "  FAILED (quant-prepare)"
  for b in bfloat16 nf4 int8; do run "quant-$b" "$runner" quant-child "$b" "$qfolder" "$device" "${quant_run[@]}"; done
  rm -rf "$qfolder"
  loss_dtype=$([[ $dtype == fp32 ]] && echo float32 || echo bfloat16)
  run quant-loss "$runner" quant-loss --steps "$loss_steps" --every 10 --dtype "$loss_dtype" --device "$device" --data "$kit/tiny-chat.jsonl"
fi

echo "== summary (full results: $results)"
"$py" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {r.get("Name"): r for r in rows}
failed = [r["Name"] for r in rows if r.get("Failed") and r["Name"] != "cudamem" and not (r["Name"] == "probe" and "probe-lazy" in by and not by["probe-lazy"].get("Failed"))]
probe = by.get("probe-lazy") or by.get("probe", {})
print(f"libtorch {probe.get('LibTorchVersion')} from {probe.get('LibTorchSource')} ({probe.get('LibTorchDirectory')}); CUDA available: {probe.get('CudaAvailable')}")
if probe.get("LibTorchWarning"): print("warning:", probe["LibTorchWarning"])
cmp_ = by.get("compare")
if cmp_:
    worst = {}
    for row in cmp_["Rows"]:
        worst[row["DType"]] = max(worst.get(row["DType"], 0), row["Y"], row["Dx"], row["DA"], row["DB"])
    print(f"layer {cmp_['Device']} vs CPU, worst relative error: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
cm = by.get("cudamem")
if cm: print("libtorch allocator statistics: " + ("read" if cm.get("Available") else f"not available ({cm.get('Reason') or 'the check failed'})"))
def mem(r):
    b = r.get("GpuPeakBytes", -1)
    if b is None or b < 0: b = r.get("PeakRssBytes", r.get("PeakBytes", -1))
    return f"{b/2**30:.2f}" if b and b > 0 else "-"
def alloc(r):
    b = r.get("TorchPeakAllocatedBytes") if r else None
    return f"{b/2**30:.2f}" if b else "-"
# GiB = nvidia-smi's peak above the GPU's use before the process; alloc = libtorch's peak allocated above the set-up model.
print(f"{'config':<10} {'impl':<20} {'LoRA tok/s':>11} {'GraLoRA tok/s':>14} {'G/L time':>9} {'LoRA GiB':>9} {'GraLoRA GiB':>12} {'LoRA alloc':>11} {'GraLoRA alloc':>14}")
for r in ("r32", "r128"):
    for impl, suffix, name in (("net", "", "GraLoRA.NET"), ("peft", "", "PEFT"), ("net", "-baseline", "GraLoRA.NET before")):
        l, g = by.get(f"{impl}-lora-{r}{suffix}"), by.get(f"{impl}-gralora-{r}{suffix}")
        if not l and not g: continue
        lt = l.get("TokensPerSecond") if l and not l.get("Failed") else None
        gt = g.get("TokensPerSecond") if g and not g.get("Failed") else None
        ratio = f"{lt/gt:.2f}" if lt and gt else "-"
        print(f"{r + (' k=2' if r == 'r32' else ' k=4'):<10} {name:<20} {lt or 0:>11.0f} {gt or 0:>14.0f} {ratio:>9} {mem(l) if l else '-':>9} {mem(g) if g else '-':>12} {alloc(l):>11} {alloc(g):>14}")
lo = by.get("layerops")
if lo:
    for c in lo["Configs"]:
        ops = c["Ops"]
        lora, gra = ops.get("layer: LoRA, forward + backward"), ops.get("layer: GraLoRA, forward + backward")
        before = ops.get("layer: GraLoRA before issue 21, forward + backward")
        if lora and gra: print(f"layer r={c['Rank']} k={c['K']} on {lo['Device']}: LoRA {lora:.3f} ms, GraLoRA {gra:.3f} ms forward + backward ({gra/lora:.2f}x)"
                               + (f", GraLoRA before issue 21 {before:.3f} ms" if before else "") + "; per-op table in run.log")
paper = {"lora": "1.00", "gralora": "1.06-1.10", "mora": "1.40-1.45", "rasa": "1.03-1.09", "dora": "-", "full": "-"}
ref = by.get("net-lora-r32")
if ref and not ref.get("Failed"):
    print(f"{'method r32':<12} {'impl':<12} {'tok/s':>9} {'x LoRA':>7} {'paper':>10} {'GiB':>6}")
    for m in ("lora", "gralora", "mora", "rasa", "dora", "full"):
        for impl in ("net", "peft"):
            r = by.get(f"{impl}-{m}-r32")
            if not r or r.get("Failed") or not r.get("TokensPerSecond"): continue
            base = by.get(f"{impl}-lora-r32")
            ratio = f"{base['TokensPerSecond'] / r['TokensPerSecond']:.2f}" if base and base.get("TokensPerSecond") else "-"
            print(f"{m:<12} {'GraLoRA.NET' if impl == 'net' else 'PEFT':<12} {r['TokensPerSecond']:>9.0f} {ratio:>7} {paper[m]:>10} {mem(r):>6}")
if not by.get("peft", {}).get("Available"): print("PEFT: not importable here, comparison skipped")
n = by.get("nccl")
if n and n.get("Skipped"): print(f"NCCL: skipped, {n.get('Reason')} ({n.get('Loader')})")
elif n and not n.get("Failed"):
    bad = [k for k, ok in n.get("Checks", {}).items() if not ok]
    print(f"{n.get('Engine')}: one-rank all-reduce/broadcast/all-gather on the device, gradient buckets, trainer hooks: {'ok' if not bad else 'FAILED ' + ', '.join(bad)}; "
          f"all-reduce of {n.get('Elements', 0):,} floats {n.get('AllReduceSeconds', 0) * 1000:.2f} ms")
q = {b: by.get(f"quant-{b}") for b in ("bfloat16", "nf4", "int8")}
if q["bfloat16"] and not q["bfloat16"].get("Failed"):
    ref = q["bfloat16"]
    print(f"{'base':<10} {'step s':>8} {'step/bf16':>10} {'peak GiB':>9} {'peak/bf16':>10} {'weights GiB':>12}")
    for b, r in q.items():
        if not r or r.get("Failed"): continue
        pb, rb = (r.get("GpuPeakBytes", -1), ref.get("GpuPeakBytes", -1))
        if pb is None or pb <= 0 or rb is None or rb <= 0: pb, rb = r["PeakRssBytes"], ref["PeakRssBytes"]
        print(f"{b:<10} {r['MedianStepSeconds']:>8.3f} {r['MedianStepSeconds'] / ref['MedianStepSeconds']:>10.3f} {pb / 2**30:>9.2f} {pb / rb:>10.3f} {r['WeightBytes'] / 2**30:>12.2f}")
ql = by.get("quant-loss")
if ql and not ql.get("Failed"):
    print(f"quickstart loss over {ql['Steps']} steps, last-quarter mean NF4/{ql['DType']}: {ql['TailRatio']:.3f}")
if failed: print("FAILED:", ", ".join(failed)); sys.exit(1)
PY
