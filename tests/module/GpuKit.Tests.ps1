# The GPU kit (bench/gpu, docs/gpu.md) end to end on the CPU, with the same scripts a GPU run uses: build-kit.sh
# publishes the runner without libtorch; run-gpu.sh runs it against a PyTorch-like folder (GRALORA_LIBTORCH) with
# the small model. A GPU run then cannot fail for packaging reasons.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-gpukit-" + [guid]::NewGuid().ToString('N'))
    $script:kit = Join-Path $work 'gpukit'
    $script:build = (& bash (Join-Path $root 'bench/gpu/build-kit.sh') $kit 2>&1 | Out-String)
    $script:buildExit = $LASTEXITCODE
    $script:layout = New-PyTorchLayoutFolder (Join-Path $work 'py') '2.10.0+cpu'
    $saved = @{}
    $settings = @{ KIT_DEVICE = 'cpu'; KIT_SIZE = 'small'; GRALORA_LIBTORCH = $layout; OUT = (Join-Path $work 'out'); PYTHON = 'python3' }
    foreach ($k in $settings.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k); [Environment]::SetEnvironmentVariable($k, $settings[$k]) }
    try {
        $script:output = (& bash (Join-Path $kit 'run-gpu.sh') 2>&1 | Out-String)
        $script:runExit = $LASTEXITCODE
    }
    finally { foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) } }
    $file = Join-Path $work 'out/results.jsonl'
    $script:results = @{}
    if (Test-Path $file) { foreach ($line in Get-Content $file) { $r = $line | ConvertFrom-Json; $results[$r.Name] = $r } }
    & python3 -c 'import peft, transformers' 2>$null
    $script:pythonHasPeft = $LASTEXITCODE -eq 0
}

AfterAll { Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'GPU kit on the CPU' {
    It 'builds a self-contained runner without libtorch, under the size limit, and prints the size' {
        $buildExit | Should -Be 0 -Because $build
        $build | Should -Match 'kit: .* MiB in \d+ files \(limit 48 MiB\)'
        Join-Path $kit 'runner/GraLoRA.GpuKit' | Should -Exist
        Join-Path $kit 'runner/libLibTorchSharp.so' | Should -Exist
        Join-Path $kit 'runner/libcoreclr.so' | Should -Exist          # self-contained: no .NET needed on the GPU machine
        @(Get-ChildItem $kit -Recurse -Filter 'libtorch_cpu.so') | Should -HaveCount 0
    }

    It 'runs every stage and exits 0' {
        $runExit | Should -Be 0 -Because $output
        $output | Should -Match '== summary'
    }

    It 'loads libtorch from GRALORA_LIBTORCH only' {
        $probe = $results['probe']
        $probe.LibTorchSource | Should -Be 'GRALORA_LIBTORCH'
        $probe.LibTorchDirectory | Should -Be $layout
        $probe.SelfTestPassed | Should -BeTrue
        @($probe.Mapped | Where-Object { $_ -match '/lib(torch_cpu|c10)\.so$' }) | Sort-Object | Should -Be @("$layout/libc10.so", "$layout/libtorch_cpu.so")
    }

    It 'compares GraLoRA and LoRA layers in float32 and bfloat16' {
        $rows = $results['compare'].Rows
        $rows | Should -HaveCount 8
        ($rows | Where-Object DType -eq 'float32' | ForEach-Object { $_.Y, $_.Dx, $_.DA, $_.DB } | Measure-Object -Maximum).Maximum | Should -BeLessThan 1e-5
        ($rows | Where-Object DType -eq 'bfloat16' | ForEach-Object { $_.Y, $_.Dx, $_.DA, $_.DB } | Measure-Object -Maximum).Maximum | Should -BeLessThan 3e-2
    }

    It 'times training steps for LoRA and GraLoRA at r=32/k=2 and r=128/k=4 with float32 adapters' {
        foreach ($name in 'net-lora-r32', 'net-gralora-r32', 'net-lora-r128', 'net-gralora-r128') {
            $r = $results[$name]
            $r | Should -Not -BeNullOrEmpty -Because "$name ran"
            $r.TokensPerSecond | Should -BeGreaterThan 0
            [double]::IsFinite($r.LastLoss) | Should -BeTrue
            $r.AdapterDType | Should -Be 'Float32'
        }
        $results['net-gralora-r128'].K | Should -Be 4
        $results['net-lora-r32'].AdapterParameters | Should -Be $results['net-gralora-r32'].AdapterParameters
        $output | Should -Match 'r128 k=4 +GraLoRA\.NET'
    }

    It 'reports the PEFT comparison as skipped when peft is not importable, else runs it' {
        if ($pythonHasPeft) {
            $results['peft-gralora-r32'].TokensPerSecond | Should -BeGreaterThan 0
        }
        else {
            $results['peft'].Available | Should -BeFalse
            $output | Should -Match "PEFT comparison skipped: python 'peft'/'transformers' not importable"
        }
    }
}
