#!/usr/bin/env bash
# Builds the GPU kit (docs/gpu.md): a self-contained, trimmed linux-x64 publish of the runner (GraLoRA.Core, TorchSharp,
# the patched libLibTorchSharp.so; NO libtorch: on the GPU machine GRALORA_LIBTORCH points at Python's torch/lib),
# plus run-gpu.sh and peft_compare.py. Output: artifacts/gpukit (ignored by git, carried to the device machine).
#   bench/gpu/build-kit.sh [OUTPUT_FOLDER]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/artifacts/gpukit}
limit_mib=${GRALORA_KIT_LIMIT_MIB:-48}       # the device machine carries 64 MiB per call, the repository included

staging="$out.staging"
rm -rf "$staging"
mkdir -p "$staging"
# GraLoRAKitBuild (Directory.Build.props): every project builds into bin-kit/ and obj-kit/, apart from the module's outputs.
# TrimMode=partial trims the .NET libraries only; TorchSharp and Core (reflection over modules) stay whole.
dotnet publish "$here/GraLoRA.GpuKit/GraLoRA.GpuKit.csproj" -c Release -r linux-x64 --self-contained true \
  -p:PublishTrimmed=true -p:TrimMode=partial -p:SuppressTrimAnalysisWarnings=true -p:TreatWarningsAsErrors=false \
  -p:DebugType=none -p:GraLoRAKitBuild=true -o "$staging/runner" --nologo -v q
# Natives the runner never loads: the debugger and tracing helpers, and the alternative garbage collectors. (SkiaSharp and
# HarfBuzz stay: the lab draws its charts with them.)
for f in libmscordaccore.so libmscordbi.so libcoreclrtraceptprovider.so libclrgc.so libclrgcexp.so createdump; do
  rm -f "$staging/runner/$f"
done
cp "$here/run-gpu.sh" "$here/run-lab.sh" "$here/kit-env.sh" "$here/peft_compare.py" "$staging/"
cp "$root/examples/data/tiny-chat.jsonl" "$staging/"          # the quickstart data, for stage 5's loss curve
chmod +x "$staging/run-gpu.sh" "$staging/run-lab.sh" "$staging/runner/GraLoRA.GpuKit"

fail() { echo "build-kit: $*" >&2; exit 1; }
[[ -f "$staging/runner/libLibTorchSharp.so" ]] || fail "libLibTorchSharp.so missing from the publish"
for lib in libtorch_cpu.so libtorch.so libc10.so; do
  [[ ! -e "$staging/runner/$lib" ]] || fail "$lib was published; the kit must not carry libtorch"
done
# The glue must load on the target's libstdc++ (GCC 12 systems lack GLIBCXX_3.4.32): the publish step patched it.
if readelf -V "$staging/runner/libLibTorchSharp.so" 2>/dev/null | grep -q "GLIBCXX_3.4.32.*Flags: none"; then
  fail "libLibTorchSharp.so still has a strong GLIBCXX_3.4.32 need"
fi

bytes=$(du -sb "$staging" | cut -f1)
mib=$(awk "BEGIN { printf \"%.1f\", $bytes / 1048576 }")
echo "kit: $out, $mib MiB in $(find "$staging" -type f | wc -l) files (limit $limit_mib MiB)"
(( bytes <= limit_mib * 1048576 )) || fail "the kit is $mib MiB, over $limit_mib MiB"
rm -rf "$out"
mv "$staging" "$out"
