# The -Force rule, behaviour for behaviour, for every cmdlet that writes files (found by its parameters, as in
# Module.Tests.ps1): an existing non-empty target is an OutputExists error naming the path and -Force, and stays as it
# was; with -Force it is replaced. A writer without a case here fails '<Name> has a case here'.
BeforeDiscovery {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    # How each writer writes to $Target, with -Force or without (a cmdlet may have several ways, e.g. -Format gguf; the
    # variables they use are set in BeforeAll); Kind says whether the target is a file or a folder.
    $script:Cases = @(
        @{ Name = 'New-BaseModel'; Kind = 'Folder'; Run = { param($Target, $Force) New-BaseModel $Target -HiddenSize 16 -IntermediateSize 32 -Layers 1 -Force:$Force } }
        @{ Name = 'Export-BaseModel'; Kind = 'Folder'; Run = { param($Target, $Force) $model | Export-BaseModel $Target -Force:$Force } }
        @{ Name = 'Export-BaseModel'; Way = '-Format gguf'; Kind = 'File'; Run = { param($Target, $Force) $model | Export-BaseModel $Target -Format gguf -Force:$Force } }
        @{ Name = 'Save-GraLoRAAdapter'; Kind = 'Folder'; Run = { param($Target, $Force) $model | Save-GraLoRAAdapter $Target -Force:$Force } }
        @{ Name = 'ConvertTo-LoRAAdapter'; Kind = 'Folder'; Run = { param($Target, $Force) $model | ConvertTo-LoRAAdapter $Target -Force:$Force } }
        @{ Name = 'ConvertTo-LoRAAdapter'; Way = '-Format gguf'; Kind = 'File'; Run = { param($Target, $Force) $model | ConvertTo-LoRAAdapter $Target -Format gguf -Force:$Force } }
        @{ Name = 'Invoke-BaseModel'; Kind = 'File'; Run = { param($Target, $Force) Invoke-BaseModel -Model $model -InputIds (, [int[]](1, 2, 3)) -OutFile $Target -Force:$Force } }
        @{ Name = 'Get-GraLoRAAdapter'; Kind = 'File'; Run = { param($Target, $Force) $model | Get-GraLoRAAdapter -Detailed -ChartPath $Target -Force:$Force } }
        @{ Name = 'Measure-GradientEntanglement'; Kind = 'Folder'; Run = { param($Target, $Force) $model | Measure-GradientEntanglement -InputObject $records -Layer layers.0.mlp.down_proj -Rank 4 -K 2 -Batches 1 -OutDirectory $Target -Force:$Force } }
        @{ Name = 'Start-GraLoRATraining'; Kind = 'Folder'; Run = { param($Target, $Force) $model | Start-GraLoRATraining @train -OutputPath $Target -Force:$Force } }
        # Its -OutputPath and -Force are settings for Start-GraLoRATraining -Config: the rule holds through the configuration.
        @{ Name = 'New-GraLoRATrainingConfig'; Kind = 'Folder'; Run = { param($Target, $Force) $model | Start-GraLoRATraining @train -Config (New-GraLoRATrainingConfig -OutputPath $Target -Force:$Force) } }
    ) | ForEach-Object { $_.Case = ($_.Name, $_.Way | Where-Object { $_ }) -join ' '; $_ }

    $names = $Cases.Name
    $script:Writers = Get-Command -Module GraLoRA | Where-Object { Get-WriterParameter $_ } | ForEach-Object { @{ Name = $_.Name; Covered = $names -contains $_.Name } }
}

BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-writers-" + [guid]::NewGuid().ToString('N'))
    $null = New-Item -ItemType Directory $work
    $script:model = New-BaseModel (Join-Path $work 'tiny') -HiddenSize 32 -IntermediateSize 64 -Layers 1 -Seed 1 | Import-BaseModel
    $null = $model | Add-GraLoRAAdapter -Rank 4 -K 2 -InformationAction Ignore
    $script:records = 1..8 | ForEach-Object { @{ prompt = "Count from $($_):"; completion = " $($_ + 1)" } }
    $train = @{ InputObject = $records; MaxSteps = 1; BatchSize = 4; InformationAction = 'Ignore' }

    # A target holding something from before: a folder with old.txt, or a file with the text 'old'.
    function New-OccupiedTarget([string] $Name, [string] $Kind) {
        $target = Join-Path $work $Name
        if ($Kind -eq 'Folder') { $null = New-Item -ItemType Directory $target; Set-Content (Join-Path $target 'old.txt') 'old' }
        else { Set-Content $target 'old' }
        $target
    }
    function Test-Untouched([string] $Target, [string] $Kind) {
        if ($Kind -eq 'Folder') { @(Get-ChildItem $Target).Name -join ',' | Should -Be 'old.txt'; Get-Content (Join-Path $Target 'old.txt') | Should -Be 'old' }
        else { Get-Content $Target | Should -Be 'old' }
    }
}

AfterAll {
    $model.Dispose()
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'The -Force rule for writers' {
    It '<Name> has a case here' -ForEach $Writers {
        $Covered | Should -BeTrue -Because "$Name writes files: add how it writes to `$Cases so the rule is checked for it"
    }

    It '<Case>: an existing non-empty target is an OutputExists error naming it and -Force, and is left as it was' -ForEach $Cases {
        $target = New-OccupiedTarget "$($Case -replace '\W', '_')-refused" $Kind
        $failure = $null
        try { & $Run $target $false | Out-Null } catch { $failure = $_ }
        $failure | Should -Not -BeNullOrEmpty -Because "$Case wrote over a non-empty target without -Force"
        $failure.FullyQualifiedErrorId | Should -BeLike 'OutputExists,*'
        $failure.Exception.Message | Should -BeLike "*'$target'*-Force*"
        $failure.TargetObject | Should -Be $target
        Test-Untouched $target $Kind
    }

    It '<Case> -Force: the target is replaced' -ForEach $Cases {
        $target = New-OccupiedTarget "$($Case -replace '\W', '_')-forced" $Kind
        & $Run $target $true | Out-Null
        if ($Kind -eq 'Folder') {
            Join-Path $target 'old.txt' | Should -Not -Exist
            @(Get-ChildItem $target).Count | Should -BeGreaterThan 0
        }
        else { (Get-Item $target).Length | Should -BeGreaterThan 100 }
    }
}

Describe '-Force where the output is optional' {
    It '<Command> -Force without -<Output> is refused, not ignored (ForceWithoutOutput)' -ForEach @(
        @{ Command = 'Get-GraLoRAAdapter'; Output = 'ChartPath'; Run = { $model | Get-GraLoRAAdapter -Detailed -Force } }
        @{ Command = 'Measure-GradientEntanglement'; Output = 'OutDirectory'; Run = { $model | Measure-GradientEntanglement -InputObject $records -Layer layers.0.mlp.down_proj -Rank 4 -K 2 -Batches 1 -Force } }
        @{ Command = 'Start-GraLoRATraining'; Output = 'OutputPath'; Run = { $model | Start-GraLoRATraining -InputObject $records -MaxSteps 1 -InformationAction Ignore -Force } }
    ) {
        { & $Run } | Should -Throw -ErrorId 'ForceWithoutOutput,*' -ExpectedMessage "*-$Output*"
    }

    It 'Start-GraLoRATraining refuses -Force with -Resume: one starts afresh, the other continues' {
        $out = Join-Path $work 'resume-and-force'
        $model | Start-GraLoRATraining -InputObject $records -MaxSteps 1 -BatchSize 4 -OutputPath $out -InformationAction Ignore | Out-Null
        { $model | Start-GraLoRATraining -InputObject $records -MaxSteps 2 -BatchSize 4 -OutputPath $out -Resume -Force -InformationAction Ignore } |
            Should -Throw -ErrorId 'InvalidTrainingOption,*' -ExpectedMessage '*give one of them*'
        Join-Path $out 'checkpoint-1' | Should -Exist
    }
}
