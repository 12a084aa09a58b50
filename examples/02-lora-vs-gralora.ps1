#Requires -Version 7.4
<#
.SYNOPSIS
    LoRA versus GraLoRA at equal trainable parameters: a short training of each on a tiny model, and a results table.
.DESCRIPTION
    Creates a tiny random Llama (New-BaseModel), then for each method loads it afresh, adds an adapter of rank -Rank on
    every linear layer (LoRA r; GraLoRA r with k 2, which has exactly as many parameters as LoRA of the same r), trains
    it for -Steps steps on examples/data/tiny-alpaca.jsonl with the same seed, data and options (a tenth held out), and
    outputs one row per method: Method, Rank, K, Parameters, FinalLoss, ValidationLoss, Perplexity, Seconds. The rows
    are objects, so they can be sorted, exported or checked; the table shows when the script runs at the prompt.
.PARAMETER Steps
    Optimizer steps per method (default 60).
.PARAMETER Rank
    Rank r of both adapters (default 16).
.EXAMPLE
    ./examples/02-lora-vs-gralora.ps1 -Steps 100 | Format-Table
#>
param(
    [int] $Steps = 60,
    [int] $Rank = 16
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force
. (Join-Path $PSScriptRoot 'lib/AdapterComparison.ps1')

$work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-compare-" + [guid]::NewGuid().ToString('N'))
try {
    $tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 1).FullName
    $config = New-GraLoRATrainingConfig -MaxSteps $Steps -BatchSize 8 -LearningRate 3e-3 -Schedule Linear -WarmupSteps 5 `
        -ValidationSplit 0.1 -MaxLength 256 -Seed 42 -LoggingSteps ([Math]::Max(1, [int]($Steps / 4)))
    $adapters = [ordered]@{
        LoRA    = @{ Method = 'LoRA'; Rank = $Rank; Alpha = 2 * $Rank }
        GraLoRA = @{ Method = 'GraLoRA'; Rank = $Rank; K = '2'; Alpha = 2 * $Rank }
    }
    Invoke-AdapterComparison -ModelPath $tiny -Dataset (Join-Path $PSScriptRoot 'data/tiny-alpaca.jsonl') -Config $config -Adapters $adapters |
        Select-Object -Property * -ExcludeProperty HybridRank
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
