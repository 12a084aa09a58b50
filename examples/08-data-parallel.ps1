#Requires -Version 7.4
<#
.SYNOPSIS
    Data-parallel training on this machine's CPU: the same tiny model trained on the same data once by 2 MPI ranks
    (batch 4 each) and once by one process (batch 8), 5 steps in float32; the last line is the largest difference
    between the two adapters' weights.
.DESCRIPTION
    Needs Open MPI's mpirun (Debian/Ubuntu: apt-get install openmpi-bin; ./build.sh test installs it). Steps:
      1. New-BaseModel: a random Llama-architecture model, saved as a folder (every rank loads it from there).
      2. Add-GraLoRAAdapter, saved once, so both runs start from the same adapter weights.
      3. Start-GraLoRATraining -Device cpu,cpu: two rank processes started through mpirun, each training on 4 rows of
         every global batch of 8 and all-reducing the gradients over MPI; one progress bar, one result, and the
         trained adapter comes back into this session's model.
      4. Start-GraLoRATraining in this process with batch 8.
      5. Both adapters' weights compared: they differ only by float32 rounding (the sums are taken in another order).
    Each step runs the same examples in both runs: rank r reads rows [4r, 4r + 4) of each global batch, and each rank's
    loss is divided by the predicted tokens of the whole global batch, so the summed gradients are the one-process ones.

    Measured on the 2-core development machine: about 45 s (starting two pwsh ranks takes most of it). Expected output:

      Starting 2 ranks on cpu, cpu (MPI through mpirun); job folder /tmp/gralora-job-…
      rank 0: Data-parallel: 2 ranks (OpenMpi, MPI (Open MPI v4.1.4)), batch 4 per rank, 8 per step; rank 0 writes the outputs
      …  (one line per step)
      2 ranks: 5 steps, final loss 5.3…; 1 process: 5 steps, final loss 5.3…
      max abs adapter weight difference: 4.5E-007        (anything up to ~1e-5 is rounding)

    Exits with code 2 (and says why) when the ranks could not start, e.g. without Open MPI.
.PARAMETER Steps
    Optimizer steps of each run (default 5).
#>
param([ValidateRange(1, 1000)] [int] $Steps = 5)
$ErrorActionPreference = 'Stop'
$InformationPreference = 'Continue'
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force

# float32 weights of a PEFT adapter folder (adapter_model.safetensors: an 8-byte header length, a JSON header, the data).
function Read-AdapterWeights([string] $Folder) {
    $bytes = [IO.File]::ReadAllBytes((Join-Path $Folder 'adapter_model.safetensors'))
    $length = [BitConverter]::ToInt64($bytes, 0)
    $header = [Text.Encoding]::UTF8.GetString($bytes, 8, $length) | ConvertFrom-Json -AsHashtable
    $weights = @{}
    foreach ($name in $header.Keys | Where-Object { $_ -ne '__metadata__' }) {
        $entry = $header[$name]
        if ($entry.dtype -ne 'F32') { throw "$name is $($entry.dtype), not F32" }
        $values = [float[]]::new(($entry.data_offsets[1] - $entry.data_offsets[0]) / 4)
        [Buffer]::BlockCopy($bytes, 8 + $length + $entry.data_offsets[0], $values, 0, $values.Length * 4)
        $weights[$name] = $values
    }
    $weights
}

$work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-dp-" + [guid]::NewGuid().ToString('N'))
try {
    $tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 1).FullName
    $data = Join-Path $PSScriptRoot 'data/tiny-alpaca.jsonl'
    $settings = @{ MaxSteps = $Steps; LearningRate = 3e-3; MaxLength = 256; Seed = 42; LoggingSteps = 1 }
    $start = Join-Path $work 'initial-adapter'
    $model = Import-BaseModel $tiny
    $model | Add-GraLoRAAdapter -Rank 16 -K 2 -TargetModule all-linear -InformationAction Ignore | Save-GraLoRAAdapter $start | Out-Null

    # 2 ranks × batch 4, started by this command (mpirun underneath).
    $parallel = Import-BaseModel $tiny
    $parallel | Import-GraLoRAAdapter $start | Out-Null
    try { $ranks = $parallel | Start-GraLoRATraining $data @settings -BatchSize 4 -Device cpu, cpu }
    catch {
        Write-Host "The ranks could not start: $($_.Exception.Message)"
        exit 2
    }
    $parallel | Save-GraLoRAAdapter (Join-Path $work 'two-ranks') | Out-Null

    # 1 process × batch 8.
    $single = Import-BaseModel $tiny
    $single | Import-GraLoRAAdapter $start | Out-Null
    $alone = $single | Start-GraLoRATraining $data @settings -BatchSize 8 -InformationAction Ignore
    $single | Save-GraLoRAAdapter (Join-Path $work 'one-process') | Out-Null

    $a = Read-AdapterWeights (Join-Path $work 'two-ranks')
    $b = Read-AdapterWeights (Join-Path $work 'one-process')
    $difference = 0.0
    foreach ($name in $a.Keys) {
        $x = $a[$name]; $y = $b[$name]
        for ($i = 0; $i -lt $x.Length; $i++) { $difference = [Math]::Max($difference, [Math]::Abs([double]$x[$i] - $y[$i])) }
    }
    '{0} ranks: {1} steps, final loss {2:0.0000}; 1 process: {3} steps, final loss {4:0.0000}' -f $ranks.WorldSize, $ranks.Steps, $ranks.FinalLoss, $alone.Steps, $alone.FinalLoss
    'max abs adapter weight difference: {0}' -f $difference.ToString('E1', [Globalization.CultureInfo]::InvariantCulture)
}
finally {
    foreach ($m in $model, $parallel, $single) { if ($m) { $m.Dispose() } }
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}
