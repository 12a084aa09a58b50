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

$work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-compare-" + [guid]::NewGuid().ToString('N'))
try {
    $tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 1).FullName
    $config = New-GraLoRATrainingConfig -MaxSteps $Steps -BatchSize 8 -LearningRate 3e-3 -Schedule Linear -WarmupSteps 5 `
        -ValidationSplit 0.1 -MaxLength 256 -Seed 42 -LoggingSteps ([Math]::Max(1, [int]($Steps / 4)))
    $data = Join-Path $PSScriptRoot 'data/tiny-alpaca.jsonl'
    foreach ($method in 'LoRA', 'GraLoRA') {
        $model = Import-BaseModel $tiny
        try {
            $adapter = @{ Method = $method; Rank = $Rank; Alpha = 2 * $Rank; TargetModule = 'all-linear' }
            if ($method -eq 'GraLoRA') { $adapter.K = '2' }
            $model | Add-GraLoRAAdapter @adapter -InformationAction Ignore | Out-Null
            $info = $model | Get-GraLoRAAdapter
            $run = $model | Start-GraLoRATraining $data -Config $config -InformationAction Ignore
            [pscustomobject]@{
                Method         = $method
                Rank           = $info.Rank
                K              = $info.K
                Parameters     = $info.Parameters
                FinalLoss      = [Math]::Round($run.FinalLoss, 4)
                ValidationLoss = [Math]::Round($run.ValidationLoss, 4)
                Perplexity     = [Math]::Round($run.Perplexity, 3)
                Seconds        = [Math]::Round($run.Elapsed.TotalSeconds, 1)
            }
        }
        finally { $model.Dispose() }
    }
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
