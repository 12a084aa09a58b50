BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:fixtures = if ($env:GRALORA_FIXTURES) { $env:GRALORA_FIXTURES } else { Join-Path (Split-Path $root) 'shared/fixtures' }
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-adapters-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null

    # Reads a safetensors file: 8-byte little-endian header length, the JSON header, then raw little-endian data.
    # Returns name -> @{ Shape; DType; Data } (Data: float[] for F32, long[] for I64).
    function Read-Safetensors([string] $Path) {
        $bytes = [IO.File]::ReadAllBytes($Path)
        $length = [BitConverter]::ToInt64($bytes, 0)
        $header = [Text.Encoding]::UTF8.GetString($bytes, 8, $length) | ConvertFrom-Json -AsHashtable
        $result = @{}
        foreach ($name in $header.Keys) {
            if ($name -eq '__metadata__') { continue }
            $entry = $header[$name]
            $start = 8 + $length + $entry.data_offsets[0]
            $size = $entry.data_offsets[1] - $entry.data_offsets[0]
            $data = switch ($entry.dtype) {
                'F32' { $a = [float[]]::new($size / 4); [Buffer]::BlockCopy($bytes, $start, $a, 0, $size); $a }
                'I64' { $a = [long[]]::new($size / 8); [Buffer]::BlockCopy($bytes, $start, $a, 0, $size); $a }
                default { $null }
            }
            $result[$name] = @{ Shape = [long[]] $entry.shape; DType = $entry.dtype; Data = $data }
        }
        $result
    }

    # The keys of a safetensors file, without reading its data.
    function Get-SafetensorsHeader([string] $Path) {
        $bytes = [IO.File]::ReadAllBytes($Path)
        $header = [Text.Encoding]::UTF8.GetString($bytes, 8, [BitConverter]::ToInt64($bytes, 0)) | ConvertFrom-Json -AsHashtable
        $header.Remove('__metadata__')
        $header
    }

    # Token ids [batch][length] from a flat I64 tensor.
    function ConvertTo-Ids($Tensor) {
        $rows = $Tensor.Shape[0]; $cols = $Tensor.Shape[1]
        $ids = [int[][]]::new($rows)
        for ($r = 0; $r -lt $rows; $r++) { $ids[$r] = [int[]] $Tensor.Data[($r * $cols)..(($r + 1) * $cols - 1)] }
        , $ids
    }

    # A tiny Llama with a tokenizer; same module shapes as the fixture model (hidden 64, intermediate 128, 4 heads, 2 KV heads).
    $script:tinyFolder = New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 11
    $script:tinyIds = [int[][]] @(@(1, 2, 3, 4, 5), @(9, 8, 7, 6, 5))
    $tiny = Import-BaseModel $tinyFolder.FullName
    try { $script:tinyBase = Get-Logits $tiny $tinyIds } finally { $tiny.Dispose() }

    # PEFT's GraLoRA adapter on the fixture Llama, and what PEFT computed with it.
    $script:llamaFolder = Join-Path $fixtures 'models/llama'
    $script:adapterFolder = Join-Path $fixtures 'gralora/llama_r8_k2'
    $reference = Read-Safetensors (Join-Path $adapterFolder 'reference.safetensors')
    $script:llamaIds = ConvertTo-Ids $reference['plain.input_ids']
    $script:peftLogits = $reference['plain.logits'].Data
    $script:peftMergedLogits = $reference['plain.logits_merged'].Data
    $script:llamaBaseLogits = (Read-Safetensors (Join-Path $llamaFolder 'reference.safetensors'))['plain.logits'].Data
}

AfterAll {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Add-GraLoRAAdapter' {
    BeforeEach { $m = Import-BaseModel $tinyFolder.FullName }
    AfterEach { $m.Dispose() }

    It 'starts as a no-op and lists the adapter with its r, k, targets and r·(in+out) parameters per module' {
        $m | Add-GraLoRAAdapter -Rank 16 -K 2 -TargetModule q_proj, v_proj 6>$null | Out-Null
        Get-RelativeError (Get-Logits $m $tinyIds) $tinyBase | Should -BeLessThan 1e-6
        $info = Get-GraLoRAAdapter -Model $m
        $info.GetType().FullName | Should -Be 'GraLoRA.Adapters.AdapterInfo'
        $info.Name | Should -Be 'default'
        "$($info.Method)" | Should -Be 'GraLoRA'
        $info.Rank | Should -Be 16
        $info.K | Should -Be 2
        $info.Active | Should -BeTrue
        $info.Merged | Should -BeFalse
        $info.Targets | Sort-Object | Should -Be @(
            'model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj',
            'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj')
        # q_proj 64→64, v_proj 64→32 (2 KV heads of 16), two layers
        $info.Parameters | Should -Be (2 * (16 * (64 + 64) + 16 * (64 + 32)))
    }

    It 'reports trainable and total parameters as PEFT does, on the information stream' {
        $records = @($m | Add-GraLoRAAdapter -Rank 8 -K 2 6>&1 | Where-Object { $_ -is [Management.Automation.InformationRecord] })
        $records.Count | Should -Be 1
        $records[0].Tags | Should -Contain 'GraLoRA'   # PSHOST too only in interactive sessions (Automation.Tests)
        $trainable = 2 * (8 * (64 + 64) + 8 * (64 + 32))
        $expected = 'trainable params: {0:N0} || all params: {1:N0} || trainable%: {2:F4}' -f $trainable, $m.ParameterCount, (100.0 * $trainable / $m.ParameterCount)
        $records[0].MessageData.Message | Should -Be $expected
    }

    It 'is silent with -InformationAction Ignore and outputs the model itself' {
        $out = @($m | Add-GraLoRAAdapter -InformationAction Ignore 6>&1)
        $out.Count | Should -Be 1
        [object]::ReferenceEquals($out[0], $m) | Should -BeTrue
    }

    It '-K Auto picks k <K> for r <Rank> (r/k² nearest 8) and says so' -ForEach @(
        @{ Rank = 16; K = 2 }, @{ Rank = 32; K = 2 }, @{ Rank = 64; K = 4 }
    ) {
        $info = $m | Add-GraLoRAAdapter -Rank $Rank -K Auto 6>&1 | Where-Object { $_ -is [Management.Automation.InformationRecord] }
        (Get-GraLoRAAdapter -Model $m).K | Should -Be $K
        ($info.MessageData.Message -join "`n") | Should -Match "r $Rank → k $K \(r/k² = "
    }

    It '-K Auto gives a -RankPattern module the k of its own rank (resolved in Core, kept when saved)' {
        $m | Add-GraLoRAAdapter -Rank 16 -K Auto -TargetModule q_proj, down_proj -RankPattern @{ down_proj = 64 } 6>$null | Out-Null
        $saved = Save-GraLoRAAdapter -Model $m (Join-Path $work 'auto-k-pattern')
        $header = Get-SafetensorsHeader (Join-Path $saved.FullName 'adapter_model.safetensors')
        $header['base_model.model.model.layers.0.self_attn.q_proj.gralora_A'].shape | Should -Be @(2, 32, 16)   # [k, in/k, r]: r 16 → k 2
        $header['base_model.model.model.layers.0.mlp.down_proj.gralora_A'].shape | Should -Be @(4, 32, 64)     # r 64 → k 4 (in 128)
        (Get-Content (Join-Path $saved.FullName 'adapter_config.json') | ConvertFrom-Json).k_pattern.down_proj | Should -Be 4
    }

    It 'all-linear adapts the 7 linear modules of every layer, never lm_head' {
        $m | Add-GraLoRAAdapter -Rank 8 -K 2 -TargetModule all-linear 6>$null | Out-Null
        $targets = (Get-GraLoRAAdapter -Model $m).Targets
        $targets.Count | Should -Be 14
        $targets | ForEach-Object { $_.Split('.')[-1] } | Sort-Object -Unique |
            Should -Be @('down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj')
        $targets | Where-Object { $_ -like '*lm_head*' } | Should -BeNullOrEmpty
    }

    It '-LayersToTransform 0 adapts layer 0 only' {
        $m | Add-GraLoRAAdapter -Rank 8 -K 2 -LayersToTransform 0 6>$null | Out-Null
        $targets = (Get-GraLoRAAdapter -Model $m).Targets
        $targets | Should -Be @('model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj')
    }

    It '-TargetRegex matches whole module names; -ExcludeModule drops some' {
        $m | Add-GraLoRAAdapter -Rank 8 -K 2 -TargetRegex 'model\.layers\.1\.mlp\..*' 6>$null | Out-Null
        (Get-GraLoRAAdapter -Model $m).Targets | Should -Be @('model.layers.1.mlp.gate_proj', 'model.layers.1.mlp.up_proj', 'model.layers.1.mlp.down_proj')
        $m | Add-GraLoRAAdapter -Name other -Rank 8 -K 2 -TargetModule all-linear -ExcludeModule mlp.gate_proj, mlp.up_proj, mlp.down_proj 6>$null | Out-Null
        (Get-GraLoRAAdapter -Model $m -Name other).Targets.Count | Should -Be 8
    }

    It '-RankPattern and -KPattern set r and k per module' {
        $m | Add-GraLoRAAdapter -Rank 8 -K 2 -RankPattern @{ 'v_proj' = 4 } -KPattern @{ 'q_proj' = 4 } 6>$null | Out-Null
        (Get-GraLoRAAdapter -Model $m).Parameters | Should -Be (2 * (8 * (64 + 64) + 4 * (64 + 32)))
        $saved = Save-GraLoRAAdapter -Model $m (Join-Path $work 'patterns')
        $header = Get-SafetensorsHeader (Join-Path $saved.FullName 'adapter_model.safetensors')
        $header['base_model.model.model.layers.0.self_attn.q_proj.gralora_A'].shape | Should -Be @(4, 16, 8)   # [k, in/k, r]
        $header['base_model.model.model.layers.0.self_attn.v_proj.gralora_A'].shape | Should -Be @(2, 32, 4)
    }

    It 'a -K that does not divide the layer fails by id and leaves the model unchanged' {
        $count = $m.ParameterCount
        { $m | Add-GraLoRAAdapter -Rank 6 -K 3 } | Should -Throw -ErrorId 'InFeaturesNotDivisibleByK,*'
        Get-GraLoRAAdapter -Model $m | Should -BeNullOrEmpty
        $m.ParameterCount | Should -Be $count
        # and the name is free again
        $m | Add-GraLoRAAdapter -Rank 8 -K 2 6>$null | Out-Null
        (Get-GraLoRAAdapter -Model $m).Name | Should -Be 'default'
    }

    It 'names a target that matches nothing (NoTargetModules)' {
        { $m | Add-GraLoRAAdapter -TargetModule nope_proj } | Should -Throw -ErrorId 'NoTargetModules,*'
        Get-GraLoRAAdapter -Model $m | Should -BeNullOrEmpty
    }

    It 'names a -K that is neither a number nor Auto (InvalidK)' {
        { $m | Add-GraLoRAAdapter -K many } | Should -Throw -ErrorId 'InvalidK,*'
    }

    It 'refuses a second adapter of the same name (AdapterExists)' {
        $m | Add-GraLoRAAdapter 6>$null | Out-Null
        { $m | Add-GraLoRAAdapter 6>$null } | Should -Throw -ErrorId 'AdapterExists,*'
    }

    It 'adds a LoRA adapter (r·(in+out) parameters); -K is GraLoRA only (NotForLoRA)' {
        { $m | Add-GraLoRAAdapter -Method LoRA -K 2 } | Should -Throw -ErrorId 'NotForLoRA,*'
        $m | Add-GraLoRAAdapter -Method LoRA -Rank 4 -UseRsLora -RandomInit 6>$null | Out-Null
        $info = Get-GraLoRAAdapter -Model $m
        "$($info.Method)" | Should -Be 'LoRA'
        $info.K | Should -BeNullOrEmpty
        $info.Alpha | Should -Be 8
        $info.Parameters | Should -Be (2 * (4 * (64 + 64) + 4 * (64 + 32)))
        Get-RelativeError (Get-Logits $m $tinyIds) $tinyBase | Should -BeGreaterThan 1e-4
    }

    It 'formats adapters as a table' {
        $m | Add-GraLoRAAdapter -Rank 16 -K 2 -TargetModule all-linear 6>$null | Out-Null
        $text = Get-GraLoRAAdapter -Model $m | Out-String -Width 200
        $text | Should -Match 'Name\s+Method\s+Rank\s+K\s+HybridRank\s+Alpha\s+Targets\s+Parameters\s+Active\s+Merged'
        $text | Should -Match 'default\s+GraLoRA\s+16\s+2\s+0\s+64\s+14\s+[\d,]+,[\d]{3}\s+True\s+False'
    }
}

Describe 'Get-GraLoRAAdapter' {
    BeforeEach { $m = Import-BaseModel $tinyFolder.FullName }
    AfterEach { $m.Dispose() }

    It 'lists every adapter, or the named one; only the last added is active' {
        $m | Add-GraLoRAAdapter -Name a -Rank 8 -K 2 6>$null | Add-GraLoRAAdapter -Name b -Rank 16 -K 4 6>$null | Out-Null
        (Get-GraLoRAAdapter -Model $m).Name | Should -Be @('a', 'b')
        (Get-GraLoRAAdapter -Model $m -Name a).Rank | Should -Be 8
        (Get-GraLoRAAdapter -Model $m | Where-Object Active).Name | Should -Be 'b'
    }

    It 'names an unknown adapter (AdapterNotFound)' {
        { Get-GraLoRAAdapter -Model $m -Name ghost } | Should -Throw -ErrorId 'AdapterNotFound,*'
    }
}

Describe 'Adapter lifecycle on the PEFT fixture' {
    BeforeEach {
        $m = Import-BaseModel $llamaFolder
        $m | Import-GraLoRAAdapter $adapterFolder | Out-Null
    }
    AfterEach { $m.Dispose() }

    It 'Import-GraLoRAAdapter reproduces PEFT''s logits' {
        Get-RelativeError (Get-Logits $m $llamaIds) $peftLogits | Should -BeLessThan 1e-4
        Get-RelativeError (Get-Logits $m $llamaIds) $llamaBaseLogits | Should -BeGreaterThan 1e-3
        $info = Get-GraLoRAAdapter -Model $m
        $info.Rank | Should -Be 8
        $info.K | Should -Be 2
        $info.Alpha | Should -Be 16
        $info.Targets.Count | Should -Be 6
    }

    It 'Import-GraLoRAAdapter reads a PEFT LoRA adapter too' {
        $lora = Join-Path $fixtures 'lora/llama_r8'
        # one module holds one method: the GraLoRA adapter on q_proj/v_proj has to go first
        { $m | Import-GraLoRAAdapter $lora -Name lora } | Should -Throw -ErrorId 'AdapterMethodMismatch,*'
        (Get-GraLoRAAdapter -Model $m).Name | Should -Be 'default'
        $m | Remove-GraLoRAAdapter default -PassThru | Import-GraLoRAAdapter $lora -Name lora | Out-Null
        "$((Get-GraLoRAAdapter -Model $m -Name lora).Method)" | Should -Be 'LoRA'
        $loraLogits = (Read-Safetensors (Join-Path $lora 'reference.safetensors'))['plain.logits'].Data
        Get-RelativeError (Get-Logits $m $llamaIds) $loraLogits | Should -BeLessThan 1e-4
    }

    It 'Import-GraLoRAAdapter names a missing folder (AdapterFolderNotFound) and adds nothing' {
        { $m | Import-GraLoRAAdapter (Join-Path $work 'missing') -Name x } | Should -Throw -ErrorId 'AdapterFolderNotFound,*'
        (Get-GraLoRAAdapter -Model $m).Name | Should -Be 'default'
    }

    It 'Save-GraLoRAAdapter writes PEFT''s files with PEFT''s keys' {
        $saved = $m | Save-GraLoRAAdapter (Join-Path $work 'saved')
        $saved | Should -BeOfType ([IO.DirectoryInfo])
        Join-Path $saved.FullName 'adapter_config.json' | Should -Exist
        Join-Path $saved.FullName 'adapter_model.safetensors' | Should -Exist
        $config = Get-Content (Join-Path $saved.FullName 'adapter_config.json') -Raw | ConvertFrom-Json
        $config.peft_type | Should -Be 'GRALORA'
        $config.r | Should -Be 8
        $config.gralora_k | Should -Be 2
        $ours = Get-SafetensorsHeader (Join-Path $saved.FullName 'adapter_model.safetensors')
        $theirs = Get-SafetensorsHeader (Join-Path $adapterFolder 'adapter_model.safetensors')
        $ours.Keys | Sort-Object | Should -Be ($theirs.Keys | Sort-Object)
        foreach ($key in $theirs.Keys) { $ours[$key].shape | Should -Be $theirs[$key].shape }

        # and it loads back to the same logits
        $again = Import-BaseModel $llamaFolder | Import-GraLoRAAdapter $saved.FullName -Name again
        try { Get-RelativeError (Get-Logits $again $llamaIds) $peftLogits | Should -BeLessThan 1e-4 } finally { $again.Dispose() }
    }

    It 'Save-GraLoRAAdapter refuses a non-empty folder without -Force (OutputExists) and keeps its files' {
        $folder = New-Item -ItemType Directory (Join-Path $work 'occupied') -Force
        Set-Content (Join-Path $folder 'keep.txt') 'precious'
        { $m | Save-GraLoRAAdapter $folder.FullName } | Should -Throw -ErrorId 'OutputExists,*'
        Get-Content (Join-Path $folder 'keep.txt') | Should -Be 'precious'
        Join-Path $folder 'adapter_config.json' | Should -Not -Exist
        $m | Save-GraLoRAAdapter $folder.FullName -Force | Out-Null
        Join-Path $folder 'adapter_model.safetensors' | Should -Exist
        Join-Path $folder 'keep.txt' | Should -Not -Exist
    }

    It 'Save-GraLoRAAdapter -WhatIf writes nothing' {
        $m | Save-GraLoRAAdapter (Join-Path $work 'whatif-adapter') -WhatIf
        Join-Path $work 'whatif-adapter' | Should -Not -Exist
    }

    It 'Save-GraLoRAAdapter names an unknown adapter (AdapterNotFound)' {
        { $m | Save-GraLoRAAdapter (Join-Path $work 'ghost') -Name ghost } | Should -Throw -ErrorId 'AdapterNotFound,*'
    }

    It 'Set-GraLoRAAdapter -Disable computes as the base; -Enable brings the adapter back' {
        $out = $m | Set-GraLoRAAdapter -Disable -PassThru
        [object]::ReferenceEquals($out, $m) | Should -BeTrue
        Get-RelativeError (Get-Logits $m $llamaIds) $llamaBaseLogits | Should -BeLessThan 1e-4
        (Get-GraLoRAAdapter -Model $m).Disabled | Should -BeTrue
        $m | Set-GraLoRAAdapter -Enable | Should -BeNullOrEmpty
        Get-RelativeError (Get-Logits $m $llamaIds) $peftLogits | Should -BeLessThan 1e-4
        (Get-GraLoRAAdapter -Model $m).Disabled | Should -BeFalse
    }

    It 'Set-GraLoRAAdapter -Active switches adapters and names an unknown one' {
        $m | Add-GraLoRAAdapter -Name zero -Rank 8 -K 2 -TargetModule q_proj 6>$null | Out-Null   # B = 0: a no-op
        Get-RelativeError (Get-Logits $m $llamaIds) $llamaBaseLogits | Should -BeLessThan 1e-4
        $m | Set-GraLoRAAdapter -Active default | Out-Null
        (Get-GraLoRAAdapter -Model $m | Where-Object Active).Name | Should -Be 'default'
        Get-RelativeError (Get-Logits $m $llamaIds) $peftLogits | Should -BeLessThan 1e-4
        { $m | Set-GraLoRAAdapter -Active ghost } | Should -Throw -ErrorId 'AdapterNotFound,*'
    }

    It 'Remove-GraLoRAAdapter removes the adapter: none listed, base logits' {
        $m | Remove-GraLoRAAdapter default -WhatIf
        (Get-GraLoRAAdapter -Model $m).Name | Should -Be 'default'
        $m | Remove-GraLoRAAdapter default | Should -BeNullOrEmpty
        Get-GraLoRAAdapter -Model $m | Should -BeNullOrEmpty
        Get-RelativeError (Get-Logits $m $llamaIds) $llamaBaseLogits | Should -BeLessThan 1e-4
    }

    It 'Remove-GraLoRAAdapter checks every name first (AdapterNotFound) and passes the model through on request' {
        { $m | Remove-GraLoRAAdapter default, ghost } | Should -Throw -ErrorId 'AdapterNotFound,*'
        (Get-GraLoRAAdapter -Model $m).Name | Should -Be 'default'
        [object]::ReferenceEquals(($m | Remove-GraLoRAAdapter default -PassThru), $m) | Should -BeTrue
    }

    It 'Merge-GraLoRAAdapter keeps the logits and shows Merged; Split-GraLoRAAdapter undoes it' {
        $m | Merge-GraLoRAAdapter -SafeMerge | Out-Null
        (Get-GraLoRAAdapter -Model $m).Merged | Should -BeTrue
        Get-RelativeError (Get-Logits $m $llamaIds) $peftLogits | Should -BeLessThan 1e-4
        Get-RelativeError (Get-Logits $m $llamaIds) $peftMergedLogits | Should -BeLessThan 1e-4
        { $m | Remove-GraLoRAAdapter default } | Should -Throw -ErrorId 'AdapterMerged,*'
        $m | Split-GraLoRAAdapter | Out-Null
        (Get-GraLoRAAdapter -Model $m).Merged | Should -BeFalse
        Get-RelativeError (Get-Logits $m $llamaIds) $peftLogits | Should -BeLessThan 1e-4
        $m | Set-GraLoRAAdapter -Disable | Out-Null
        Get-RelativeError (Get-Logits $m $llamaIds) $llamaBaseLogits | Should -BeLessThan 1e-4
    }

    It 'Merge-GraLoRAAdapter -WhatIf merges nothing' {
        $m | Merge-GraLoRAAdapter -WhatIf | Out-Null
        (Get-GraLoRAAdapter -Model $m).Merged | Should -BeFalse
    }

    It 'Merge-GraLoRAAdapter -Unload forgets the adapters and keeps the adapted logits' {
        $baseCount = (Import-BaseModel $llamaFolder | ForEach-Object { $_.ParameterCount; $_.Dispose() })
        $m | Merge-GraLoRAAdapter -Unload | Out-Null
        Get-GraLoRAAdapter -Model $m | Should -BeNullOrEmpty
        $m.ParameterCount | Should -Be $baseCount
        Get-RelativeError (Get-Logits $m $llamaIds) $peftMergedLogits | Should -BeLessThan 1e-4
    }
}

Describe 'Export-BaseModel' {
    BeforeEach {
        # the tiny model has a tokenizer to copy; the fixture adapter fits its shapes
        $m = Import-BaseModel $tinyFolder.FullName | Import-GraLoRAAdapter $adapterFolder
        $adapted = Get-Logits $m $tinyIds
    }
    AfterEach { $m.Dispose() }

    It 'writes a checkpoint with the adapter merged in, config and tokenizer files, and no adapter tensors' {
        Get-RelativeError $adapted $tinyBase | Should -BeGreaterThan 1e-3
        $out = $m | Export-BaseModel (Join-Path $work 'exported')
        $out | Should -BeOfType ([IO.DirectoryInfo])
        foreach ($f in 'config.json', 'model.safetensors', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json') {
            Join-Path $out.FullName $f | Should -Exist
        }
        (Get-SafetensorsHeader (Join-Path $out.FullName 'model.safetensors')).Keys | Where-Object { $_ -match 'gralora|base_layer' } | Should -BeNullOrEmpty
        # the model itself is unchanged: adapter still there, not merged
        (Get-GraLoRAAdapter -Model $m).Merged | Should -BeFalse

        $back = Import-BaseModel $out.FullName
        try {
            Get-GraLoRAAdapter -Model $back | Should -BeNullOrEmpty
            Get-RelativeError (Get-Logits $back $tinyIds) $adapted | Should -BeLessThan 1e-4
            $back.Tokenizer | Should -Not -BeNullOrEmpty
        }
        finally { $back.Dispose() }
    }

    It 'writes merged weights as they are after Merge-GraLoRAAdapter' {
        $out = $m | Merge-GraLoRAAdapter | Export-BaseModel (Join-Path $work 'exported-merged')
        $back = Import-BaseModel $out.FullName
        try { Get-RelativeError (Get-Logits $back $tinyIds) $adapted | Should -BeLessThan 1e-4 } finally { $back.Dispose() }
    }

    It 'converts to -DType and shards at -MaxShardSize' {
        $out = $m | Export-BaseModel (Join-Path $work 'exported-bf16') -DType bfloat16 -MaxShardSize 40000
        (Get-Content (Join-Path $out.FullName 'config.json') -Raw | ConvertFrom-Json).torch_dtype | Should -Be 'bfloat16'
        (Get-ChildItem $out.FullName -Filter 'model-*-of-*.safetensors').Count | Should -BeGreaterThan 1
        Join-Path $out.FullName 'model.safetensors.index.json' | Should -Exist
    }

    It 'refuses a non-empty folder (OutputExists) and writes nothing under -WhatIf' {
        { $m | Export-BaseModel $tinyFolder.FullName } | Should -Throw -ErrorId 'OutputExists,*'
        $m | Export-BaseModel (Join-Path $work 'whatif-export') -WhatIf
        Join-Path $work 'whatif-export' | Should -Not -Exist
    }

    It 'ends the pipeline Import-BaseModel | Add-GraLoRAAdapter | Merge-GraLoRAAdapter | Export-BaseModel (relative paths)' {
        Push-Location $work
        try {
            Copy-Item $tinyFolder.FullName (Join-Path $work 'm') -Recurse
            $out = Import-BaseModel ./m | Add-GraLoRAAdapter -Rank 8 -K 2 6>$null | Merge-GraLoRAAdapter | Export-BaseModel ./out
            $out.FullName | Should -Be (Join-Path $work 'out')
            $back = Import-BaseModel ./out
            try { Get-RelativeError (Get-Logits $back $tinyIds) $tinyBase | Should -BeLessThan 1e-5 } finally { $back.Dispose() }

            # the same with a non-zero adapter: the export computes what the adapted model computed
            $out2 = Import-BaseModel ./m -OutVariable source | Add-GraLoRAAdapter -Rank 8 -K 2 -TargetModule all-linear -RandomInit 6>$null |
                Merge-GraLoRAAdapter | Export-BaseModel ./out2
            try {
                $expected = Get-Logits $source[0] $tinyIds
                Get-RelativeError $expected $tinyBase | Should -BeGreaterThan 1e-3
                $back = Import-BaseModel $out2.FullName
                try { Get-RelativeError (Get-Logits $back $tinyIds) $expected | Should -BeLessThan 1e-4 } finally { $back.Dispose() }
            }
            finally { $source[0].Dispose() }
        }
        finally { Pop-Location }
    }
}
