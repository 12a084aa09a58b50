# GRALORA_LIBTORCH / Get-TorchDevice -LibTorch: libtorch from a PyTorch installation instead of the NuGet natives.
# Each case runs in a child pwsh (libtorch loads once per process); the "PyTorch installation" is a folder laid out as
# pip's site-packages/torch (lib/ + version.py) holding the libtorch 2.10 natives the module ships, hard-linked.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-libtorch-" + [guid]::NewGuid().ToString('N'))
    $script:natives = Join-Path $root 'module/bin/dependencies'
    New-Item -ItemType Directory -Path $work -Force | Out-Null

    function New-PyTorchLayout([string] $Name, [string] $Version) { New-PyTorchLayoutFolder (Join-Path $work $Name) $Version }

    # Runs $Body in a child pwsh with GRALORA_LIBTORCH set (or unset); returns its JSON output and its stderr.
    function Invoke-Child([string] $LibTorch, [string] $Body) {
        $script = Join-Path $work ("child-" + [guid]::NewGuid().ToString('N') + '.ps1')
        @"
`$ErrorActionPreference = 'Stop'
Import-Module '$root/GraLoRA.psd1'
. '$PSScriptRoot/TestHelpers.ps1'
function Get-Mapped { Get-Content /proc/self/maps | Where-Object { `$_ -match '/lib(torch_cpu|c10|LibTorchSharp)\.so' } | ForEach-Object { (`$_ -split '\s+', 6)[5] } | Sort-Object -Unique }
try { $Body }
catch { [pscustomobject]@{ ErrorId = `$_.FullyQualifiedErrorId; Message = `$_.Exception.Message } | ConvertTo-Json -Compress }
"@ | Set-Content $script
        $saved = $env:GRALORA_LIBTORCH
        try {
            $env:GRALORA_LIBTORCH = $LibTorch
            $stderr = Join-Path $work 'stderr.txt'
            $out = & dotnet pwsh -NoProfile -NonInteractive -File $script 2>$stderr
            [pscustomobject]@{ Result = ($out | Select-Object -Last 1 | ConvertFrom-Json); Stderr = (Get-Content $stderr -Raw) ; Exit = $LASTEXITCODE }
        }
        finally { $env:GRALORA_LIBTORCH = $saved }
    }

    $script:probe = @'
$info = Get-TorchDevice
$folder = New-BaseModel (Join-Path ([IO.Path]::GetTempPath()) ("gralora-lt-" + [guid]::NewGuid().ToString('N'))) -Architecture llama -Seed 5
$model = Import-BaseModel $folder
[pscustomobject]@{ Source = $info.LibTorchSource; Directory = $info.LibTorchDirectory; Version = $info.LibTorchVersion; Warning = $info.LibTorchWarning
  SelfTest = $info.SelfTestPassed; Cuda = $info.CudaUnavailableReason; Mapped = @(Get-Mapped); Logits = (Get-Logits $model @(1, 5, 9, 2)) } | ConvertTo-Json -Compress -Depth 4
'@
    $script:bundled = (Invoke-Child '' $probe).Result
    $script:layout = New-PyTorchLayout 'match' '2.10.0+cpu'
}

AfterAll { Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'libtorch from a PyTorch installation' {
    It 'uses the NuGet libtorch when GRALORA_LIBTORCH is not set' {
        $bundled.Source | Should -Be 'nuget'
        @($bundled.Mapped | Where-Object { $_ -like '*/libtorch_cpu.so' }) | Should -Be @("$natives/libtorch_cpu.so")
    }

    It 'loads libtorch from GRALORA_LIBTORCH, and only from there, and computes the same logits' {
        $r = (Invoke-Child $layout $probe).Result
        $r.Source | Should -Be 'GRALORA_LIBTORCH'
        $r.Directory | Should -Be $layout
        $r.Version | Should -Be '2.10.0+cpu'
        $r.Warning | Should -BeNullOrEmpty
        $r.SelfTest | Should -BeTrue
        $r.Cuda | Should -Match 'no usable CUDA'
        # Every libtorch_cpu/libc10 mapping is the layout's; one LibTorchSharp, a copy alone in the cache folder.
        @($r.Mapped | Where-Object { $_ -match '/lib(torch_cpu|c10)\.so$' }) | Sort-Object | Should -Be @("$layout/libc10.so", "$layout/libtorch_cpu.so")
        @($r.Mapped | Where-Object { $_ -like '*libLibTorchSharp.so' }) | Should -HaveCount 1
        @($r.Mapped | Where-Object { $_ -like '*libLibTorchSharp.so' })[0] | Should -Match '-solo/libLibTorchSharp\.so$'
        Get-RelativeError $r.Logits $bundled.Logits | Should -BeLessThan 1e-6
    }

    It 'takes the folder from Get-TorchDevice -LibTorch (the torch package folder above lib/ too)' {
        $r = (Invoke-Child '' "`$i = Get-TorchDevice -LibTorch '$(Split-Path -Parent $layout)'; [pscustomobject]@{ Source = `$i.LibTorchSource; Directory = `$i.LibTorchDirectory; Again = (Get-TorchDevice -LibTorch '$layout').LibTorchSource; Mapped = @(Get-Mapped) } | ConvertTo-Json -Compress").Result
        $r.Source | Should -Be 'option'
        $r.Directory | Should -Be $layout
        $r.Again | Should -Be 'option'
        @($r.Mapped | Where-Object { $_ -like '*/libtorch_cpu.so' }) | Should -Be @("$layout/libtorch_cpu.so")
    }

    It 'refuses to switch libtorch once one is loaded' {
        $r = (Invoke-Child '' "Get-TorchDevice | Out-Null; Get-TorchDevice -LibTorch '$layout'").Result
        $r.ErrorId | Should -BeLike 'LibTorchAlreadyLoaded,*'
        $r.Message | Should -Match 'GRALORA_LIBTORCH'
    }

    It 'fails a wrong GRALORA_LIBTORCH with an ErrorId and a message naming the variable' -TestCases @(
        @{ Case = 'missing'; Path = { Join-Path $work 'does-not-exist' }; Expect = 'does not exist' }
        @{ Case = 'no libtorch'; Path = { (New-Item -ItemType Directory (Join-Path $work 'empty') -Force).FullName }; Expect = 'libc10.so, libtorch_cpu.so, libtorch.so not found' }
    ) {
        $path = & $Path
        $r = (Invoke-Child $path 'Get-TorchDevice | ConvertTo-Json -Compress').Result
        $r.ErrorId | Should -BeLike 'LibTorchPathInvalid,*'
        $r.Message | Should -Match ([regex]::Escape("GRALORA_LIBTORCH='$path'"))
        $r.Message | Should -Match $Expect
        $r.Message | Should -Match 'torch/lib'
    }

    It 'warns and runs when the stated version differs but every function TorchSharp needs resolves' {
        $other = New-PyTorchLayout 'other-version' '2.9.1+cpu'
        $c = Invoke-Child $other $probe
        $c.Result.Source | Should -Be 'GRALORA_LIBTORCH'
        $c.Result.Version | Should -Be '2.9.1+cpu'
        $c.Result.Warning | Should -Match 'libtorch 2\.9\.1\+cpu .* is not the 2\.10 series TorchSharp 0\.107\.0 was built for'
        $c.Stderr | Should -Match 'GraLoRA warning: libtorch 2\.9\.1\+cpu'
        Get-RelativeError $c.Result.Logits $bundled.Logits | Should -BeLessThan 1e-6
    }

    It 'refuses a libtorch that lacks functions TorchSharp calls, naming the symbol and the versions' {
        # Stand-ins with the right sonames and no symbols: what an older or newer libtorch looks like to the loader.
        $lib = New-Item -ItemType Directory -Path (Join-Path $work 'stub/torch/lib') -Force
        foreach ($name in 'libc10.so', 'libtorch_cpu.so', 'libtorch.so') {
            & gcc -shared -fPIC -o (Join-Path $lib $name) "-Wl,-soname,$name" -x c /dev/null
            $LASTEXITCODE | Should -Be 0 -Because 'gcc builds the stand-in libraries'
        }
        "__version__ = '1.13.0'" | Set-Content (Join-Path $work 'stub/torch/version.py')
        $r = (Invoke-Child $lib.FullName 'Get-TorchDevice | ConvertTo-Json -Compress').Result
        $r.ErrorId | Should -BeLike 'LibTorchIncompatible,*'
        $r.Message | Should -Match 'libtorch 1\.13\.0 at GRALORA_LIBTORCH=.* is incompatible with TorchSharp 0\.107\.0 \(built for libtorch 2\.10\.0\)'
        $r.Message | Should -Match 'undefined symbol'
        $r.Message | Should -Match 'PyTorch 2\.10\.x'
        # The lazy escape hatch cannot help either: data symbols (vtables) must resolve at load.
        $env:GRALORA_LIBTORCH_BIND = 'lazy'
        try { $lazy = (Invoke-Child $lib.FullName 'Get-TorchDevice | ConvertTo-Json -Compress').Result }
        finally { Remove-Item Env:GRALORA_LIBTORCH_BIND }
        $lazy.ErrorId | Should -BeLike 'LibTorchIncompatible,*'
        $lazy.Message | Should -Match 'also with GRALORA_LIBTORCH_BIND=lazy'
    }
}
