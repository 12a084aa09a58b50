#Requires -Version 7.4
<#
.SYNOPSIS
    Runs the Pester suites under tests/module against the built module; writes a TRX-like summary.
.PARAMETER ResultFile
    Where to write "passed failed" counts for the test driver.
#>
param([string] $ResultFile)
$ErrorActionPreference = 'Stop'
$root = Split-Path -Parent $PSScriptRoot
Import-Module (Join-Path $root 'tools/packages/pester/5.7.1/tools/Pester.psd1') -Force

$config = New-PesterConfiguration
$config.Run.Path = Join-Path $PSScriptRoot 'module'
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Normal'
$config.TestResult.Enabled = $true
$config.TestResult.OutputPath = Join-Path $root 'TestResults/pester.xml'
$result = Invoke-Pester -Configuration $config
if ($ResultFile) { "$($result.PassedCount) $($result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount)" | Set-Content $ResultFile }
exit ($result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount)
