#Requires -Version 7.4
<#
.SYNOPSIS
    Writes the GraLoRA PowerShell module as a package (GraLoRA.<version>.nupkg) into a local PSResourceGet repository folder.
.DESCRIPTION
    Lays the built module out as an installed module looks (manifest, cmdlet assembly and help at the top, Core, TorchSharp
    and their natives in dependencies/, LICENSE), then packs it with PSResourceGet's Compress-PSResource. libtorch (~500 MB
    unpacked, a 122 MiB .nupkg) is left out: dependencies/libtorch.restore.json names the NuGet package the build restored
    (id, version, the SHA-512 NuGet recorded) and the module restores it on first use (GraLoRA.Native.LibTorchRestore).
    Install with:
        Register-PSResourceRepository -Name GraLoRALocal -Uri <OutputDirectory> -Trusted
        Install-PSResource GraLoRA -Repository GraLoRALocal
.PARAMETER OutputDirectory
    The repository folder the .nupkg goes to (created when missing; an older package of the same version is replaced).
.PARAMETER Version
    The package version: x.y.z, or x.y.z-prerelease. Default: $env:GRALORA_PACKAGE_VERSION, else the manifest's ModuleVersion.
.PARAMETER StagingDirectory
    Where the module is laid out before packing (replaced). Default: a GraLoRA folder in a new temporary folder.
#>
param(
    [Parameter(Mandatory)] [string] $OutputDirectory,
    [string] $Version = $env:GRALORA_PACKAGE_VERSION,
    [string] $StagingDirectory
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$root = Split-Path -Parent $PSScriptRoot
$bin = Join-Path $root 'module/bin'
$dependencies = Join-Path $bin 'dependencies'
if (-not (Test-Path (Join-Path $bin 'GraLoRA.PowerShell.dll'))) { throw "The module is not built ($bin): run ./build.sh build first." }

# The libtorch package the build restored for the module's runtime (linux-x64): its natives stay out of the package.
$assetsFile = Join-Path $root 'src/GraLoRA.Core/obj/project.assets.json'
$assets = Get-Content $assetsFile -Raw | ConvertFrom-Json -AsHashtable
$target = $assets.targets['net8.0/linux-x64']
if (-not $target) { throw "$assetsFile has no net8.0/linux-x64 target: run ./build.sh build first." }
$libtorchKey = @($target.Keys | Where-Object { $_ -like 'libtorch-*/*' -and $target[$_]['native'] })
if ($libtorchKey.Count -ne 1) {
    throw "Expected one libtorch package with native files in $assetsFile, found $($libtorchKey.Count) ($($libtorchKey -join ', ')). " +
        'A CUDA build (-p:TorchBackend=cuda) is not packaged: install the CPU package and point GRALORA_LIBTORCH at a CUDA PyTorch (docs/gpu.md).'
}
$libtorchId, $libtorchVersion = $libtorchKey[0] -split '/'
$nativeFolder = 'runtimes/linux-x64/native'
$nativeFiles = @($target[$libtorchKey[0]]['native'].Keys | ForEach-Object { Split-Path -Leaf $_ } | Sort-Object)
$library = $assets.libraries[$libtorchKey[0]]
$nupkg = Join-Path $assets.project.restore.packagesPath "$($library.path)/$($libtorchId.ToLowerInvariant()).$($libtorchVersion.ToLowerInvariant()).nupkg"
# The SHA-512 of the .nupkg file as downloaded (NuGet's .nupkg.sha512; project.assets.json's sha512 leaves a signed
# package's signature out, so no download could be checked against it).
$sha512 = (Get-Content "$nupkg.sha512" -Raw).Trim()

# Stage: every file of module/bin but the compiler's doc comments and libtorch's natives; the manifest's paths become the
# installed layout's.
$temporary = $null
if (-not $StagingDirectory) {
    $temporary = Join-Path ([IO.Path]::GetTempPath()) "gralora-pack-$([Guid]::NewGuid().ToString('N'))"
    $StagingDirectory = Join-Path $temporary 'GraLoRA'
}
if ((Split-Path -Leaf $StagingDirectory) -ne 'GraLoRA') { throw "-StagingDirectory must end in a folder named GraLoRA (the module's name), not '$StagingDirectory'." }
if (Test-Path $StagingDirectory) { Remove-Item $StagingDirectory -Recurse -Force }
$stage = New-Item -ItemType Directory -Path $StagingDirectory -Force
foreach ($file in $nativeFiles) {
    if (-not (Test-Path (Join-Path $dependencies $file))) { throw "module/bin/dependencies lacks $file of $libtorchId ${libtorchVersion}: rebuild with ./build.sh build." }
}
$binFull = (Resolve-Path $bin).Path
foreach ($file in Get-ChildItem $binFull -Recurse -File) {
    $relative = [IO.Path]::GetRelativePath($binFull, $file.FullName)
    $docComments = $file.Extension -eq '.xml' -and -not $relative.StartsWith('en-US')
    $libtorchNative = (Split-Path -Parent $relative) -eq 'dependencies' -and $nativeFiles -contains $file.Name
    if ($docComments -or $libtorchNative) { continue }
    $destination = Join-Path $stage $relative
    $null = New-Item -ItemType Directory -Path (Split-Path -Parent $destination) -Force
    Copy-Item $file.FullName $destination
}
Copy-Item (Join-Path $root 'module/GraLoRA.format.ps1xml'), (Join-Path $root 'LICENSE') $stage
$moduleVersion, $prerelease = $Version -split '-', 2
$text = Get-Content (Join-Path $root 'GraLoRA.psd1') -Raw
$replacements = [ordered]@{
    "RootModule\s*=\s*'module/bin/GraLoRA.PowerShell.dll'"   = "RootModule           = 'GraLoRA.PowerShell.dll'"
    "FormatsToProcess\s*=\s*@\('module/GraLoRA.format.ps1xml'\)" = "FormatsToProcess     = @('GraLoRA.format.ps1xml')"
    '# The module as built from this checkout[^\r\n]*'          = '# The module as installed (written by tools/New-GraLoRAModulePackage.ps1 from the checkout''s GraLoRA.psd1).'
}
if ($moduleVersion) { $replacements["ModuleVersion\s*=\s*'[^']*'"] = "ModuleVersion        = '$moduleVersion'" }
if ($prerelease) { $replacements['PSData\s*=\s*@\{'] = "PSData = @{`n            Prerelease = '$prerelease'" }
foreach ($pattern in $replacements.Keys) {
    if ($text -notmatch $pattern) { throw "GraLoRA.psd1 no longer matches '$pattern': update tools/New-GraLoRAModulePackage.ps1." }
    $text = $text -replace $pattern, $replacements[$pattern]
}
Set-Content (Join-Path $stage 'GraLoRA.psd1') $text -NoNewline

# The restore manifest, written by Core itself so the reader and the writer share one format.
Add-Type -Path (Join-Path $dependencies 'GraLoRA.Core.dll')
$package = [GraLoRA.Native.LibTorchPackage]::new($libtorchId, $libtorchVersion, $sha512, $nativeFolder, [string[]] $nativeFiles, (Get-Item $nupkg).Length)
[GraLoRA.Native.LibTorchRestore]::WriteManifest($package, (Join-Path $stage 'dependencies'))

$null = Test-ModuleManifest (Join-Path $stage 'GraLoRA.psd1')
$null = New-Item -ItemType Directory -Path $OutputDirectory -Force
$manifest = Import-PowerShellDataFile (Join-Path $stage 'GraLoRA.psd1')
$name = "GraLoRA.$($manifest.ModuleVersion)$(if ($prerelease) { "-$prerelease" }).nupkg"
Remove-Item (Join-Path $OutputDirectory $name) -ErrorAction Ignore
Compress-PSResource -Path $stage -DestinationPath $OutputDirectory
if ($temporary) { Remove-Item $temporary -Recurse -Force }
Get-Item (Join-Path $OutputDirectory $name)
