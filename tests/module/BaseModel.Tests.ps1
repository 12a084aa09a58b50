BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-pester-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:folder = New-BaseModel (Join-Path $work 'tiny') -Architecture qwen2 -Seed 3
    $script:model = $folder | Import-BaseModel
}

AfterAll {
    if ($model) { $model.Dispose() }
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'New-BaseModel' {
    It 'writes a Hugging Face folder with weights, configs and a tokenizer' {
        $folder | Should -BeOfType ([IO.DirectoryInfo])
        foreach ($f in 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json') {
            Join-Path $folder.FullName $f | Should -Exist
        }
        (Get-Content (Join-Path $folder.FullName 'config.json') -Raw | ConvertFrom-Json).model_type | Should -Be 'qwen2'
    }

    It 'shards the weights when asked' {
        $sharded = New-BaseModel (Join-Path $work 'sharded') -MaxShardSize 40000
        (Get-ChildItem $sharded.FullName -Filter 'model-*-of-*.safetensors').Count | Should -BeGreaterThan 1
        Join-Path $sharded.FullName 'model.safetensors.index.json' | Should -Exist
    }

    It 'refuses a folder that is not empty, by id' {
        { New-BaseModel $folder.FullName } | Should -Throw -ErrorId 'OutputExists,*'
    }

    It 'does nothing under -WhatIf' {
        New-BaseModel (Join-Path $work 'whatif') -WhatIf
        Join-Path $work 'whatif' | Should -Not -Exist
    }

    It 'offers the <_> family, which imports and runs' -ForEach 'gemma2', 'gemma3_text', 'phi3' {
        $family = Import-BaseModel (New-BaseModel (Join-Path $work "family-$_") -Architecture $_ -Seed 5).FullName
        try {
            $family.Architecture | Should -Be $_
            $out = Invoke-BaseModel -Model $family -InputIds @(, @(1, 2, 3))
            try { $out.Shape | Should -Be @(1, 3, 261) } finally { $out.Dispose() }
        }
        finally { $family.Dispose() }
    }
}

Describe 'Import-BaseModel config audit' {
    It 'refuses a config field it does not implement, naming field and value, by id' {
        $copy = Join-Path $work 'dropout'
        Copy-Item $folder.FullName $copy -Recurse
        $config = Get-Content (Join-Path $copy 'config.json') -Raw | ConvertFrom-Json
        $config | Add-Member -NotePropertyName attention_dropout -NotePropertyValue 0.1 -Force
        $config | ConvertTo-Json -Depth 10 | Set-Content (Join-Path $copy 'config.json')
        { Import-BaseModel $copy } | Should -Throw -ErrorId 'UnsupportedConfig,*'
        { Import-BaseModel $copy } | Should -Throw "*'attention_dropout' is 0.1*"
    }
}

Describe 'Import-BaseModel' {
    It 'loads architecture, dtype, device and tokenizer' {
        $model.GetType().FullName | Should -Be 'GraLoRA.Models.BaseModel'
        $model.Architecture | Should -Be 'qwen2'
        $model.DType | Should -Be 'float32'
        $model.Device | Should -Be 'cpu'
        $model.Tokenizer | Should -Not -BeNullOrEmpty
        $model.ParameterCount | Should -BeGreaterThan 0
    }

    It 'converts to -DType on load' {
        $bf16 = Import-BaseModel $folder.FullName -DType bfloat16
        try { $bf16.DType | Should -Be 'bfloat16' } finally { $bf16.Dispose() }
    }

    It 'resolves relative paths against the current location' {
        Push-Location $work
        try {
            $relative = Import-BaseModel ./tiny
            try { $relative.Path | Should -Be $folder.FullName } finally { $relative.Dispose() }
        }
        finally { Pop-Location }
    }

    It 'names a missing folder in a terminating error with a stable id' {
        { Import-BaseModel (Join-Path $work 'nope') } | Should -Throw -ErrorId 'ModelFolderNotFound,*'
    }

    It 'rejects an unknown dtype before loading' {
        { Import-BaseModel $folder.FullName -DType int8 } | Should -Throw -ErrorId 'ParameterArgumentValidationError,*'
    }
}

Describe 'Invoke-BaseModel' {
    It 'returns logits shaped batch x length x vocab' {
        $out = Invoke-BaseModel -Model $model -InputIds @(@(1, 2, 3), @(4, 5, 6))
        try {
            $out.Shape | Should -Be @(2, 3, 261)
            $out.Logits.Count | Should -Be 2
            $out.Logits[1][2].Count | Should -Be 261
        }
        finally { $out.Dispose() }
    }

    It 'ignores what padding hides: a left-padded row equals the unpadded one' {
        $plain = Invoke-BaseModel -Model $model -InputIds @(, @(7, 8, 9))
        $padded = Invoke-BaseModel -Model $model -InputIds @(, @(0, 7, 8, 9)) -AttentionMask @(, @(0, 1, 1, 1)) -PositionIds @(, @(1, 0, 1, 2))
        try {
            $a = $plain.Logits[0][2]; $b = $padded.Logits[0][3]
            $diff = 0.0; for ($i = 0; $i -lt $a.Count; $i++) { $diff = [Math]::Max($diff, [Math]::Abs($a[$i] - $b[$i])) }
            $diff | Should -BeLessThan 1e-4
        }
        finally { $plain.Dispose(); $padded.Dispose() }
    }

    It 'writes logits and hidden states to a safetensors file' {
        $file = Invoke-BaseModel -Model $model -InputIds @(, @(1, 2)) -HiddenStates -OutFile (Join-Path $work 'out.safetensors')
        $file | Should -BeOfType ([IO.FileInfo])
        # safetensors: 8-byte little-endian header length, then the JSON header
        $bytes = [IO.File]::ReadAllBytes($file.FullName)
        $header = [Text.Encoding]::UTF8.GetString($bytes, 8, [BitConverter]::ToInt64($bytes, 0)) | ConvertFrom-Json -AsHashtable
        $header['logits'].shape | Should -Be @(1, 2, 261)
        $header.ContainsKey('hidden_states.2') | Should -BeTrue
    }

    It 'names ragged input' {
        { Invoke-BaseModel -Model $model -InputIds @(@(1, 2), @(3)) } | Should -Throw -ErrorId 'RaggedInput,*'
    }
}

Describe 'Invoke-GraLoRAGeneration' {
    It 'generates deterministically when greedy' {
        $a = $model | Invoke-GraLoRAGeneration -Prompt 'Hello' -MaxNewTokens 8 -Greedy
        $b = $model | Invoke-GraLoRAGeneration -Prompt 'Hello' -MaxNewTokens 8 -Greedy
        $a.GetType().FullName | Should -Be 'GraLoRA.Models.GenerationResult'
        $a.Tokens | Should -Be $b.Tokens
        $a.Tokens.Count | Should -BeLessOrEqual 8
        $a.PromptTokens[0] | Should -Be 256   # BOS added by the tokenizer
    }

    It 'returns one result per prompt' {
        $results = Invoke-GraLoRAGeneration -Model $model -Prompt 'a', 'longer prompt' -MaxNewTokens 4 -Greedy
        $results.Count | Should -Be 2
        $results[1].Prompt | Should -Be 'longer prompt'
    }

    It 'applies the chat template to -Messages' {
        $r = Invoke-GraLoRAGeneration -Model $model -Messages @{ role = 'user'; content = 'Hi' } -MaxNewTokens 3 -Greedy
        $r.Prompt | Should -Be "<|begin_of_text|><|im_start|>user`nHi<|im_end|>`n<|im_start|>assistant`n"
    }

    It 'reproduces samples with -Seed' {
        $a = Invoke-GraLoRAGeneration -Model $model -Prompt 'x' -MaxNewTokens 12 -Temperature 1.5 -Seed 5
        $b = Invoke-GraLoRAGeneration -Model $model -Prompt 'x' -MaxNewTokens 12 -Temperature 1.5 -Seed 5
        $a.Tokens | Should -Be $b.Tokens
    }

    It 'names an invalid option' {
        { Invoke-GraLoRAGeneration -Model $model -Prompt 'x' -TopP 2 } | Should -Throw -ErrorId 'InvalidGenerationOption,*'
    }

    It 'names a chat message without a role' {
        { Invoke-GraLoRAGeneration -Model $model -Messages @{ content = 'Hi' } } | Should -Throw -ErrorId 'InvalidChatMessage,*'
    }
}
