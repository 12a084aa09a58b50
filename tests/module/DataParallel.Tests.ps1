# Data-parallel training from PowerShell: Start-GraLoRATraining -Device (one rank process per device, one progress bar
# and one result) and New-GraLoRAJobScript (launcher scripts for mpirun, Slurm and torchrun). The equivalence with one
# process is checked by the xunit suite (DataParallelMpiTests) and examples/08-data-parallel.ps1 (Examples.Tests.ps1);
# here: the PowerShell side. Runs with Open MPI's mpirun; where ./build.sh could not install it, the tests that start
# ranks say why and are reported as skipped.
BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:root = $root
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-dp-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:alpaca = Join-Path $root 'examples/data/tiny-alpaca.jsonl'
    $script:tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 5).FullName
    function New-TrainableModel {
        $m = Import-BaseModel $tiny
        $m | Add-GraLoRAAdapter -Rank 8 -K 2 -TargetModule all-linear -InformationAction Ignore | Out-Null
        $m
    }
    # Whether ranks can start here; where they cannot, the reason build.sh printed (a missing mpirun otherwise fails).
    function Test-Mpi {
        if (Get-Command mpirun -ErrorAction Ignore) { return $true }
        if (-not $env:GRALORA_MPI_UNAVAILABLE) { throw 'mpirun is not on PATH: install Open MPI (apt-get install openmpi-bin), or run ./build.sh test, which installs it.' }
        Set-ItResult -Skipped -Because "Open MPI is unavailable here: $env:GRALORA_MPI_UNAVAILABLE"
        $false
    }
}

AfterAll { Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'Start-GraLoRATraining -Device' {
    It 'trains on two CPU ranks and returns one run, with the trained adapter in this session''s model' {
        if (-not (Test-Mpi)) { return }
        $m = New-TrainableModel
        try {
            $before = Join-Path $work 'before'
            $m | Save-GraLoRAAdapter $before | Out-Null
            $out = Join-Path $work 'device-out'
            $all = @($m | Start-GraLoRATraining $alpaca -Device cpu, cpu -BatchSize 2 -MaxSteps 3 -LoggingSteps 1 -OutputPath $out 6>&1)
            $run = @($all | Where-Object { $_ -is [GraLoRA.PowerShell.TrainingRun] })
            $info = @($all | Where-Object { $_ -is [Management.Automation.InformationRecord] })
            $run | Should -HaveCount 1
            $run[0].WorldSize | Should -Be 2
            $run[0].Steps | Should -Be 3
            $run[0].History.Step | Should -Be @(1, 2, 3)
            $run[0].Model | Should -Be $m
            $text = ($info | ForEach-Object { "$_" }) -join "`n"
            $text | Should -Match 'Starting 2 ranks on cpu, cpu'
            $text | Should -Match 'rank 0: Data-parallel: 2 ranks .* batch 2 per rank, 4 per step'
            ([regex]::Matches($text, '(?m)^step\s+\d/3 ')).Count | Should -Be 3          # one line per step: rank 0's only
            Join-Path $out 'checkpoint-3/distributed.json' | Should -Exist
            @(Get-Content (Join-Path $out 'metrics.jsonl')) | Should -HaveCount 3
            # The session's model now holds the ranks' trained weights.
            $after = Join-Path $work 'after'
            $m | Save-GraLoRAAdapter $after | Out-Null
            (Get-FileHash (Join-Path $after 'adapter_model.safetensors')).Hash | Should -Be (Get-FileHash (Join-Path $out 'checkpoint-3/adapter_model.safetensors')).Hash
            (Get-FileHash (Join-Path $after 'adapter_model.safetensors')).Hash | Should -Not -Be (Get-FileHash (Join-Path $before 'adapter_model.safetensors')).Hash
        }
        finally { $m.Dispose() }
    }

    It 'stops every rank at one step when the pipeline is stopped (Ctrl+C), saving a checkpoint rank 0 writes' {
        if (-not (Test-Mpi)) { return }
        $out = Join-Path $work 'stopped-out'
        $job = Start-ThreadJob -ArgumentList $root, $tiny, $alpaca, $out {
            param($root, $tiny, $alpaca, $out)
            Import-Module (Join-Path $root 'GraLoRA.psd1')
            $m = Import-BaseModel $tiny
            $m | Add-GraLoRAAdapter -Rank 8 -K 2 -TargetModule all-linear -InformationAction Ignore | Out-Null
            $m | Start-GraLoRATraining $alpaca -Device cpu, cpu -BatchSize 2 -MaxSteps 500 -LoggingSteps 1 -OutputPath $out
        }
        try {
            $deadline = (Get-Date).AddMinutes(3)
            while (-not @($job.Progress | Where-Object StatusDescription -Match '^step').Count -and $job.State -in 'NotStarted', 'Running' -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 200 }
            @($job.Progress | Where-Object StatusDescription -Match '^step').Count | Should -BeGreaterThan 0 -Because "the ranks report steps ($($job.State): $($job.Error))"
            $job | Stop-Job                 # returns once the ranks have stopped (or were ended after the collective timeout)
        }
        finally { $job | Remove-Job -Force }
        $checkpoints = @(Get-ChildItem $out -Directory -Filter 'checkpoint-*')
        $checkpoints | Should -HaveCount 1
        [int]($checkpoints[0].Name -replace '^checkpoint-') | Should -BeLessThan 500
        Join-Path $checkpoints[0].FullName 'rng_state_1.safetensors' | Should -Exist                # both ranks stopped at that step
        @(Get-ChildItem $out -Directory -Force -Filter '.checkpoint-*') | Should -HaveCount 0
    }

    It 'refuses <Devices>: <Why>' -ForEach @(
        @{ Devices = @('cpu'); Why = 'one device'; Message = '*give two or more devices*' }
        @{ Devices = @('cpu', 'cuda:0'); Why = 'mixed kinds'; Message = '*mixed*' }
        @{ Devices = @('cuda:0', 'cuda:0'); Why = 'one GPU twice'; Message = '*a GPU hosts one rank*' }
    ) {
        $m = New-TrainableModel
        try { { $m | Start-GraLoRATraining $alpaca -Device $Devices -MaxSteps 1 } | Should -Throw $Message -ErrorId 'InvalidDevice,GraLoRA.PowerShell.Commands.StartGraLoRATrainingCommand' }
        finally { $m.Dispose() }
    }

    It 'refuses a non-empty -OutputPath without -Force before starting any rank, as one process does' {
        $m = New-TrainableModel
        $out = Join-Path $work 'device-taken'
        New-Item -ItemType Directory $out -Force | Out-Null
        Set-Content (Join-Path $out 'earlier.txt') 'an earlier run'
        # mpirun made unreachable: the error must come before the launcher is even looked for.
        $saved = $env:GRALORA_MPIRUN
        $env:GRALORA_MPIRUN = Join-Path $work 'no-such/mpirun'
        try {
            { $m | Start-GraLoRATraining $alpaca -Device cpu, cpu -MaxSteps 1 -OutputPath $out } |
                Should -Throw "*$out*-Force*" -ErrorId 'OutputExists,GraLoRA.PowerShell.Commands.StartGraLoRATrainingCommand'
            Get-Content (Join-Path $out 'earlier.txt') | Should -Be 'an earlier run'
            # With -Force the check passes and the launcher is the next thing asked for.
            { $m | Start-GraLoRATraining $alpaca -Device cpu, cpu -MaxSteps 1 -OutputPath $out -Force } | Should -Throw -ErrorId 'MpirunNotFound,*'
        }
        finally { $env:GRALORA_MPIRUN = $saved; $m.Dispose() }
    }

    It 'says how to install Open MPI when mpirun is missing, before writing anything' {
        $m = New-TrainableModel
        $saved = $env:GRALORA_MPIRUN
        $env:GRALORA_MPIRUN = Join-Path $work 'no-such/mpirun'
        try { { $m | Start-GraLoRATraining $alpaca -Device cpu, cpu -MaxSteps 1 } | Should -Throw '*apt-get install openmpi-bin*' -ErrorId 'MpirunNotFound,GraLoRA.PowerShell.Commands.StartGraLoRATrainingCommand' }
        finally { $env:GRALORA_MPIRUN = $saved; $m.Dispose() }
    }

    It 'checks every GPU before starting GPU ranks: CUDA not usable, or a device that does not exist' {
        $m = New-TrainableModel
        try {
            if ((Get-TorchDevice).CudaAvailable) {
                { $m | Start-GraLoRATraining $alpaca -Device cuda:0, cuda:99 -MaxSteps 1 } | Should -Throw "*'cuda:99' does not exist*" -ErrorId 'InvalidDevice,GraLoRA.PowerShell.Commands.StartGraLoRATrainingCommand'
            }
            else {
                { $m | Start-GraLoRATraining $alpaca -Device cuda:0, cuda:1 -MaxSteps 1 } | Should -Throw "*'cuda:0' was requested but CUDA is not usable*" -ErrorId 'CudaNotAvailable,GraLoRA.PowerShell.Commands.StartGraLoRATrainingCommand'
            }
        }
        finally { $m.Dispose() }
    }
}

Describe 'New-GraLoRAJobScript' {
    BeforeAll {
        $script:config = New-GraLoRATrainingConfig -MaxSteps 2 -BatchSize 2 -LearningRate 1e-3 -LoggingSteps 1 -OutputPath (Join-Path $work 'job-out')
    }

    It 'writes an mpirun job that runs as written: every rank trains, rank 0 writes the checkpoint and the trained adapter' {
        if (-not (Test-Mpi)) { return }
        $m = New-TrainableModel
        try { $script = $m | New-GraLoRAJobScript $alpaca -Path (Join-Path $work 'job') -Config $config -Ranks 2 }
        finally { $m.Dispose() }
        $script.Name | Should -Be 'launch.sh'
        $job = $script.DirectoryName
        foreach ($file in 'train.ps1', 'settings.json', 'adapter/adapter_model.safetensors') { Join-Path $job $file | Should -Exist }
        $settings = Get-Content -Raw (Join-Path $job 'settings.json') | ConvertFrom-Json -AsHashtable
        $settings.Settings.MaxSteps | Should -Be 2
        $settings.Module | Should -BeLike '*GraLoRA.psd1'
        $output = & bash $script.FullName 2>&1 | Out-String
        $LASTEXITCODE | Should -Be 0 -Because $output
        $output | Should -Match 'Data-parallel: 2 ranks'
        $output | Should -Match 'step\s+2/2 '
        Join-Path $job 'result/adapter_model.safetensors' | Should -Exist
        Join-Path $work 'job-out/checkpoint-2/adapter_model.safetensors' | Should -Exist
    }

    It 'writes a Slurm batch script with one srun task per GPU' {
        $m = New-TrainableModel
        try { $script = $m | New-GraLoRAJobScript $alpaca -Path (Join-Path $work 'slurm') -Config $config -Launcher Slurm -Ranks 16 -Nodes 2 -DeviceType cuda }
        finally { $m.Dispose() }
        $script.Name | Should -Be 'job.sbatch'
        $text = Get-Content -Raw $script
        $text | Should -Match '(?m)^#SBATCH --nodes=2$'
        $text | Should -Match '(?m)^#SBATCH --ntasks-per-node=8$'
        $text | Should -Match '(?m)^#SBATCH --gpus-per-node=8$'
        $text | Should -Match '(?m)^srun --mpi=pmix \$PWSH -NoProfile -NonInteractive -File .*/slurm/train.ps1$'
        Get-Content -Raw (Join-Path $script.DirectoryName 'train.ps1') | Should -Match "'cuda:local'"
    }

    It 'writes a torchrun script for GPUs that passes the NCCL id through a shared folder' {
        $m = New-TrainableModel
        try { $script = $m | New-GraLoRAJobScript $alpaca -Path (Join-Path $work 'torchrun') -Config $config -Launcher TorchRun -Ranks 8 -Nodes 2 -DeviceType cuda }
        finally { $m.Dispose() }
        $text = Get-Content -Raw $script
        $text | Should -Match 'exec torchrun --nnodes=2 --nproc-per-node=4 --node-rank="\$\{NODE_RANK:-0\}" .* --no-python \$PWSH -NoProfile -NonInteractive -File '
        $text | Should -Match 'export GRALORA_SHARED_DIR='
    }

    It 'refuses torchrun for CPU ranks, which need MPI' {
        $m = New-TrainableModel
        try { { $m | New-GraLoRAJobScript $alpaca -Path (Join-Path $work 'cpu-torchrun') -Config $config -Launcher TorchRun -DeviceType cpu } | Should -Throw '*use the Mpirun or Slurm launcher*' -ErrorId 'CpuRanksNeedMpi,GraLoRA.PowerShell.Commands.NewGraLoRAJobScriptCommand' }
        finally { $m.Dispose() }
        Join-Path $work 'cpu-torchrun' | Should -Not -Exist
    }

    It 'refuses to replace a job without -Force, replaces it with -Force, and writes nothing with -WhatIf' {
        $m = New-TrainableModel
        try {
            $folder = Join-Path $work 'again'
            $m | New-GraLoRAJobScript $alpaca -Path $folder -Config $config | Out-Null
            { $m | New-GraLoRAJobScript $alpaca -Path $folder -Config $config } | Should -Throw '*-Force*' -ErrorId 'OutputExists,GraLoRA.PowerShell.Commands.NewGraLoRAJobScriptCommand'
            ($m | New-GraLoRAJobScript $alpaca -Path $folder -Config $config -Ranks 4 -Force).Name | Should -Be 'launch.sh'
            Get-Content -Raw (Join-Path $folder 'launch.sh') | Should -Match 'mpirun -np 4 '
            $m | New-GraLoRAJobScript $alpaca -Path (Join-Path $work 'whatif') -Config $config -WhatIf
            Join-Path $work 'whatif' | Should -Not -Exist
        }
        finally { $m.Dispose() }
    }

    It 'refuses ranks that do not split evenly over the machines' {
        $m = New-TrainableModel
        try { { $m | New-GraLoRAJobScript $alpaca -Path (Join-Path $work 'uneven') -Config $config -Ranks 3 -Nodes 2 } | Should -Throw '*ranks a multiple of machines*' -ErrorId 'InvalidRankCount,GraLoRA.PowerShell.Commands.NewGraLoRAJobScriptCommand' }
        finally { $m.Dispose() }
    }
}
