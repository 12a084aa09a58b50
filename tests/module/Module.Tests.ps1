BeforeDiscovery {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:Cmdlets = Get-Command -Module GraLoRA | ForEach-Object { @{ Name = $_.Name } }
    $script:PassThruCmdlets = Get-Command -Module GraLoRA | Where-Object { $_.Parameters.ContainsKey('PassThru') } | ForEach-Object { @{ Name = $_.Name } }
    # Cmdlets that change a model or write files: each supports -WhatIf/-Confirm (Start-GraLoRATraining, whose whole
    # job is the change, and Invoke-BaseModel -OutFile, a side output, are left out).
    $script:Mutators = 'Add-GraLoRAAdapter', 'Set-GraLoRAAdapter', 'Remove-GraLoRAAdapter', 'Import-GraLoRAAdapter', 'Merge-GraLoRAAdapter',
        'Split-GraLoRAAdapter', 'Save-GraLoRAAdapter', 'Export-BaseModel', 'New-BaseModel', 'ConvertTo-LoRAAdapter', 'New-GraLoRAJobScript' | ForEach-Object { @{ Name = $_ } }
    $script:SetRemoveCmdlets = Get-Command -Module GraLoRA -Verb Set, Remove | ForEach-Object { @{ Name = $_.Name } }
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Writers = Get-Command -Module GraLoRA | ForEach-Object { @{ Name = $_.Name; Output = Get-WriterParameter $_ } } | Where-Object { $_.Output }
    # Cmdlets that work on one adapter and may be left to choose it: an optional single adapter name (a string parameter
    # completed with adapter names). Without it they take "the current adapter" by Core's one rule (AdapterHost.Current).
    $script:CurrentAdapterCmdlets = Get-Command -Module GraLoRA | ForEach-Object {
        $command = $_
        $command.Parameters.Values | Where-Object {
            $_.ParameterType -eq [string] -and
            ($_.Attributes | Where-Object { $_ -is [System.Management.Automation.ArgumentCompleterAttribute] -and $_.Type.Name -eq 'AdapterNameCompleter' })
        } | ForEach-Object { @{ Name = $command.Name; Parameter = $_.Name } }
    }
}

BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
}

Describe 'The module as a whole' {
    It 'exports the cmdlets its manifest names' {
        $manifest = Import-PowerShellDataFile (Join-Path $root 'GraLoRA.psd1')
        (Get-Command -Module GraLoRA).Name | Sort-Object | Should -Be ($manifest.CmdletsToExport | Sort-Object)
    }

    It '<Name> declares its output type' -ForEach $Cmdlets {
        (Get-Command $Name).OutputType | Should -Not -BeNullOrEmpty
    }

    It '<Name> -PassThru: the model is among its declared output types' -ForEach $PassThruCmdlets {
        (Get-Command $Name).OutputType.Name | Should -Contain 'GraLoRA.Models.BaseModel'
    }

    It '<Name> changes things, so it supports -WhatIf and -Confirm' -ForEach $Mutators {
        (Get-Command $Name).Parameters.Keys | Should -Contain 'WhatIf'
        (Get-Command $Name).Parameters.Keys | Should -Contain 'Confirm'
    }

    It '<Name> follows the Set-/Remove- convention: -PassThru, -WhatIf and -Confirm' -ForEach $SetRemoveCmdlets {
        (Get-Command $Name).Parameters.Keys | Should -Contain 'PassThru'
        (Get-Command $Name).Parameters.Keys | Should -Contain 'WhatIf'
        (Get-Command $Name).Parameters.Keys | Should -Contain 'Confirm'
    }

    It 'finds the cmdlets that write files by their parameters' {
        # A floor, so a broken search cannot pass the -Force check below by finding nothing.
        $Writers.Name | Should -Contain 'Export-BaseModel'
        $Writers.Name | Should -Contain 'New-BaseModel'
        $Writers.Name | Should -Contain 'Save-GraLoRAAdapter'
        $Writers.Name | Should -Contain 'Invoke-BaseModel'
        $Writers.Name | Should -Contain 'Start-GraLoRATraining'
        $Writers.Name | Should -Contain 'ConvertTo-LoRAAdapter'
        $Writers.Name | Should -Not -Contain 'Import-BaseModel'
    }

    It '<Name> writes files (-<Output>), so it takes -Force wherever it takes -<Output>, described by the one rule' -ForEach $Writers {
        $command = Get-Command $Name
        $command.Parameters.Keys | Should -Contain 'Force'
        $command.Parameters['Force'].ParameterType | Should -Be ([switch])
        foreach ($output in $Output) {
            foreach ($set in $command.Parameters[$output].ParameterSets.Keys) {
                if ($set -eq '__AllParameterSets') { $command.Parameters['Force'].ParameterSets.Keys | Should -Contain '__AllParameterSets' }
                else { @($command.Parameters['Force'].ParameterSets.Keys) | Where-Object { $_ -in $set, '__AllParameterSets' } | Should -Not -BeNullOrEmpty -Because "-Force must be usable with -$output in set $set" }
            }
        }
        (Get-Help $Name -Parameter Force).description.Text | Should -Match 'OutputExists'
    }

    It '<Name> exposes no TorchSharp types in its parameters' -ForEach $Cmdlets {
        $types = (Get-Command $Name).Parameters.Values.ParameterType.FullName
        $types | Where-Object { $_ -like 'TorchSharp*' } | Should -BeNullOrEmpty
    }

    It 'loads Core and TorchSharp into their own load context, not the default one' {
        $info = Get-TorchDevice
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($info.GetType().Assembly).Name | Should -Be 'GraLoRA'
        $torch = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'TorchSharp' }
        $torch | Should -Not -BeNullOrEmpty
        $torch | ForEach-Object { [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name } | Should -Be 'GraLoRA'
    }
}

Describe 'The current adapter: one rule for every cmdlet that works on a single adapter' {
    BeforeAll {
        $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-module-" + [guid]::NewGuid().ToString('N'))
        $script:tinyFolder = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 3).FullName
        $records = @(@{ prompt = 'a'; completion = 'b' }, @{ prompt = 'c'; completion = 'd' })
        $script:jobData = Join-Path $work 'job-data.jsonl'
        $records | ForEach-Object { $_ | ConvertTo-Json -Compress } | Set-Content $jobData
        # A call of each such cmdlet (extra parameters in $with); the test below fails for a cmdlet missing here.
        $script:withoutName = @{
            'Save-GraLoRAAdapter'   = { param($m, $with = @{}) $m | Save-GraLoRAAdapter (Join-Path $work ([guid]::NewGuid())) @with }
            'Start-GraLoRATraining' = { param($m, $with = @{}) $m | Start-GraLoRATraining -InputObject $records -MaxSteps 1 -InformationAction Ignore @with }
            'ConvertTo-LoRAAdapter' = { param($m, $with = @{}) $m | ConvertTo-LoRAAdapter (Join-Path $work ([guid]::NewGuid())) @with }
            'New-GraLoRAJobScript'  = { param($m, $with = @{}) $m | New-GraLoRAJobScript $jobData -Path (Join-Path $work ([guid]::NewGuid())) -WarningAction Ignore @with }
        }
    }
    AfterAll { Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue }

    It 'found the cmdlets (Save-GraLoRAAdapter and Start-GraLoRATraining at least)' {
        $CurrentAdapterCmdlets.Name | Should -Contain 'Save-GraLoRAAdapter'
        $CurrentAdapterCmdlets.Name | Should -Contain 'Start-GraLoRATraining'
    }

    It '<Name>: no adapter is NoActiveAdapter, two active are AmbiguousAdapter, an unknown -<Parameter> is AdapterNotFound, one active is used' -ForEach $CurrentAdapterCmdlets {
        $withoutName.Keys | Should -Contain $Name
        $m = Import-BaseModel $tinyFolder
        try {
            { & $withoutName[$Name] $m } | Should -Throw -ErrorId "NoActiveAdapter,*"
            $m | Add-GraLoRAAdapter -Name first -Rank 8 -K 2 -InformationAction Ignore | Out-Null
            $m | Add-GraLoRAAdapter -Name second -Rank 8 -K 2 -TargetModule k_proj -InformationAction Ignore | Out-Null
            $m | Set-GraLoRAAdapter -Active first, second
            $err = { & $withoutName[$Name] $m } | Should -Throw -ErrorId "AmbiguousAdapter,*" -PassThru
            "$($err.CategoryInfo.Category)" | Should -Be 'InvalidOperation'
            { & $withoutName[$Name] $m @{ $Parameter = 'ghost' } } | Should -Throw -ErrorId "AdapterNotFound,*"
            $m | Set-GraLoRAAdapter -Active second
            { & $withoutName[$Name] $m } | Should -Not -Throw
        }
        finally { $m.Dispose() }
    }
}

Describe 'Get-TorchDevice' {
    BeforeAll { $info = Get-TorchDevice }

    It 'lists the CPU' {
        $info.Devices.Name | Should -Contain 'cpu'
    }

    It 'reports libtorch 2.10 and TorchSharp 0.107.0' {
        $info.LibTorchVersion | Should -BeLike '2.10*'
        $info.TorchSharpVersion | Should -Be '0.107.0'
    }

    It 'ran a tensor operation in this pwsh process' {
        $info.SelfTestPassed | Should -BeTrue
        $info.Threads | Should -BeGreaterThan 0
    }

    It 'loaded the patched native library from the module folder' {
        $info.NativeLibrary | Should -BeLike '*module/bin/dependencies/libLibTorchSharp.so'
    }

    It 'says why CUDA is not usable, naming the build switch, on a CPU build' {
        if ($info.TorchBackend -eq 'cpu') {
            $info.CudaAvailable | Should -BeFalse
            $info.CudaUnavailableReason | Should -Match 'TorchBackend=cuda'
        }
        else {
            $info.CudaAvailable | Should -Be ($null -eq $info.CudaUnavailableReason)
        }
    }

    It 'formats as a list with the devices joined' {
        $text = $info | Out-String
        $text | Should -Match 'Devices\s+:\s+cpu'
        $text | Should -Match 'LibTorchVersion'
    }
}
