#!/usr/bin/env bash
# The reproduction (docs/reproduction.md, bench/GraLoRA.Bench/LabBench.cs) at GPU scale. On the GPU machine, from the
# repository root (the lab reads examples/data/tiny-chat.jsonl), with the kit carried:
#   artifacts/gpukit/run-lab.sh
# Settings (environment): KIT_DEVICE=cuda|cpu (default cuda), LAB_SCALE=large|small (default large), LAB_PARTS (default
# "expressiveness teacher rank localisation", in that order), LAB_ARGS (more lab options, e.g. "--steps 2 --ranks 16" for
# a smoke check), LAB_BUDGET_S (seconds per part; default: expressiveness 200, teacher 150, rank 60, localisation 120 — a
# part past its budget is stopped and the next runs), OUT (default ./lab-results), GRALORA_LIBTORCH, PYTHON.
# Under $OUT: lab.log (all output) and lab-charts.tar (the PNGs: the device machine returns 8 files, 2 folders deep).
set -uo pipefail
kit=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$PWD/lab-results}
mkdir -p "$out"
exec > >(tee "$out/lab.log") 2>&1
py=${PYTHON:-python3}
device=${KIT_DEVICE:-cuda}
scale=${LAB_SCALE:-large}
charts=$(mktemp -d "${TMPDIR:-/tmp}/gralora-lab.XXXXXX")
trap 'tar -C "$charts" -cf "$out/lab-charts.tar" .' EXIT
echo "== GraLoRA lab: device $device, scale $scale, $(date -u +%FT%TZ)"
source "$kit/kit-env.sh"
[[ $device == cuda ]] && { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi failed"; }
declare -A budget=([expressiveness]=200 [teacher]=150 [rank]=60 [localisation]=120)
failed=()
for part in ${LAB_PARTS:-expressiveness teacher rank localisation}; do
  seconds=${LAB_BUDGET_S:-${budget[$part]:-120}}
  # shellcheck disable=SC2086  # LAB_ARGS is a list of options
  timeout --kill-after=5 "$seconds" "$kit/runner/GraLoRA.GpuKit" lab "$part" --scale "$scale" --device "$device" --threads 8 --out "$charts" ${LAB_ARGS:-}
  rc=$?
  if [[ $rc -ne 0 ]]; then
    [[ $rc -eq 124 || $rc -eq 137 ]] && echo "STOPPED: lab $part ran past its ${seconds} s budget" || echo "FAILED: lab $part (exit $rc)"
    failed+=("$part")
  fi
done
echo "== charts: $(cd "$charts" && find . -name '*.png' | sort | tr '\n' ' ')"
[[ ${#failed[@]} -eq 0 ]] || { echo "FAILED parts: ${failed[*]}"; exit 1; }
