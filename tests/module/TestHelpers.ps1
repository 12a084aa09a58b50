# Helpers shared by the Pester suites (dot-sourced in their BeforeAll blocks).

# Logits of one forward pass, flattened.
function Get-Logits($Model, $InputIds) {
    $out = Invoke-BaseModel -Model $Model -InputIds $InputIds
    try {
        $flat = [Collections.Generic.List[float]]::new()
        foreach ($row in $out.Logits) { foreach ($position in $row) { $flat.AddRange($position) } }
        , $flat.ToArray()
    }
    finally { $out.Dispose() }
}

# max |a - b| / max |b|: the error relative to the reference's scale.
function Get-RelativeError([float[]] $Actual, [float[]] $Expected) {
    $Actual.Count | Should -Be $Expected.Count
    $diff = 0.0; $scale = 0.0
    for ($i = 0; $i -lt $Expected.Count; $i++) {
        $diff = [Math]::Max($diff, [Math]::Abs($Actual[$i] - $Expected[$i]))
        $scale = [Math]::Max($scale, [Math]::Abs($Expected[$i]))
    }
    $diff / [Math]::Max($scale, 1e-12)
}


# A folder laid out as pip's site-packages/torch (lib/ + version.py) holding the libtorch 2.10 natives the module ships,
# hard-linked (copied across file systems): a "PyTorch installation" for GRALORA_LIBTORCH. Returns the lib folder.
function New-PyTorchLayoutFolder([string] $Folder, [string] $Version) {
    $natives = Join-Path (Split-Path -Parent (Split-Path -Parent $PSScriptRoot)) 'module/bin/dependencies'
    $torch = Join-Path $Folder 'site-packages/torch'
    $lib = New-Item -ItemType Directory -Path (Join-Path $torch 'lib') -Force
    foreach ($f in 'libc10.so', 'libtorch_cpu.so', 'libtorch.so', 'libgomp-98b21ff3.so.1', 'libshm.so', 'libtorch_global_deps.so') {
        & ln -f (Join-Path $natives $f) (Join-Path $lib $f) 2>$null
        if ($LASTEXITCODE -ne 0) { Copy-Item (Join-Path $natives $f) (Join-Path $lib $f) }
    }
    if ($Version) { "__version__ = '$Version'`ndebug = False" | Set-Content (Join-Path $torch 'version.py') }
    $lib.FullName
}

# The parameters through which a cmdlet writes files, found by name: -OutFile, -OutDirectory, -OutputPath, -ChartPath and
# any other -*Path, -Out* or -Output* parameter but the common ones, and -Path unless the verb reads (Import, Get, Read,
# Test, Resolve, Find, Measure). The -Force rule (tests/module/Module.Tests.ps1, Writers.Tests.ps1) holds for every
# cmdlet that has one.
function Get-WriterParameter([Management.Automation.CommandInfo] $Command) {
    $common = [Management.Automation.PSCmdlet]::CommonParameters + [Management.Automation.PSCmdlet]::OptionalCommonParameters
    $readingVerbs = 'Import', 'Get', 'Read', 'Test', 'Resolve', 'Find', 'Measure'
    @($Command.Parameters.Values | Where-Object {
        $common -notcontains $_.Name -and $_.ParameterType -in [string], [IO.FileInfo], [IO.DirectoryInfo] -and (
            ($_.Name -ne 'Path' -and $_.Name -match '^Out|^Output|Path$') -or ($_.Name -eq 'Path' -and $readingVerbs -notcontains $Command.Verb))
    } | ForEach-Object Name)
}

# Runs this pwsh again in a child process (-Command text or -File path) in $WorkingDirectory, with environment variables
# set ($null removes one) and colours off; returns ExitCode, Output (stdout) and Errors (stderr).
function Invoke-ChildPwsh([string] $Command, [string] $File, [string] $WorkingDirectory, [hashtable] $Environment = @{}) {
    $start = [Diagnostics.ProcessStartInfo]::new([Environment]::ProcessPath)
    if ((Split-Path -Leaf ([Environment]::ProcessPath)) -like 'dotnet*') { $start.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
    $arguments = @('-NoProfile', '-NonInteractive') + $(if ($File) { '-File', $File } else { '-Command', $Command })
    foreach ($a in $arguments) { $start.ArgumentList.Add($a) }
    $start.WorkingDirectory = $WorkingDirectory
    $start.RedirectStandardOutput = $true
    $start.RedirectStandardError = $true
    $start.Environment['NO_COLOR'] = '1'
    foreach ($key in $Environment.Keys) {
        if ($null -eq $Environment[$key]) { $null = $start.Environment.Remove($key) } else { $start.Environment[$key] = $Environment[$key] }
    }
    $process = [Diagnostics.Process]::Start($start)
    $stderr = $process.StandardError.ReadToEndAsync()
    $stdout = $process.StandardOutput.ReadToEnd()
    $process.WaitForExit()
    [pscustomobject]@{ ExitCode = $process.ExitCode; Output = $stdout; Errors = $stderr.Result }
}
