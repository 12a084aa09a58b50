# The paper's baselines through the cmdlets: DoRA, MoRA, RaSA and Full added, listed, trained, saved and imported;
# adapters saved by each method's own code (shared/fixtures/baselines) imported with their logits; Compare-GraLoRAMethod.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:fixtures = if ($env:GRALORA_FIXTURES) { $env:GRALORA_FIXTURES } else { Join-Path (Split-Path $root) 'shared/fixtures' }
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-baselines-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:tinyFolder = New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 11
    $script:tinyIds = [int[][]] @(@(1, 2, 3, 4, 5), @(9, 8, 7, 6, 5))
    $script:data = Join-Path $root 'examples/data/tiny-alpaca.jsonl'

    # The first row of a reference's plain.input_ids and its logits (F32), read from the safetensors file directly.
    function Read-Reference([string] $Path) {
        $bytes = [IO.File]::ReadAllBytes($Path)
        $length = [BitConverter]::ToInt64($bytes, 0)
        $header = [Text.Encoding]::UTF8.GetString($bytes, 8, $length) | ConvertFrom-Json -AsHashtable
        $read = {
            param($name, [type] $type, [int] $size)
            $entry = $header[$name]
            $count = ($entry.data_offsets[1] - $entry.data_offsets[0]) / $size
            $a = [Array]::CreateInstance($type, $count)
            [Buffer]::BlockCopy($bytes, 8 + $length + $entry.data_offsets[0], $a, 0, $count * $size)
            , $a
        }
        $ids = & $read 'plain.input_ids' ([long]) 8
        $cols = $header['plain.input_ids'].shape[1]
        $rows = $header['plain.input_ids'].shape[0]
        $idRows = [int[][]]::new($rows)
        for ($r = 0; $r -lt $rows; $r++) { $idRows[$r] = [int[]] $ids[($r * $cols)..(($r + 1) * $cols - 1)] }
        @{ Ids = $idRows; Logits = [float[]] (& $read 'plain.logits' ([float]) 4) }
    }
}

AfterAll { Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'Add-GraLoRAAdapter with a baseline method' {
    BeforeEach { $m = Import-BaseModel $tinyFolder.FullName }
    AfterEach { $m.Dispose() }

    It '-Method <Method> is listed as <Shown> with <Parameters> trainable parameters and starts as a no-op' -ForEach @(
        # q_proj 64→64 and v_proj 64→32 in two layers; the counts by each method's formula:
        @{ Method = 'DoRA'; Extra = @{ Rank = 4 }; Shown = 'DoRA'; Parameters = 2 * (4 * 128 + 64 + 4 * 96 + 32) }
        @{ Method = 'MoRA'; Extra = @{ Rank = 4; MoraType = 6 }; Shown = 'MoRA type 6'; Parameters = 2 * (22 * 22 + 20 * 20) }   # r̂ = ⌊√(128·4)+½⌋ = 23 → 22 (even); ⌊√(96·4)+½⌋ = 20
        @{ Method = 'RaSA'; Extra = @{ Rank = 4; RasaK = 1 }; Shown = 'RaSA'; Parameters = 2 * (3 * 128 + 5 + 3 * 96 + 5) + 2 * 128 + 2 * 96 }   # shared k·L = 2 ranks per type, once
        @{ Method = 'Full'; Extra = @{}; Shown = 'Full'; Parameters = 2 * (64 * 64 + 32 * 64) }
    ) {
        $base = Get-Logits $m $tinyIds
        $m | Add-GraLoRAAdapter -Method $Method @Extra -TargetModule q_proj, v_proj -InformationAction Ignore | Out-Null
        $info = Get-GraLoRAAdapter -Model $m
        "$($info.Method)" | Should -Be $Method
        $info.Parameters | Should -Be $Parameters
        ($info | Format-Table | Out-String) | Should -Match ([regex]::Escape($Shown))
        Get-RelativeError (Get-Logits $m $tinyIds) $base | Should -BeLessThan 1e-6
    }

    It 'refuses a setting of another method by id (<ErrorId>) and leaves the model alone' -ForEach @(
        @{ Splat = @{ Method = 'LoRA'; MoraType = 6 }; ErrorId = 'NotForLoRA' }
        @{ Splat = @{ Method = 'MoRA'; Alpha = 16 }; ErrorId = 'NotForMoRA' }
        @{ Splat = @{ Method = 'GraLoRA'; RasaK = 2 }; ErrorId = 'NotForGraLoRA' }
        @{ Splat = @{ Method = 'Full'; Rank = 8 }; ErrorId = 'NotForFull' }
        @{ Splat = @{ Method = 'RaSA'; Rank = 4; RasaK = 5 }; ErrorId = 'InvalidRasaK' }
    ) {
        { $m | Add-GraLoRAAdapter @Splat -InformationAction Ignore } | Should -Throw -ErrorId "$ErrorId,*"
        @(Get-GraLoRAAdapter -Model $m) | Should -HaveCount 0
    }

    It 'Get-GraLoRAAdapter -Detailed gives each method''s ΔW spectrum within its bound' {
        $m | Add-GraLoRAAdapter -Method MoRA -Rank 4 -MoraType 1 -TargetModule q_proj -RandomInit -InformationAction Ignore | Out-Null
        $spectra = @(Get-GraLoRAAdapter -Model $m -Detailed)
        $spectra | Should -HaveCount 2
        foreach ($s in $spectra) {
            "$($s.Method)" | Should -Be 'MoRA'
            $s.MaxRank | Should -Be 23                        # type 1: every output repeats the one r̂-vector, so rank ≤ r̂ = 23
            $s.NumericalRank | Should -Be 23
        }
    }
}

Describe 'Adapters saved by each method''s own code' {
    It 'Import-GraLoRAAdapter reads <Folder> as <Method> and reproduces its logits' -ForEach @(
        @{ Folder = 'dora_llama_r8'; Method = 'DoRA' }
        @{ Folder = 'mora_llama_r8_t6'; Method = 'MoRA' }
        @{ Folder = 'rasa_llama_r16_k2'; Method = 'RaSA' }
    ) {
        $folder = Join-Path $fixtures "baselines/$Folder"
        $reference = Read-Reference (Join-Path $folder 'reference.safetensors')
        $m = Import-BaseModel (Join-Path $fixtures 'models/llama')
        try {
            $m | Import-GraLoRAAdapter $folder | Out-Null
            "$((Get-GraLoRAAdapter -Model $m).Method)" | Should -Be $Method
            Get-RelativeError (Get-Logits $m $reference.Ids) $reference.Logits | Should -BeLessThan 1e-4
            $saved = Join-Path $work "resaved-$Folder"
            $m | Save-GraLoRAAdapter -Path $saved | Out-Null
            (Get-Content (Join-Path $saved 'adapter_config.json') -Raw | ConvertFrom-Json).peft_type | Should -Be (Get-Content (Join-Path $folder 'adapter_config.json') -Raw | ConvertFrom-Json).peft_type
        }
        finally { $m.Dispose() }
    }

    It 'ConvertTo-LoRAAdapter rewrites <Folder> as a LoRA with its logits' -ForEach @(
        @{ Folder = 'mora_llama_r8_t6'; Splat = @{} }
        @{ Folder = 'rasa_llama_r16_k2'; Splat = @{} }
        @{ Folder = 'dora_llama_r8'; Splat = @{ Energy = 1 } }
    ) {
        $folder = Join-Path $fixtures "baselines/$Folder"
        $reference = Read-Reference (Join-Path $folder 'reference.safetensors')
        $m = Import-BaseModel (Join-Path $fixtures 'models/llama')
        $fresh = Import-BaseModel (Join-Path $fixtures 'models/llama')
        try {
            $m | Import-GraLoRAAdapter $folder | Out-Null
            $result = $m | ConvertTo-LoRAAdapter (Join-Path $work "lora-$Folder") @Splat
            $result.MaxRelativeError | Should -BeLessThan 1e-5
            $fresh | Import-GraLoRAAdapter $result.Path | Out-Null
            "$((Get-GraLoRAAdapter -Model $fresh).Method)" | Should -Be 'LoRA'
            Get-RelativeError (Get-Logits $fresh $reference.Ids) $reference.Logits | Should -BeLessThan 1e-4
        }
        finally { $m.Dispose(); $fresh.Dispose() }
    }

    It 'ConvertTo-LoRAAdapter refuses DoRA''s full-rank ΔW without -Rank or -Energy (FullRankDelta)' {
        $m = Import-BaseModel (Join-Path $fixtures 'models/llama')
        try {
            $m | Import-GraLoRAAdapter (Join-Path $fixtures 'baselines/dora_llama_r8') | Out-Null
            { $m | ConvertTo-LoRAAdapter (Join-Path $work 'dora-exact') -ErrorAction Stop } | Should -Throw -ErrorId 'FullRankDelta,*'
            Test-Path (Join-Path $work 'dora-exact') | Should -BeFalse
        }
        finally { $m.Dispose() }
    }
}

Describe 'Full fine-tuning' {
    It 'trains, saves a whole checkpoint that Import-BaseModel loads, and Import-GraLoRAAdapter refuses it' {
        $m = Import-BaseModel $tinyFolder.FullName
        try {
            $m | Add-GraLoRAAdapter -Method Full -TargetModule q_proj -InformationAction Ignore | Out-Null
            $null = Start-GraLoRATraining -Model $m -Dataset $data -MaxSteps 2 -BatchSize 4 -LearningRate 1e-3 -InformationAction Ignore -ProgressAction SilentlyContinue
            $trained = Get-Logits $m $tinyIds
            $folder = Join-Path $work 'full'
            $m | Save-GraLoRAAdapter -Path $folder | Out-Null
            Join-Path $folder 'config.json' | Should -Exist
            Join-Path $folder 'adapter_config.json' | Should -Not -Exist
            $checkpoint = Import-BaseModel $folder
            try { Get-RelativeError (Get-Logits $checkpoint $tinyIds) $trained | Should -BeLessThan 1e-5 } finally { $checkpoint.Dispose() }
            $fresh = Import-BaseModel $tinyFolder.FullName
            try { { $fresh | Import-GraLoRAAdapter $folder } | Should -Throw -ErrorId 'NotAnAdapter,*' } finally { $fresh.Dispose() }
        }
        finally { $m.Dispose() }
    }
}

Describe 'Compare-GraLoRAMethod' {
    It 'trains each method at equal parameters, one row per method with LoRA first, and writes the loss curves' {
        $m = Import-BaseModel $tinyFolder.FullName
        try {
            $chart = Join-Path $work 'methods.png'
            $rows = @($m | Compare-GraLoRAMethod $data -Method GraLoRA, MoRA -Rank 8 -MaxSteps 2 -BatchSize 4 -TargetModule q_proj, v_proj -ChartPath $chart -ProgressAction SilentlyContinue)
            $rows | Should -HaveCount 3
            $rows[0].GetType().FullName | Should -Be 'GraLoRA.Training.MethodComparisonRow'
            ($rows | ForEach-Object { "$($_.Method)" }) | Should -Be @('LoRA', 'GraLoRA', 'MoRA')
            $rows[0].TimeVersusLoRA | Should -Be 1
            $rows[1].TrainableParameters | Should -Be $rows[0].TrainableParameters
            foreach ($r in $rows) { $r.FinalValidationLoss | Should -BeGreaterThan 0; $r.StepSeconds | Should -BeGreaterThan 0 }
            (Get-Item $chart).Length | Should -BeGreaterThan 1000
            ($rows | Format-Table | Out-String) | Should -Match 'MoRA r 8 type 6'
            @(Get-GraLoRAAdapter -Model $m) | Should -HaveCount 0
        }
        finally { $m.Dispose() }
    }
}
