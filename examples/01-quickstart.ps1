#Requires -Version 7.4
<#
.SYNOPSIS
    Quickstart on the embedded default: report the compute devices, create a tiny random Llama-architecture model
    with a real byte-level tokenizer, load it, run one forward pass and chat with it.
.DESCRIPTION
    Run from a checkout with './build.sh quickstart' (builds first). Takes a few seconds on CPU.
    Expected output: a device list with 'cpu'; the model as a table (llama, 107,456 parameters, float32, cpu,
    261 tokens); logits of shape [1, 4, 261]; then 16 tokens of (random, so meaningless) text, streamed as they are
    generated, and the result object (FinishReason Length). Swap New-BaseModel for a real folder or
    'Import-BaseModel -Name Qwen/Qwen2.5-0.5B' on a machine that can reach the Hugging Face Hub.
#>
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force

$info = Get-TorchDevice
$info | Format-List
if (-not $info.SelfTestPassed) { throw 'libtorch loaded but a tensor operation gave a wrong result.' }

$work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-quickstart-" + [guid]::NewGuid().ToString('N'))
try {
    $model = New-BaseModel (Join-Path $work 'tiny-llama') -Architecture llama -Seed 0 | Import-BaseModel
    $model | Format-Table

    $logits = Invoke-BaseModel -Model $model -InputIds @(, $model.Tokenizer.Encode('Hi!', $true))
    "logits: [$($logits.Shape -join ', ')]"
    $logits.Dispose()

    $model | Invoke-GraLoRAGeneration -Messages @{ role = 'user'; content = 'Hello!' } -MaxNewTokens 16 -Greedy -Stream
}
finally {
    if ($model) { $model.Dispose() }
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
