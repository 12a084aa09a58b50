#Requires -Version 7.4
<#
.SYNOPSIS
    Deploy a trained GraLoRA adapter: a PEFT LoRA for vLLM/TGI, GGUF files for llama.cpp/Ollama, and an Ollama Modelfile.
.DESCRIPTION
    Creates a tiny random Qwen3 with a tokenizer (New-BaseModel), trains a GraLoRA adapter (r 16, k 2, hybrid_r 4) for
    -Steps steps on examples/data/tiny-chat.jsonl, then writes into -OutputFolder (default: a temporary folder, removed
    at the end):
      lora/             ConvertTo-LoRAAdapter: the exact PEFT LoRA (rank k·r + hybrid_r = 36) for vLLM, TGI and PEFT
      lora-e99/         the same truncated to 99 % of each layer's ΔW energy (per-layer ranks: rank_pattern)
      base-f16.gguf     Export-BaseModel -Format gguf of the base model (no adapters): what --lora applies to
      adapter.gguf      ConvertTo-LoRAAdapter -Format gguf: the adapter for llama.cpp --lora / Ollama ADAPTER
      merged-q8_0.gguf  Export-BaseModel -Format gguf -DType q8_0 with the adapter merged in
      Modelfile         FROM base-f16.gguf + ADAPTER adapter.gguf, for `ollama create`
    and outputs one row per artifact: Artifact, Format, Rank, MaxRelativeError, Bytes. docs/deploy.md has the serving
    command lines.
.PARAMETER Steps
    Training steps (default 30).
.PARAMETER OutputFolder
    Keep the artifacts in this folder (created; must not hold them already).
.EXAMPLE
    ./examples/10-deploy.ps1 -OutputFolder ./deploy | Format-Table
#>
param(
    [ValidateRange(1, 10000)] [int] $Steps = 30,
    [string] $OutputFolder
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force

$scratch = Join-Path ([IO.Path]::GetTempPath()) ("gralora-deploy-" + [guid]::NewGuid().ToString('N'))
$out = if ($OutputFolder) { $OutputFolder } else { Join-Path $scratch 'out' }
New-Item -ItemType Directory $out -Force | Out-Null
try {
    $tiny = (New-BaseModel (Join-Path $scratch 'tiny') -Architecture qwen3 -Seed 1).FullName

    # The base model alone, for adapters applied at serving time.
    $base = Import-BaseModel $tiny
    try { $baseGguf = $base | Export-BaseModel (Join-Path $out 'base-f16.gguf') -Format gguf -DType float16 }
    finally { $base.Dispose() }

    $model = Import-BaseModel $tiny | Add-GraLoRAAdapter -Rank 16 -K 2 -HybridRank 4 -Alpha 32 -TargetModule all-linear 6>$null
    try {
        $model | Start-GraLoRATraining -Dataset (Join-Path $PSScriptRoot 'data/tiny-chat.jsonl') -MaxSteps $Steps -BatchSize 8 `
            -LearningRate 3e-3 -Seed 42 -LoggingSteps $Steps | Out-Null

        $exact = $model | ConvertTo-LoRAAdapter (Join-Path $out 'lora')
        $e99 = $model | ConvertTo-LoRAAdapter (Join-Path $out 'lora-e99') -Energy 0.99
        $adapter = $model | ConvertTo-LoRAAdapter (Join-Path $out 'adapter.gguf') -Format gguf
        $merged = $model | Export-BaseModel (Join-Path $out 'merged-q8_0.gguf') -Format gguf -DType q8_0
    }
    finally { $model.Dispose() }

    $modelfile = Join-Path $out 'Modelfile'
    @(
        'FROM ./base-f16.gguf'
        'ADAPTER ./adapter.gguf'
        'PARAMETER temperature 0'
    ) | Set-Content $modelfile

    function Get-Bytes([string] $Path) {
        if (Test-Path $Path -PathType Container) { (Get-ChildItem $Path -File -Recurse | Measure-Object Length -Sum).Sum } else { (Get-Item $Path).Length }
    }
    foreach ($row in @(
        @{ Artifact = 'lora'; Format = 'peft'; Result = $exact }
        @{ Artifact = 'lora-e99'; Format = 'peft'; Result = $e99 }
        @{ Artifact = 'base-f16.gguf'; Format = 'gguf float16'; Path = $baseGguf.FullName }
        @{ Artifact = 'adapter.gguf'; Format = 'gguf lora'; Result = $adapter }
        @{ Artifact = 'merged-q8_0.gguf'; Format = 'gguf q8_0'; Path = $merged.FullName }
        @{ Artifact = 'Modelfile'; Format = 'ollama'; Path = $modelfile }
    )) {
        $path = if ($row.Result) { $row.Result.Path } else { $row.Path }
        [pscustomobject]@{
            Artifact         = $row.Artifact
            Format           = $row.Format
            Rank             = if ($row.Result) { $row.Result.Rank } else { $null }
            MaxRelativeError = if ($row.Result) { $row.Result.MaxRelativeError } else { $null }
            Bytes            = [long](Get-Bytes $path)
        }
    }
}
finally {
    Remove-Item $scratch -Recurse -Force -ErrorAction SilentlyContinue
}
