# The module as a user gets it: packed by tools/New-GraLoRAModulePackage.ps1 (what './build.sh pack' runs), installed
# with Install-PSResource from a local folder repository, imported by name in new pwsh sessions started in an unrelated
# folder. Everything the child sessions touch (HOME, so PSResourceGet's repository list and the CurrentUser module
# folder; the native cache; libtorch's source) lives in a temporary folder.
BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    $work = Join-Path ([IO.Path]::GetTempPath()) "gralora-package-test-$([Guid]::NewGuid().ToString('N'))"
    $repository = Join-Path $work 'repository'
    $home_ = Join-Path $work 'home'
    $anywhere = Join-Path $work 'some/unrelated/folder'
    $cache = Join-Path $work 'native-cache'
    $feed = Join-Path $work 'libtorch-feed'
    $null = New-Item -ItemType Directory $home_, $anywhere, $feed

    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    # A pwsh like this one in $anywhere, with HOME (and nothing else of this user's) pointing into $work.
    $isolated = @{ HOME = $home_; GRALORA_NATIVE_CACHE = $cache }
    foreach ($name in 'PSModulePath', 'XDG_DATA_HOME', 'XDG_CACHE_HOME', 'XDG_CONFIG_HOME', 'NUGET_PACKAGES', 'GRALORA_LIBTORCH', 'GRALORA_LIBTORCH_SOURCE') { $isolated[$name] = $null }
    function Invoke-Isolated([string] $Command, [hashtable] $Environment = @{}) {
        $all = $isolated.Clone()
        foreach ($key in $Environment.Keys) { $all[$key] = $Environment[$key] }
        Invoke-ChildPwsh -Command $Command -WorkingDirectory $anywhere -Environment $all
    }

    # Pack in a child process: the packer loads GraLoRA.Core to write the restore manifest.
    $packed = Invoke-Isolated "& '$root/tools/New-GraLoRAModulePackage.ps1' -OutputDirectory '$repository' | ForEach-Object FullName"
    $nupkg = $packed.Output.Trim()

    # libtorch's source for the first import: a folder holding the very package the build restored (no network).
    $assets = Get-Content (Join-Path $root 'src/GraLoRA.Core/obj/project.assets.json') -Raw | ConvertFrom-Json -AsHashtable
    Add-Type -AssemblyName System.IO.Compression.FileSystem
    $zip = [IO.Compression.ZipFile]::OpenRead($nupkg)
    try {
        $entries = @($zip.Entries.FullName)
        $reader = [IO.StreamReader]::new(($zip.Entries | Where-Object FullName -EQ 'dependencies/libtorch.restore.json').Open())
        $restore = $reader.ReadToEnd() | ConvertFrom-Json
        $reader.Dispose()
    }
    finally { $zip.Dispose() }
    $libtorchNupkg = Join-Path $assets.project.restore.packagesPath "$($restore.id)/$($restore.version)/$($restore.id).$($restore.version).nupkg"
    & ln $libtorchNupkg (Join-Path $feed (Split-Path -Leaf $libtorchNupkg)) 2>$null
    if ($LASTEXITCODE -ne 0) { Copy-Item $libtorchNupkg $feed }

    $install = Invoke-Isolated @"
`$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name GraLoRATest -Uri '$repository' -Trusted
Install-PSResource GraLoRA -Repository GraLoRATest -Scope CurrentUser
(Get-InstalledPSResource GraLoRA).InstalledLocation
"@

    # The smoke test, in a new session from an unrelated folder: import by name, restore libtorch, run the pipeline.
    $smokeScript = @"
`$ErrorActionPreference = 'Stop'
Set-Location (New-Item -ItemType Directory ([Guid]::NewGuid().ToString('N')))
Import-Module GraLoRA
`$device = Get-TorchDevice
`$model = New-BaseModel ./tiny -Architecture llama -HiddenSize 32 -IntermediateSize 64 -Layers 1 -Seed 0 | Import-BaseModel
Get-Content '$root/examples/data/tiny-chat.jsonl' -TotalCount 8 | Set-Content ./train.jsonl
`$run = `$model | Add-GraLoRAAdapter -Rank 4 -K 2 -InformationAction Ignore | Start-GraLoRATraining -Dataset ./train.jsonl -MaxSteps 2 -BatchSize 4 -InformationAction Ignore
`$saved = `$run | Save-GraLoRAAdapter ./adapter
[pscustomobject]@{
    ModuleBase = (Get-Module GraLoRA).ModuleBase
    SelfTestPassed = `$device.SelfTestPassed
    LibTorchDirectory = `$device.LibTorchDirectory
    Steps = `$run.Steps
    AdapterFiles = @(Get-ChildItem `$saved | ForEach-Object Name)
    HelpExamples = @((Get-Help Start-GraLoRATraining).examples.example).Count
} | ConvertTo-Json -Compress
"@
    $first = Invoke-Isolated $smokeScript @{ GRALORA_LIBTORCH_SOURCE = $feed }
    $second = Invoke-Isolated $smokeScript   # no source: the cache must be enough

    # With GRALORA_LIBTORCH (a PyTorch installation's torch/lib) nothing is restored.
    $pyTorchLib = New-PyTorchLayoutFolder (Join-Path $work 'pytorch') '2.10.0'
    $emptyCache = Join-Path $work 'other-cache'
    $external = Invoke-Isolated "Import-Module GraLoRA; (Get-TorchDevice).LibTorchSource" @{ GRALORA_LIBTORCH = $pyTorchLib; GRALORA_NATIVE_CACHE = $emptyCache }
}

AfterAll {
    if ($work -and (Test-Path $work)) { Remove-Item $work -Recurse -Force }
}

Describe 'The packed module (tools/New-GraLoRAModulePackage.ps1, ./build.sh pack)' {
    It 'is a GraLoRA.<version>.nupkg with the manifest, cmdlets, help, format file and LICENSE at the top and libtorch left out' {
        $packed.ExitCode | Should -Be 0 -Because $packed.Errors
        Split-Path -Leaf $nupkg | Should -Be "GraLoRA.$((Import-PowerShellDataFile (Join-Path $root 'GraLoRA.psd1')).ModuleVersion).nupkg"
        foreach ($entry in 'GraLoRA.psd1', 'GraLoRA.PowerShell.dll', 'GraLoRA.format.ps1xml', 'LICENSE', 'en-US/GraLoRA.PowerShell.dll-Help.xml',
            'en-US/about_GraLoRA.help.txt', 'dependencies/GraLoRA.Core.dll', 'dependencies/TorchSharp.dll', 'dependencies/libLibTorchSharp.so') {
            $entries | Should -Contain $entry
        }
        foreach ($file in $restore.files) { $entries | Should -Not -Contain "dependencies/$file" }
        $restore.files | Should -Contain 'libtorch_cpu.so'
        (Get-Item $nupkg).Length | Should -BeLessThan 30MB
    }

    It 'names the libtorch package the build restored, with the SHA-512 NuGet recorded for its download' {
        $restore.id | Should -Be 'libtorch-cpu-linux-x64'
        $restore.sha512 | Should -Be (Get-Content "$libtorchNupkg.sha512" -Raw).Trim()
        $restore.size | Should -Be (Get-Item $libtorchNupkg).Length
    }

    It 'installs with Install-PSResource from a local folder repository into the CurrentUser module folder' {
        $install.ExitCode | Should -Be 0 -Because $install.Errors
        $install.Output.Trim() | Should -Be (Join-Path $home_ '.local/share/powershell/Modules')
        Test-Path (Join-Path $home_ '.local/share/powershell/Modules/GraLoRA/*/GraLoRA.psd1') | Should -BeTrue
    }

    It 'imports by name in a new session from another folder, restores libtorch once and trains, saves and shows help' {
        $first.ExitCode | Should -Be 0 -Because "$($first.Errors)$($first.Output)"
        $result = $first.Output | ConvertFrom-Json
        $result.ModuleBase | Should -BeLike (Join-Path $home_ '.local/share/powershell/Modules/GraLoRA/*')
        $result.SelfTestPassed | Should -BeTrue
        $result.LibTorchDirectory | Should -Be (Join-Path $cache "libtorch/$($restore.id)/$($restore.version)")
        $result.Steps | Should -Be 2
        $result.AdapterFiles | Should -Contain 'adapter_model.safetensors'
        $result.AdapterFiles | Should -Contain 'adapter_config.json'
        $result.HelpExamples | Should -BeGreaterThan 0
        $first.Errors | Should -Match "restoring libtorch \($($restore.id) $($restore.version).*from $([regex]::Escape($feed))"
    }

    It 'uses the restored libtorch in every later session, with no source and no second restore' {
        $second.ExitCode | Should -Be 0 -Because "$($second.Errors)$($second.Output)"
        ($second.Output | ConvertFrom-Json).LibTorchDirectory | Should -Be (Join-Path $cache "libtorch/$($restore.id)/$($restore.version)")
        $second.Errors | Should -Not -Match 'restoring libtorch'
    }
}

Describe 'The installed module with GRALORA_LIBTORCH' {
    It 'loads that libtorch and restores nothing' {
        $external.ExitCode | Should -Be 0 -Because $external.Errors
        $external.Output.Trim() | Should -Be 'GRALORA_LIBTORCH'
        $external.Errors | Should -Not -Match 'restoring libtorch'
        Test-Path (Join-Path $emptyCache 'libtorch') | Should -BeFalse
    }
}

Describe 'LICENSE' {
    It 'is the MIT license the manifest states, naming the manifest''s author as copyright holder' {
        $manifest = Import-PowerShellDataFile (Join-Path $root 'GraLoRA.psd1')
        $license = Get-Content (Join-Path $root 'LICENSE')
        $license[0] | Should -Be 'MIT License'
        $manifest.Copyright | Should -Match 'MIT License'
        $license | Should -Contain "Copyright (c) $($manifest.Author)"
    }
}
