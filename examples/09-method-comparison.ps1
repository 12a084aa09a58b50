#Requires -Version 7.4
<#
.SYNOPSIS
    The GraLoRA paper's method comparison at small scale on the CPU: LoRA, GraLoRA, MoRA, RaSA and DoRA (and full
    fine-tuning) trained on the same data at equal trainable parameters, one row per method, and a PNG of the loss curves.
.DESCRIPTION
    Creates a tiny random Llama (New-BaseModel), then Compare-GraLoRAMethod trains each method on every linear layer
    for -Steps steps on examples/data/tiny-alpaca.jsonl (a tenth held out) with the same seed, data order and learning
    rate, using the paper's settings for -Rank: LoRA, DoRA and MoRA (type 6) at r, GraLoRA with k from r/k² ≈ 8, RaSA
    with k = r/8; -Full adds full fine-tuning of the same layers. Outputs the rows (settings, trainable parameters,
    losses, median step time and its ratio to LoRA, peak memory) and writes the loss curves to -ChartPath. The paper's
    time ratios (MoRA 1.40–1.45× LoRA, RaSA 1.03–1.09×, GraLoRA 1.06–1.10×) come from 7–8B models on GPUs; a tiny
    CPU model is dominated by fixed per-step costs, so read its ratios as this machine's, not the paper's.
.PARAMETER Steps
    Optimizer steps per method (default 40).
.PARAMETER Rank
    The rank every method is given (default 16).
.PARAMETER Full
    Also train full fine-tuning of the same layers (the upper reference).
.PARAMETER ChartPath
    Where the loss curves go (default: methods.png in the current folder).
.PARAMETER Force
    Replace an existing -ChartPath file (without it, OutputExists before anything trains).
.EXAMPLE
    ./examples/09-method-comparison.ps1 -Steps 60 -Full | Format-Table
#>
param(
    [int] $Steps = 40,
    [int] $Rank = 16,
    [switch] $Full,
    [string] $ChartPath = (Join-Path (Get-Location) 'methods.png'),
    [switch] $Force
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force

$work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-methods-" + [guid]::NewGuid().ToString('N'))
try {
    $tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 1).FullName
    $model = Import-BaseModel $tiny
    try {
        $methods = @('LoRA', 'GraLoRA', 'MoRA', 'RaSA', 'DoRA') + @(if ($Full) { 'Full' })
        $model | Compare-GraLoRAMethod (Join-Path $PSScriptRoot 'data/tiny-alpaca.jsonl') -Method $methods -Rank $Rank `
            -MaxSteps $Steps -BatchSize 8 -LearningRate 3e-3 -MaxLength 256 -Seed 42 -ChartPath $ChartPath -Force:$Force -ProgressAction SilentlyContinue
    }
    finally { $model.Dispose() }
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
