#Requires -Version 7.4
<#
.SYNOPSIS
    Runs the Pester suites under tests/module against the built module; writes a TRX-like summary.
.DESCRIPTION
    Tests tagged GPU need a usable CUDA device: where Get-TorchDevice reports none (a CPU build, or no GPU visible)
    they are excluded by tag and reported as not run, never counted as passed.
.PARAMETER ResultFile
    Where to write "passed failed notrun skipped" counts for the test driver.
.PARAMETER Path
    Test files to run (default: every *.Tests.ps1 under tests/module).
.PARAMETER FullName
    Only the tests whose full name matches one of these wildcard patterns.
#>
param([string] $ResultFile, [string[]] $Path, [string[]] $FullName)
$ErrorActionPreference = 'Stop'
$root = Split-Path -Parent $PSScriptRoot
Import-Module (Join-Path $root 'tools/packages/pester/5.7.1/tools/Pester.psd1') -Force

# Whether CUDA is usable, asked in a child process so this one does not load the module the suites import.
$cuda = (& dotnet pwsh -NoProfile -NonInteractive -Command "Import-Module '$(Join-Path $root 'GraLoRA.psd1')'; (Get-TorchDevice).CudaAvailable") -eq 'True'

$config = New-PesterConfiguration
$config.Run.Path = if ($Path) { $Path } else { Join-Path $PSScriptRoot 'module' }
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Normal'
$config.TestResult.Enabled = $true
$config.TestResult.OutputPath = Join-Path $root 'TestResults/pester.xml'
if ($FullName) { $config.Filter.FullName = $FullName }
if (-not $cuda) { $config.Filter.ExcludeTag = 'GPU' }
$result = Invoke-Pester -Configuration $config

$failed = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
# Tags are inherited from the Describe/Context blocks around a test.
function Test-Gpu($Item) { for (; $Item; $Item = if ($Item.PSObject.Properties['Block']) { $Item.Block } else { $Item.Parent }) { if ($Item.Tag -contains 'GPU') { return $true } }; $false }
$excluded = @($result.Tests | Where-Object { -not $_.ShouldRun -and (Test-Gpu $_) }).Count
"Pester: $($result.PassedCount) passed, $failed failed, $($result.SkippedCount) skipped, $($result.NotRunCount) not run" +
    $(if ($excluded) { " ($excluded tagged GPU: no usable CUDA device, so excluded)" } else { '' })
if ($ResultFile) { "$($result.PassedCount) $failed $($result.NotRunCount) $($result.SkippedCount)" | Set-Content $ResultFile }
exit $failed
