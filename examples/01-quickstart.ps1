#Requires -Version 7.4
<#
.SYNOPSIS
    Quickstart on the embedded default: import the module and report the compute devices.
.DESCRIPTION
    Run from a checkout with './build.sh quickstart' (builds first). Takes a few seconds on CPU.
    Expected output: a device list with 'cpu', libtorch 2.10, and why CUDA is or is not usable.
#>
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../GraLoRA.psd1') -Force

$info = Get-TorchDevice
$info | Format-List
$info.Devices | Format-Table Name, Type, Description
if (-not $info.SelfTestPassed) { throw 'libtorch loaded but a tensor operation gave a wrong result.' }
