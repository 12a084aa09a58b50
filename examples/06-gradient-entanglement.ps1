#Requires -Version 7.4
<#
.SYNOPSIS
    Gradient entanglement on a tiny model: LoRA's and GraLoRA's implied update against full fine-tuning across ranks,
    with and without a synthetic outlier input channel, plus ΔW ranks and a k sweep.
.DESCRIPTION
    Creates a tiny random Llama (New-BaseModel) and, on examples/data/tiny-chat.jsonl, measures layer 1's down_proj with
    Measure-GradientEntanglement for each rank in -Rank: once as is and once with input channel -Channel multiplied by
    -Factor. Outputs one row per (outlier, rank): G's outlier share, LoRA's and GraLoRA's 1 − cos(U, G) and outlier
    shares. With -OutDirectory it also writes the heatmaps/channel charts of the last measurement, a ΔW spectrum chart
    of randomly initialised LoRA and GraLoRA adapters (Get-GraLoRAAdapter -Detailed), and runs Find-GraLoRAK on
    -StepBudget steps, printing its table. The bench subcommand `lab` (docs/reproduction.md) runs the larger version.
.PARAMETER Rank
    Ranks to measure (default 8, 16, 32, 64).
.PARAMETER Channel
    The input channel made an outlier (default 37).
.PARAMETER Factor
    What that channel is multiplied by (default 50).
.PARAMETER StepBudget
    Steps for the k sweep (default 0: no sweep).
.PARAMETER OutDirectory
    Folder for the charts (default: none).
.EXAMPLE
    ./examples/06-gradient-entanglement.ps1 -OutDirectory ./lab -StepBudget 60 | Format-Table
#>
param(
    [int[]] $Rank = @(8, 16, 32, 64),
    [int] $Channel = 37,
    [double] $Factor = 50,
    [int] $StepBudget = 0,
    [string] $OutDirectory
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force

$work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-lab-" + [guid]::NewGuid().ToString('N'))
try {
    $tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 1).FullName
    $data = Join-Path $PSScriptRoot 'data/tiny-chat.jsonl'
    $model = Import-BaseModel $tiny
    try {
        foreach ($outlier in $false, $true) {
            foreach ($r in $Rank) {
                $k = [Math]::Max(2, $(if ($r -ge 64) { 4 } else { 2 }))
                $measure = @{ Layer = 'layers.1.mlp.down_proj'; Rank = $r; K = $k; Batches = 2; MaxLength = 128 }
                if ($outlier) { $measure.InjectOutlier = @{ $Channel = $Factor } }
                if ($OutDirectory -and $outlier -and $r -eq $Rank[-1]) { $measure.OutDirectory = $OutDirectory }
                $m = $model | Measure-GradientEntanglement $data @measure
                [pscustomobject]@{
                    Outlier        = $(if ($outlier) { "channel $Channel × $Factor" } else { 'none' })
                    Rank           = $r
                    K              = $k
                    Flagged        = ($m.OutlierChannels -join ', ')
                    GShare         = [Math]::Round($m.GradientOutlierShare, 3)
                    LoRADeviation  = [Math]::Round($m.Lora.Deviation, 3)
                    GraLoRADeviation = [Math]::Round($m.Gralora.Deviation, 3)
                    LoRAShare      = [Math]::Round($m.Lora.OutlierShare, 3)
                    GraLoRAShare   = [Math]::Round($m.Gralora.OutlierShare, 3)
                }
            }
        }
        if ($OutDirectory) {
            $model | Add-GraLoRAAdapter -Name lora -Method LoRA -Rank 16 -TargetModule down_proj -RandomInit -InformationAction Ignore | Out-Null
            $model | Add-GraLoRAAdapter -Name gralora -Rank 16 -K 2 -TargetModule up_proj -RandomInit -InformationAction Ignore | Out-Null
            $spectra = $model | Get-GraLoRAAdapter -Detailed -ChartPath (Join-Path $OutDirectory 'spectra.png')
            $spectra | Format-Table Adapter, Layer, Method, Rank, K, MaxRank, NumericalRank, EffectiveRank | Out-Host
            $model | Remove-GraLoRAAdapter -Name lora, gralora -Confirm:$false
        }
        if ($StepBudget -gt 0) {
            $model | Find-GraLoRAK $data -Rank 16 -StepBudget $StepBudget -MaxLength 128 -LearningRate 3e-3 -InformationAction Continue |
                Format-Table Rank, K, HybridRank, Parameters, Steps, TrainLoss, ValidationLoss, Recommended | Out-Host
        }
    }
    finally { $model.Dispose() }
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
