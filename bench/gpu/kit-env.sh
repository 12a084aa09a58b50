# Sourced by run-gpu.sh and run-lab.sh: where libtorch comes from (GRALORA_LIBTORCH, default python's torch/lib) and the
# library path pip's CUDA libraries need. Expects $py (the Python to ask).
export GRALORA_NATIVE_CACHE=${GRALORA_NATIVE_CACHE:-${TMPDIR:-/tmp}/gralora-native}
export PYTHONUNBUFFERED=1
if [[ -z "${GRALORA_LIBTORCH:-}" ]]; then
  GRALORA_LIBTORCH=$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null) ||
    { echo "FAIL: no GRALORA_LIBTORCH and '$py' has no torch to take it from"; exit 1; }
fi
export GRALORA_LIBTORCH
echo "GRALORA_LIBTORCH=$GRALORA_LIBTORCH"
# pip's CUDA PyTorch finds cuBLAS, cuDNN, … in site-packages/nvidia/*/lib; Python preloads them, a .NET process relies on
# libtorch's run paths: list those folders too, in case a run path does not reach them.
kit_site=$(dirname "$(dirname "$GRALORA_LIBTORCH")")
for d in "$kit_site"/nvidia/*/lib "$kit_site"/nvidia/*/*/lib; do
  [[ -d $d ]] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
