#Requires -Version 7.4
<#
.SYNOPSIS
    Hybrid GraLoRA at low rank: GraLoRA with a plain-LoRA part (hybrid_r) against plain GraLoRA and LoRA, all with
    the same number of trainable parameters; a results table.
.DESCRIPTION
    At low rank (r ≤ 16) each of GraLoRA's k² blocks gets only r/k ranks; the paper's hybrid variant gives part of the
    rank budget to an ordinary LoRA branch that sees the whole input (PEFT's hybrid_r). This script creates a tiny
    random Llama (New-BaseModel) and, for each of
      LoRA            r = -Rank
      GraLoRA         r = -Rank, k 2
      Hybrid GraLoRA  r = -Rank - -HybridRank, k 2, hybrid_r = -HybridRank
    (each r·(in + out) per layer: equal trainable parameters; alpha = 2·Rank for all, so all scale by 2), loads the
    model afresh, adds the adapter on every linear layer, trains it -Steps steps on examples/data/tiny-alpaca.jsonl
    (same seed, data and options, a tenth held out), and outputs one row per method: Method, Rank, HybridRank, K,
    Parameters, FinalLoss, ValidationLoss, Perplexity, Seconds.
.PARAMETER Steps
    Optimizer steps per method (default 60).
.PARAMETER Rank
    The rank budget r of every adapter (default 16; at most 16 here, the low-rank regime).
.PARAMETER HybridRank
    The hybrid's plain-LoRA rank (default 4); its GraLoRA part has r = Rank - HybridRank, which k 2 must divide.
.EXAMPLE
    ./examples/05-hybrid-low-rank.ps1 -Steps 100 | Format-Table
#>
param(
    [ValidateRange(2, 16)] [int] $Rank = 16,
    [int] $HybridRank = 4,
    [int] $Steps = 60
)
$ErrorActionPreference = 'Stop'
if ($HybridRank -lt 1 -or $HybridRank -ge $Rank -or ($Rank - $HybridRank) % 2) {
    throw "-HybridRank $HybridRank must leave an even GraLoRA rank between 2 and $($Rank - 1) (Rank $Rank - HybridRank)."
}
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force
. (Join-Path $PSScriptRoot 'lib/AdapterComparison.ps1')

$work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-hybrid-" + [guid]::NewGuid().ToString('N'))
try {
    $tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 1).FullName
    $config = New-GraLoRATrainingConfig -MaxSteps $Steps -BatchSize 8 -LearningRate 3e-3 -Schedule Linear -WarmupSteps 5 `
        -ValidationSplit 0.1 -MaxLength 256 -Seed 42 -LoggingSteps ([Math]::Max(1, [int]($Steps / 4)))
    $alpha = 2 * $Rank
    $adapters = [ordered]@{
        'LoRA'           = @{ Method = 'LoRA'; Rank = $Rank; Alpha = $alpha }
        'GraLoRA'        = @{ Method = 'GraLoRA'; Rank = $Rank; K = '2'; Alpha = $alpha }
        'Hybrid GraLoRA' = @{ Method = 'GraLoRA'; Rank = $Rank - $HybridRank; K = '2'; HybridRank = $HybridRank; Alpha = $alpha }
    }
    Invoke-AdapterComparison -ModelPath $tiny -Dataset (Join-Path $PSScriptRoot 'data/tiny-alpaca.jsonl') -Config $config -Adapters $adapters
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
