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
        # The lab driver at the small scale with tiny counts (the rank part's 4096×14336 spectra take minutes here).
        $env:OUT = Join-Path $work 'lab'
        $env:LAB_SCALE = 'small'; $env:LAB_PARTS = 'expressiveness teacher localisation'; $env:LAB_ARGS = '--steps 2 --ranks 4,8 --seeds 1 --batches 1'
        $script:labOutput = (& bash (Join-Path $kit 'run-lab.sh') 2>&1 | Out-String)
        $script:labExit = $LASTEXITCODE
        # A folder whose libtorch lacks libtorch_cpu.so: the runner cannot load, the PEFT side still runs, the run fails.
        $broken = New-Item -ItemType Directory -Path (Join-Path $work 'broken/site-packages/torch/lib') -Force
        Copy-Item (Join-Path $layout 'libc10.so') $broken.FullName
        $env:GRALORA_LIBTORCH = $broken.FullName; $env:OUT = Join-Path $work 'broken-out'
        $script:brokenOutput = (& bash (Join-Path $kit 'run-gpu.sh') 2>&1 | Out-String)
        $script:brokenExit = $LASTEXITCODE
        $script:brokenResults = @(Get-Content (Join-Path $work 'broken-out/results.jsonl') | ForEach-Object { $_ | ConvertFrom-Json })
    }
    finally {
        foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) }
        foreach ($k in 'LAB_SCALE', 'LAB_PARTS', 'LAB_ARGS') { [Environment]::SetEnvironmentVariable($k, $null) }
    }
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

    It 'lists the libtorch functions the glue imports that the installation lacks: none for the matching natives' {
        $output -match 'glue imports (\d+) libtorch symbols; 0 not exported here' | Should -BeTrue -Because $output
        [int]$Matches[1] | Should -BeGreaterThan 1000
    }

    It 'still runs the PEFT side and fails the run when the runner cannot load libtorch, listing the missing functions' {
        $brokenExit | Should -Not -Be 0 -Because $brokenOutput
        $brokenOutput | Should -Match 'glue imports \d+ libtorch symbols; ([1-9]\d*) not exported here:'
        $brokenOutput | Should -Match 'running the PEFT side only'
        $brokenOutput | Should -Match 'FAILED: probe'
        @($brokenResults | Where-Object { $_.Name -like 'net-*' -or $_.Name -eq 'compare' }) | Should -HaveCount 0
        @($brokenResults | Where-Object Name -eq 'peft') | Should -HaveCount 1
    }

    It 'runs the lab parts through run-lab.sh and packs their charts' {
        $labExit | Should -Be 0 -Because $labOutput
        foreach ($heading in '## (c) Fitting a teacher layer', '## (d) Distilling a teacher decoder', '## (b) Deviation of the implied update') {
            $labOutput | Should -Match ([regex]::Escape($heading))
        }
        # (d): one row per rank; LoRA and GraLoRA have the same adapter parameter count (one number, not "a / b").
        $rows = @($labOutput -split "`n" | Where-Object { $_ -match '^\| (4|8) \| [\d,]+ \| (\d\.\d+) \| (\d\.\d+) \| 2 \|' })
        $rows | Should -HaveCount 2
        $charts = (& tar -tf (Join-Path $work 'lab/lab-charts.tar')) -join ' '
        foreach ($png in 'teacher-model.png', 'expressiveness-dense.png', 'localisation-far-error.png', 'localisation-r8/') { $charts | Should -Match ([regex]::Escape($png)) }
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

    It 'runs the NCCL stage, which on the CPU checks the libnccl loader and reports itself skipped with the reason' {
        $output | Should -Match '== 6\. NCCL: a one-rank communicator on the device'
        $nccl = $results['nccl']
        $nccl | Should -Not -BeNullOrEmpty -Because 'the stage ran'
        $nccl.Skipped | Should -BeTrue
        $nccl.Reason | Should -Be 'needs a CUDA device (run on cpu)'
        # This machine has no CUDA PyTorch, so no libnccl: the loader's error names what it tried and the fix.
        $nccl.Loader | Should -Match '^NcclNotFound: NCCL \(libnccl\.so\.2\) could not be loaded.*GRALORA_NCCL'
        $output | Should -Match 'NCCL: skipped, needs a CUDA device'
    }

    It 'times the same r=32 runs the way the code before issue 21 computed them, with the same losses' {
        foreach ($method in 'lora', 'gralora') {
            $now = $results["net-$method-r32"]
            $before = $results["net-$method-r32-baseline"]
            $before | Should -Not -BeNullOrEmpty -Because "net-$method-r32-baseline ran"
            $before.Baseline | Should -BeTrue
            $now.Baseline | Should -BeFalse
            $before.TokensPerSecond | Should -BeGreaterThan 0
            # Same seeds, same model: the explicit mask and the float32 logits copy compute the same loss as the fast paths.
            [math]::Abs($now.LastLoss - $before.LastLoss) / [math]::Abs($before.LastLoss) | Should -BeLessThan 1e-5
        }
        $output | Should -Match 'r32 k=2 +GraLoRA\.NET before'
    }

    It 'times the GraLoRA and LoRA layers and their operations' {
        $ops = $results['layerops']
        $ops | Should -Not -BeNullOrEmpty
        @($ops.Configs) | Should -HaveCount 2
        foreach ($config in $ops.Configs) {
            foreach ($name in 'layer: LoRA, forward + backward', 'layer: GraLoRA, forward + backward', 'layer: GraLoRA before issue 21, forward + backward',
                              'launch: GraLoRA, 64 tokens, forward + backward', 'fwd: GraLoRA regroup copy [k, M, r]', 'bwd: GraLoRA dx blocks to [M, in] copy') {
                $config.Ops.$name | Should -BeGreaterThan 0 -Because "$name is timed for r=$($config.Rank)"
            }
        }
        $output | Should -Match 'layer r=128 k=4 on cpu: LoRA [\d.]+ ms, GraLoRA [\d.]+ ms forward \+ backward \([\d.]+x\), GraLoRA before issue 21 [\d.]+ ms'
    }

    It 'checks the CUDA allocator-statistics reader on the CPU allocator, and reports the statistics unavailable without CUDA' {
        $memory = $results['cudamem']
        $memory.Available | Should -BeFalse
        $memory.Reason | Should -Be 'no CUDA device'
        # c10::Allocator has six virtual slots in libtorch 2.10 (two destructors, allocate, is_simple_data_ptr,
        # raw_deleter, copy_data: read by hand from libc10.so's vtable relocations with readelf -r), so
        # c10::DeviceAllocator's own functions start at slot 6.
        $memory.FirstDeviceAllocatorSlot | Should -Be 6
        $memory.CpuAllocatorType | Should -Be 'N3c1019DefaultCPUAllocatorE'
        $memory.CpuAllocatorIsAllocator | Should -BeTrue
        $memory.CpuAllocatorIsDeviceAllocator | Should -BeFalse
        $output | Should -Match 'libtorch allocator statistics: not available \(no CUDA device\)'
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
