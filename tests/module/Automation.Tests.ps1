# Pipelines, -PassThru conventions, thread jobs, quiet non-interactive runs and CUDA: the module as automation meets it.
BeforeDiscovery {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    # Tests tagged GPU run only where CUDA is usable (tests/run-pester.ps1 excludes the tag elsewhere and reports them
    # as not run); the CPU-build error test runs wherever CUDA is not usable.
    $script:CudaAvailable = (Get-TorchDevice).CudaAvailable
}

BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    $script:manifest = Join-Path $root 'GraLoRA.psd1'
    Import-Module $manifest -Force
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-automation-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:alpaca = Join-Path $root 'examples/data/tiny-alpaca.jsonl'
    $script:chat = Join-Path $root 'examples/data/tiny-chat.jsonl'
    $script:tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 3).FullName

    function New-Adapted([string] $Name = 'default') {
        $m = Import-BaseModel $tiny
        $m | Add-GraLoRAAdapter -Name $Name -Rank 8 -K 2 -RandomInit -InformationAction Ignore | Out-Null
        $m
    }
    function New-Folder { Join-Path $work ([guid]::NewGuid().ToString('N')) }
}

AfterAll { Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue }

Describe '-PassThru conventions' {
    # Set- and Remove- change the model and output nothing unless -PassThru; writers output what they wrote (a
    # folder) or, with -PassThru, the model; Start-GraLoRATraining outputs its TrainingRun or, with -PassThru, the model.
    It '<Cmdlet> outputs <Default> by default and the model with -PassThru' -ForEach @(
        @{ Cmdlet = 'Set-GraLoRAAdapter'; Default = 'nothing'; Arguments = { @{ Active = 'default' } } }
        @{ Cmdlet = 'Remove-GraLoRAAdapter'; Default = 'nothing'; Arguments = { @{ Name = 'default'; Confirm = $false } } }
        @{ Cmdlet = 'Save-GraLoRAAdapter'; Default = 'System.IO.DirectoryInfo'; Arguments = { @{ Path = (New-Folder) } } }
        @{ Cmdlet = 'Export-BaseModel'; Default = 'System.IO.DirectoryInfo'; Arguments = { @{ Path = (New-Folder) } } }
        @{ Cmdlet = 'Start-GraLoRATraining'; Default = 'GraLoRA.PowerShell.TrainingRun'; Arguments = { @{ Dataset = $alpaca; MaxSteps = 1; BatchSize = 2; InformationAction = 'Ignore' } } }
    ) {
        foreach ($passThru in $false, $true) {
            $m = New-Adapted
            try {
                $splat = & $Arguments
                $out = @($m | & $Cmdlet @splat -PassThru:$passThru)
                if ($passThru) {
                    $out.Count | Should -Be 1
                    [object]::ReferenceEquals($out[0], $m) | Should -BeTrue
                }
                elseif ($Default -eq 'nothing') { $out.Count | Should -Be 0 }
                else {
                    $out.Count | Should -Be 1
                    $out[0].GetType().FullName | Should -Be $Default
                }
            }
            finally { $m.Dispose() }
        }
    }

    It '<Cmdlet> transforms the model and always outputs it (no -PassThru)' -ForEach @(
        @{ Cmdlet = 'Add-GraLoRAAdapter'; Arguments = { @{ Name = 'second'; InformationAction = 'Ignore' } } }
        @{ Cmdlet = 'Merge-GraLoRAAdapter'; Arguments = { @{} } }
        @{ Cmdlet = 'Split-GraLoRAAdapter'; Arguments = { @{} } }
    ) {
        (Get-Command $Cmdlet).Parameters.Keys | Should -Not -Contain 'PassThru'
        $m = New-Adapted
        try {
            $splat = & $Arguments
            $out = @($m | & $Cmdlet @splat)
            $out.Count | Should -Be 1
            [object]::ReferenceEquals($out[0], $m) | Should -BeTrue
        }
        finally { $m.Dispose() }
    }

    It 'Set-GraLoRAAdapter -WhatIf changes nothing' {
        $m = New-Adapted
        try {
            $m | Set-GraLoRAAdapter -Disable -WhatIf
            (Get-GraLoRAAdapter -Model $m).Disabled | Should -BeFalse
        }
        finally { $m.Dispose() }
    }

    It 'Add-, Import- and Split-GraLoRAAdapter -WhatIf change nothing and still pass the model on' {
        $m = New-Adapted
        $saved = New-Folder
        $m | Save-GraLoRAAdapter $saved | Out-Null
        try {
            [object]::ReferenceEquals(($m | Add-GraLoRAAdapter -Name extra -WhatIf), $m) | Should -BeTrue
            [object]::ReferenceEquals(($m | Import-GraLoRAAdapter $saved -Name loaded -WhatIf), $m) | Should -BeTrue
            (Get-GraLoRAAdapter -Model $m).Name | Should -Be 'default'
            $m | Merge-GraLoRAAdapter | Split-GraLoRAAdapter -WhatIf | Out-Null
            (Get-GraLoRAAdapter -Model $m).Merged | Should -BeTrue
        }
        finally { $m.Dispose() }
    }

    It 'runs the issue''s pipeline as written: Import | Add -Rank 64 -K 4 | Start -PassThru | Merge | Export' {
        $folder = New-Folder
        New-Item -ItemType Directory $folder | Out-Null
        Copy-Item $tiny (Join-Path $folder 'm') -Recurse
        Get-Content $chat -TotalCount 16 | Set-Content (Join-Path $folder 'd.jsonl')
        Push-Location $folder
        try {
            $exported = Import-BaseModel ./m | Add-GraLoRAAdapter -Rank 64 -K 4 6>$null | Start-GraLoRATraining -Dataset ./d.jsonl -PassThru 6>$null | Merge-GraLoRAAdapter -OutVariable merged | Export-BaseModel ./out
        }
        finally { Pop-Location }
        $exported.GetType().FullName | Should -Be 'System.IO.DirectoryInfo'
        $exported.FullName | Should -Be (Join-Path $folder 'out')
        $model = $merged[0]
        $model.GetType().FullName | Should -Be 'GraLoRA.Models.BaseModel'
        $base = Import-BaseModel $tiny
        $reloaded = Import-BaseModel $exported.FullName
        try {
            $adapter = Get-GraLoRAAdapter -Model $model
            $adapter.Rank | Should -Be 64
            $adapter.K | Should -Be 4
            $adapter.Merged | Should -BeTrue
            $ids = [int[][]] @(, @(10, 72, 105, 33, 5, 9))
            $trained = (Invoke-BaseModel -Model $model -InputIds $ids)
            $fresh = (Invoke-BaseModel -Model $base -InputIds $ids)
            $again = (Invoke-BaseModel -Model $reloaded -InputIds $ids)
            try {
                # Training (2 steps of 8 conversations) moved the weights, and the export holds exactly the merged model.
                $a = $trained.Logits[0][5]; $b = $fresh.Logits[0][5]; $c = $again.Logits[0][5]
                $moved = 0.0; $diff = 0.0
                for ($i = 0; $i -lt $a.Count; $i++) {
                    $moved = [Math]::Max($moved, [Math]::Abs($a[$i] - $b[$i]))
                    $diff = [Math]::Max($diff, [Math]::Abs($a[$i] - $c[$i]))
                }
                $moved | Should -BeGreaterThan 1e-4
                $diff | Should -BeLessThan 1e-4
            }
            finally { $trained.Dispose(); $fresh.Dispose(); $again.Dispose() }
        }
        finally { $model.Dispose(); $base.Dispose(); $reloaded.Dispose() }
    }
}

Describe 'Training in a thread job' {
    It 'trains inside Start-ThreadJob: progress records in the job''s Progress stream, status lines in Information, the TrainingRun as output' {
        $job = Start-ThreadJob -ScriptBlock {
            param($Manifest, $Tiny, $Data)
            Import-Module $Manifest
            $m = Import-BaseModel $Tiny
            $m | Add-GraLoRAAdapter -Rank 8 -K 2 | Out-Null
            $m | Start-GraLoRATraining -Dataset $Data -MaxSteps 3 -BatchSize 2 -LoggingSteps 1
        } -ArgumentList $manifest, $tiny, $alpaca
        try {
            $null = $job | Wait-Job
            $job.State | Should -Be 'Completed'
            # Read the streams before Receive-Job, which empties them.
            $progress = @($job.Progress | Where-Object Activity -EQ "Training adapter 'default'")
            $lines = @($job.Information | Where-Object Tags -Contains 'GraLoRA')
            $output = @($job | Receive-Job -ErrorAction Stop)
            $output.Count | Should -Be 1
            $run = $output[0]
            $run.GetType().FullName | Should -Be 'GraLoRA.PowerShell.TrainingRun'
            $run.Steps | Should -Be 3
            $progress.Count | Should -BeGreaterOrEqual 3
            @($progress.StatusDescription -match '^step 3/3  loss \d').Count | Should -Be 1
            @($progress | Where-Object PercentComplete -EQ 100).Count | Should -BeGreaterOrEqual 1
            $progress[-1].RecordType | Should -Be 'Completed'
            @($lines.MessageData.Message -match '^step\s+\d/3  loss').Count | Should -Be 3
            $run.Model.Dispose()
        }
        finally { $job | Remove-Job -Force }
    }
}

Describe 'Console and streams' {
    BeforeAll {
        # A child pwsh runs the cmdlets with their chatty options (per-step lines, -Stream); only the script's own
        # output may reach stdout when the run is non-interactive or progress is silenced.
        $script:childScript = Join-Path $work 'quiet.ps1'
        @'
param([string] $Manifest, [string] $Tiny, [string] $Data, [string] $Out, [switch] $Silent)
$ErrorActionPreference = 'Stop'
if ($Silent) { $ProgressPreference = 'SilentlyContinue' }
Import-Module $Manifest
$m = Import-BaseModel $Tiny
$m | Add-GraLoRAAdapter -Rank 8 -K Auto | Out-Null
$run = $m | Start-GraLoRATraining -Dataset $Data -MaxSteps 2 -BatchSize 2 -LoggingSteps 1 -OutputPath (Join-Path $Out 'run')
$eval = $m | Invoke-GraLoRAEvaluation -Dataset $Data -Limit 4
$gen = $m | Invoke-GraLoRAGeneration 'Hello' -MaxNewTokens 4 -Stream
$m | Save-GraLoRAAdapter (Join-Path $Out 'adapter') | Out-Null
$m | Merge-GraLoRAAdapter | Export-BaseModel (Join-Path $Out 'merged') | Out-Null
$null = Get-BaseModel -Model $m; $null = Get-TorchDevice
"END steps=$($run.Steps) eval=$($eval.Examples) gen=$($gen.GetType().Name)"
'@ | Set-Content $childScript
        function Invoke-Child([string[]] $PwshArguments, [string[]] $ScriptArguments) {
            $out = Join-Path $work ([guid]::NewGuid().ToString('N'))
            $err = Join-Path $work 'stderr.txt'
            $stdout = & dotnet pwsh -NoProfile @PwshArguments -File $childScript -Manifest $manifest -Tiny $tiny -Data $alpaca -Out $out @ScriptArguments 2>$err
            [pscustomobject]@{ ExitCode = $LASTEXITCODE; Stdout = @($stdout); Stderr = (Get-Content $err -Raw) }
        }
    }

    It 'writes nothing but the script''s output to stdout under -NonInteractive' {
        $r = Invoke-Child -PwshArguments '-NonInteractive'
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        $r.Stdout | Should -Be @('END steps=2 eval=4 gen=GenerationResult')
        $r.Stderr | Should -BeNullOrEmpty
    }

    It 'writes nothing but the script''s output to stdout under $ProgressPreference = ''SilentlyContinue''' {
        $r = Invoke-Child -ScriptArguments '-Silent'
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        $r.Stdout | Should -Be @('END steps=2 eval=4 gen=GenerationResult')
    }

    It 'shows the status lines like Write-Host in an interactive session' {
        $r = Invoke-Child
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        $r.Stdout | Should -Contain 'END steps=2 eval=4 gen=GenerationResult'
        @($r.Stdout -match '^trainable params: ').Count | Should -Be 1
        @($r.Stdout -match '^step\s+\d/2  loss ').Count | Should -Be 2
        @($r.Stdout -match '^done: 2/2 steps').Count | Should -Be 1
    }

    It 'Invoke-GraLoRAGeneration -Stream writes the pieces to the information stream, adding up to the generated text' {
        $m = New-Adapted
        try {
            $result = $m | Invoke-GraLoRAGeneration 'Hello' -MaxNewTokens 6 -Stream -InformationVariable info
            @($result).Count | Should -Be 1
            $result.GetType().FullName | Should -Be 'GraLoRA.Models.GenerationResult'
            $pieces = @($info | Where-Object Tags -Contains 'GraLoRA.Stream')
            $pieces.Count | Should -BeGreaterThan 1
            $pieces | ForEach-Object { $_.Tags | Should -Contain 'GraLoRA' }
            ($pieces.MessageData.Message -join '') | Should -Be $result.Text
        }
        finally { $m.Dispose() }
    }

    It 'no cmdlet writes to the console or the host UI directly' {
        $sources = Get-ChildItem (Join-Path $root 'src/GraLoRA.PowerShell') -Recurse -Filter *.cs | Where-Object FullName -NotMatch '[\\/](obj|bin)[\\/]'
        $sources.Count | Should -BeGreaterThan 10
        $hits = $sources | Select-String -Pattern '\bConsole\s*\.|Host\s*\.\s*UI\s*\.\s*Write'
        $hits | Should -BeNullOrEmpty
    }
}

Describe 'CUDA' -Tag 'GPU' {
    It 'Get-TorchDevice reports the CUDA devices' {
        $info = Get-TorchDevice
        $info.CudaAvailable | Should -BeTrue
        $info.CudaUnavailableReason | Should -BeNullOrEmpty
        $info.Devices.Name | Should -Contain 'cuda:0'
    }

    It 'trains a few steps with the model on -Device cuda and lowers the loss' {
        $m = Import-BaseModel $tiny -Device cuda
        try {
            (Get-BaseModel -Model $m).Device | Should -Be 'cuda:0'
            $m | Add-GraLoRAAdapter -Rank 8 -K 2 -TargetModule all-linear -InformationAction Ignore | Out-Null
            $run = $m | Start-GraLoRATraining -Dataset $alpaca -MaxSteps 20 -BatchSize 8 -LearningRate 3e-3 -LoggingSteps 5 -InformationAction Ignore
            $run.Steps | Should -Be 20
            $run.FinalLoss | Should -BeLessThan $run.History[0].Loss
        }
        finally { $m.Dispose() }
    }
}

Describe 'CUDA on a CPU-only build' {
    # Runs everywhere: without CUDA the error is checked, with CUDA (a GPU build or GRALORA_LIBTORCH) the load itself.
    It 'Import-BaseModel -Device cuda fails with CudaNotAvailable naming the build switch, or loads on CUDA where there is one' {
        if ($CudaAvailable) {
            $m = Import-BaseModel $tiny -Device cuda
            try { $m.Device | Should -Match '^cuda' } finally { $m.Dispose() }
            return
        }
        $err = { Import-BaseModel $tiny -Device cuda } | Should -Throw -ErrorId 'CudaNotAvailable,*' -PassThru
        $err.CategoryInfo.Category | Should -Be 'NotInstalled'
        $err.Exception.Message | Should -Match 'TorchBackend=cuda'
        $err.Exception.Message | Should -Match '-Device cpu'
    }
}
