#Requires -Version 7.4
<#
.SYNOPSIS
    A CI job: fine-tune, evaluate, check a quality gate and leave artefacts — non-interactive, with exit codes.
.DESCRIPTION
    Meant for `pwsh -NonInteractive -File examples/03-ci-training.ps1 -Dataset d.jsonl -Output ./artefacts`. Without
    -Model it uses a tiny random Llama made by New-BaseModel (the embedded default). It trains a GraLoRA adapter
    (checkpoints, metrics.jsonl, TensorBoard runs/ and training.png under -Output), evaluates on the held-out tenth,
    saves the adapter in PEFT format under -Output/adapter, writes -Output/summary.json, and exits with:
      0  trained, and the validation loss is at most -MaxValidationLoss (when given);
      1  any error (missing or bad dataset, bad option, …): the error is printed, nothing half-written is left;
      2  trained, but the quality gate failed.
    Progress bars are off ($ProgressPreference), which also keeps the module's status lines off the log; training asks
    for its per-step lines with -InformationAction Continue, so the log holds those and the summary.
.PARAMETER Dataset
    Training data (JSONL, JSON, CSV or Parquet; format detected).
.PARAMETER Output
    Folder for all artefacts (created).
.PARAMETER Model
    A Hugging Face model folder; default: a tiny random model.
.PARAMETER Steps
    Optimizer steps (default 40).
.PARAMETER MaxValidationLoss
    Quality gate: fail with exit code 2 when the final validation loss is higher.
.EXAMPLE
    pwsh -NonInteractive -File examples/03-ci-training.ps1 -Dataset examples/data/tiny-chat.jsonl -Output ./artefacts -MaxValidationLoss 3
#>
param(
    [Parameter(Mandatory)] [string] $Dataset,
    [Parameter(Mandatory)] [string] $Output,
    [string] $Model,
    [int] $Steps = 40,
    [double] $MaxValidationLoss = [double]::PositiveInfinity
)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
    Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force
    New-Item -ItemType Directory -Force $Output | Out-Null
    $Output = (Resolve-Path $Output).Path
    if (-not $Model) { $Model = (New-BaseModel (Join-Path $Output 'base-model') -Architecture llama -Seed 1).FullName }

    $m = Import-BaseModel $Model
    try {
        $run = $m | Add-GraLoRAAdapter -Rank 16 -K Auto -TargetModule all-linear |
            Start-GraLoRATraining -Dataset $Dataset -ValidationSplit 0.1 -MaxSteps $Steps -BatchSize 8 -LearningRate 3e-3 `
                -MaxLength 256 -OutputPath (Join-Path $Output 'run') -LoggingSteps 10 -InformationAction Continue
        $m | Save-GraLoRAAdapter -Path (Join-Path $Output 'adapter') -Force | Out-Null
        $summary = [ordered]@{
            steps = $run.Steps; final_loss = $run.FinalLoss; validation_loss = $run.ValidationLoss
            perplexity = $run.Perplexity; seconds = [Math]::Round($run.Elapsed.TotalSeconds, 1); chart = $run.Chart
        }
        $summary | ConvertTo-Json | Set-Content (Join-Path $Output 'summary.json')
        "validation loss $($run.ValidationLoss) (gate: ≤ $MaxValidationLoss)"
        if ($run.ValidationLoss -gt $MaxValidationLoss) {
            Write-Warning "quality gate failed: validation loss $($run.ValidationLoss) > $MaxValidationLoss"
            exit 2
        }
    }
    finally { $m.Dispose() }
    exit 0
}
catch {
    Write-Error -ErrorRecord $_ -ErrorAction Continue
    exit 1
}
