BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:fixtures = if ($env:GRALORA_FIXTURES) { $env:GRALORA_FIXTURES } else { Join-Path (Split-Path $root) 'shared/fixtures' }
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-deploy-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:llamaFolder = Join-Path $fixtures 'models/llama'
    $script:adapterFolder = Join-Path $fixtures 'gralora/llama_r8_k2'
    $script:ids = , @(3, 17, 99, 4, 250, 12, 60)
    $script:gralora = Import-BaseModel $llamaFolder | Import-GraLoRAAdapter $adapterFolder
    $script:graloraLogits = Get-Logits $gralora $ids
    $script:tinyFolder = New-BaseModel (Join-Path $work 'tiny') -Architecture qwen3 -Seed 4
}

AfterAll {
    if ($gralora) { $gralora.Dispose() }
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'ConvertTo-LoRAAdapter' {
    It 'writes an exact PEFT LoRA adapter (rank k·r) that loads back as LoRA with the GraLoRA logits' {
        $result = $gralora | ConvertTo-LoRAAdapter (Join-Path $work 'exact')
        $result.GetType().FullName | Should -Be 'GraLoRA.Adapters.LoraConversionResult'
        $result.Rank | Should -Be 16
        $result.MaxRelativeError | Should -BeLessThan 1e-6
        $result.Layers.Count | Should -Be 6
        $config = Get-Content (Join-Path $result.Path 'adapter_config.json') -Raw | ConvertFrom-Json
        $config.peft_type | Should -Be 'LORA'
        $config.lora_alpha | Should -Be 16
        $lora = Import-BaseModel $llamaFolder | Import-GraLoRAAdapter $result.Path
        try {
            (Get-GraLoRAAdapter -Model $lora).Method | Should -Be 'LoRA'
            Get-RelativeError (Get-Logits $lora $ids) $graloraLogits | Should -BeLessThan 1e-4
        }
        finally { $lora.Dispose() }
    }

    It '-Energy truncates per layer, writes rank_pattern/alpha_pattern and reports each layer' {
        $result = $gralora | ConvertTo-LoRAAdapter (Join-Path $work 'energy') -Energy 0.9
        @($result.Layers.Rank | Select-Object -Unique).Count | Should -BeGreaterThan 1
        $result.Layers | ForEach-Object { $_.RelativeError | Should -BeLessOrEqual ([Math]::Sqrt(0.1) + 1e-9) }
        $config = Get-Content (Join-Path $result.Path 'adapter_config.json') -Raw | ConvertFrom-Json -AsHashtable
        $config.rank_pattern.Count | Should -BeGreaterThan 0
        foreach ($key in $config.rank_pattern.Keys) { $config.alpha_pattern[$key] | Should -Be $config.rank_pattern[$key] }
        ($result | Out-String) | Should -Match 'varies'
    }

    It '-Rank n keeps n directions in every layer, with errors that shrink as n grows' {
        $low = $gralora | ConvertTo-LoRAAdapter (Join-Path $work 'r4') -Rank 4
        $high = $gralora | ConvertTo-LoRAAdapter (Join-Path $work 'r12') -Rank 12
        $low.Layers.Rank | Should -Be (@(4) * 6)
        for ($i = 0; $i -lt 6; $i++) { $high.Layers[$i].RelativeError | Should -BeLessThan $low.Layers[$i].RelativeError }
    }

    It 'refuses <Case> by id' -ForEach @(
        @{ Case = 'a rank above the exact rank'; Arguments = @{ Rank = 17 }; Id = 'RankAboveExact' }
        @{ Case = 'a negative rank'; Arguments = @{ Rank = -2 }; Id = 'InvalidRank' }
        @{ Case = 'energy 0'; Arguments = @{ Energy = 0 }; Id = 'InvalidEnergy' }
        @{ Case = 'energy above 1'; Arguments = @{ Energy = 1.01 }; Id = 'InvalidEnergy' }
    ) {
        { $gralora | ConvertTo-LoRAAdapter (Join-Path $work 'bad') @Arguments } | Should -Throw -ErrorId "$Id,*"
        Join-Path $work 'bad' | Should -Not -Exist
    }

    It 'replaces an existing folder only with -Force, and writes nothing under -WhatIf' {
        $target = Join-Path $work 'exact'
        { $gralora | ConvertTo-LoRAAdapter $target } | Should -Throw -ErrorId 'OutputExists,*'
        ($gralora | ConvertTo-LoRAAdapter $target -Rank 8 -Force).Rank | Should -Be 8
        $gralora | ConvertTo-LoRAAdapter (Join-Path $work 'whatif') -WhatIf
        Join-Path $work 'whatif' | Should -Not -Exist
    }

    It 'writes a GGUF LoRA adapter with -Format gguf' {
        $result = $gralora | ConvertTo-LoRAAdapter (Join-Path $work 'adapter.gguf') -Format gguf
        $result.Format | Should -Be 'gguf'
        [Text.Encoding]::ASCII.GetString([IO.File]::ReadAllBytes($result.Path), 0, 4) | Should -Be 'GGUF'
    }
}

Describe 'Export-BaseModel -Format gguf' {
    It 'writes one GGUF file, smaller in q8_0' {
        $m = Import-BaseModel $tinyFolder.FullName
        try {
            $f32 = $m | Export-BaseModel (Join-Path $work 'tiny.gguf') -Format gguf
            $q8 = $m | Export-BaseModel (Join-Path $work 'tiny-q8.gguf') -Format gguf -DType q8_0
            $f32 | Should -BeOfType ([IO.FileInfo])
            [Text.Encoding]::ASCII.GetString([IO.File]::ReadAllBytes($f32.FullName), 0, 4) | Should -Be 'GGUF'
            $q8.Length | Should -BeLessThan ($f32.Length / 2)
        }
        finally { $m.Dispose() }
    }

    It 'refuses <Case> by id' -ForEach @(
        @{ Case = 'q8_0 for a checkpoint folder'; Arguments = @{ DType = 'q8_0' }; Id = 'NotForSafetensors' }
        @{ Case = 'shards for a GGUF file'; Arguments = @{ Format = 'gguf'; MaxShardSize = 1000 }; Id = 'NotForGguf' }
    ) {
        $m = Import-BaseModel $tinyFolder.FullName
        try { { $m | Export-BaseModel (Join-Path $work 'refused') @Arguments } | Should -Throw -ErrorId "$Id,*" }
        finally { $m.Dispose() }
        Join-Path $work 'refused' | Should -Not -Exist
    }

    It 'names an architecture llama.cpp is not mapped for' {
        $bert = Import-BaseModel (Join-Path $fixtures 'models/bert')
        try {
            { $bert | Export-BaseModel (Join-Path $work 'bert.gguf') -Format gguf } | Should -Throw -ErrorId 'GgufUnsupportedArchitecture,*'
            { $bert | Export-BaseModel (Join-Path $work 'bert.gguf') -Format gguf } | Should -Throw '*bert*'
        }
        finally { $bert.Dispose() }
    }
}
