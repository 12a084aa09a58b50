#Requires -Version 7.4
<#
.SYNOPSIS
    Resume after an interruption: a run stopped part-way and continued with -Resume ends with exactly the adapter of
    an uninterrupted run.
.DESCRIPTION
    Creates a tiny random Llama (New-BaseModel) and trains a GraLoRA adapter on examples/data/tiny-alpaca.jsonl twice,
    from the same initial adapter weights, with the same seed, data and options and a checkpoint folder (-OutputPath)
    each:
      1. uninterrupted: -Steps steps in one call;
      2. interrupted: the same call stopped after -StopAt steps (here by -MaxSteps, as a job with a time slot would
         be; it writes checkpoint-<StopAt> when it stops), then continued by a new model with a freshly added
         (different, random) adapter, with -Resume and -MaxSteps -Steps: the checkpoint restores the adapter, the AdamW state, the data
         position and the random state.
    The learning rate is constant so that stopping by -MaxSteps does not change it (with a decaying schedule, stop
    with Ctrl+C instead: the schedule is then the full run's, and -Resume continues it the same way).
    Outputs one row per call (Run, Steps, StepsTrained, ResumedFrom, FinalLoss, AdapterSha256: the start of the SHA-256
    of the adapter_model.safetensors it ended with, SameAsUninterrupted: whether those are the uninterrupted run's
    bytes). The resumed run's row says True: stopping and resuming changed nothing.
.PARAMETER Steps
    Optimizer steps of the whole run (default 30).
.PARAMETER StopAt
    The step the interrupted run stops at (default 12; must be less than -Steps).
.EXAMPLE
    ./examples/04-resume.ps1 | Format-Table
#>
param(
    [int] $Steps = 30,
    [int] $StopAt = 12
)
$ErrorActionPreference = 'Stop'
if ($StopAt -ge $Steps -or $StopAt -lt 1) { throw "-StopAt $StopAt must be between 1 and -Steps - 1 ($($Steps - 1))." }
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force

$work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-resume-" + [guid]::NewGuid().ToString('N'))
try {
    $tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 1).FullName
    $data = Join-Path $PSScriptRoot 'data/tiny-alpaca.jsonl'
    $options = @{
        Dataset = $data; BatchSize = 8; LearningRate = 3e-3; Schedule = 'Constant'; MaxLength = 256; Seed = 42
        LoggingSteps = 1; InformationAction = 'Ignore'
    }
    # Both runs start from the same adapter weights: one random initialisation, saved and loaded by each run.
    $start = Join-Path $work 'initial-adapter'
    $model = Import-BaseModel $tiny
    try {
        $model | Add-GraLoRAAdapter -Rank 16 -K 2 -TargetModule all-linear -InformationAction Ignore | Save-GraLoRAAdapter $start | Out-Null
    }
    finally { $model.Dispose() }

    function Start-Run([string] $Output, [int] $MaxSteps, [switch] $Resume) {
        $model = Import-BaseModel $tiny
        try {
            # A resumed run takes the adapter's weights from the checkpoint, whatever it starts with.
            if ($Resume) { $model | Add-GraLoRAAdapter -Rank 16 -K 2 -TargetModule all-linear -InformationAction Ignore | Out-Null }
            else { $model | Import-GraLoRAAdapter $start | Out-Null }
            $model | Start-GraLoRATraining @options -MaxSteps $MaxSteps -OutputPath $Output -Resume:$Resume
        }
        finally { $model.Dispose() }
    }
    function Get-AdapterHash($Run) {
        (Get-FileHash (Join-Path $Run.LastCheckpoint 'adapter_model.safetensors') -Algorithm SHA256).Hash
    }

    $whole = Start-Run (Join-Path $work 'whole') $Steps
    $stopped = Start-Run (Join-Path $work 'part') $StopAt
    $resumed = Start-Run (Join-Path $work 'part') $Steps -Resume

    $reference = Get-AdapterHash $whole
    foreach ($r in @(@{ Name = 'uninterrupted'; Run = $whole }, @{ Name = 'stopped'; Run = $stopped }, @{ Name = 'resumed'; Run = $resumed })) {
        $hash = Get-AdapterHash $r.Run
        [pscustomobject]@{
            Run                = $r.Name
            Steps              = $r.Run.Steps
            StepsTrained       = "$($r.Run.History[0].Step)..$($r.Run.History[-1].Step)"
            ResumedFrom        = if ($r.Name -eq 'resumed') { Split-Path -Leaf $stopped.LastCheckpoint } else { $null }
            FinalLoss          = [Math]::Round($r.Run.FinalLoss, 6)
            AdapterSha256      = $hash.Substring(0, 16)
            SameAsUninterrupted = $hash -eq $reference
        }
    }
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
