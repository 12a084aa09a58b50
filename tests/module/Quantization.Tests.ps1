BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-quant-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:folder = New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 3
}

AfterAll {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

# The cmdlets' side of docs/quantization.md; the numbers (bitsandbytes parity, rounding) are checked in Core's tests.
Describe 'Quantised bases' {
    It 'Import-BaseModel -Quantize nf4 holds the layers quantised; Merge-GraLoRAAdapter re-quantises with a warning' {
        $model = Import-BaseModel $folder -Quantize nf4
        try {
            $model.Quantization | Should -Be 'Nf4'
            $model | Add-GraLoRAAdapter -Rank 4 -K 2 -TargetModule all-linear | Out-Null
            $model | Merge-GraLoRAAdapter -WarningVariable warned -WarningAction SilentlyContinue | Out-Null
            "$warned" | Should -Match 're-quantised'
            $model.Quantization | Should -Be 'Nf4'
        }
        finally { $model.Dispose() }
    }

    It 'Export-BaseModel -Quantize nf4 -DoubleQuant writes a bitsandbytes checkpoint that Import-BaseModel loads as stored' {
        $model = Import-BaseModel $folder
        try {
            $out = $model | Export-BaseModel (Join-Path $work 'nf4') -Quantize nf4 -DoubleQuant -WarningVariable warned -WarningAction SilentlyContinue
            "$warned" | Should -Match 'written as nf4'
            $config = Get-Content (Join-Path $out 'config.json') -Raw | ConvertFrom-Json
            $config.quantization_config.quant_method | Should -Be 'bitsandbytes'
            $config.quantization_config.bnb_4bit_use_double_quant | Should -BeTrue
            $again = Import-BaseModel $out
            try { $again.Quantization | Should -Be 'Nf4' } finally { $again.Dispose() }
        }
        finally { $model.Dispose() }
    }

    It 'a quantised base exports dequantised, with a warning, unless -Quantize is given' {
        $model = Import-BaseModel $folder -Quantize int8
        try {
            $out = $model | Export-BaseModel (Join-Path $work 'plain') -DType bfloat16 -WarningVariable warned -WarningAction SilentlyContinue
            "$warned" | Should -Match 'dequantised'
            $config = Get-Content (Join-Path $out 'config.json') -Raw | ConvertFrom-Json -AsHashtable
            $config.ContainsKey('quantization_config') | Should -BeFalse
            $config.torch_dtype | Should -Be 'bfloat16'
        }
        finally { $model.Dispose() }
    }

    It 'refuses <Arguments> with <Id>' -ForEach @(
        @{ Arguments = @{ Format = 'gguf'; Quantize = 'nf4' }; Id = 'NotForGguf' }
        @{ Arguments = @{ DoubleQuant = $true }; Id = 'InvalidQuantization' }
    ) {
        $model = Import-BaseModel $folder
        try { { $model | Export-BaseModel (Join-Path $work 'refused') @Arguments } | Should -Throw -ErrorId "$Id,*" }
        finally { $model.Dispose() }
    }

    It '-Quantize <Scheme> is refused naming the schemes that are not implemented' -ForEach @(
        @{ Scheme = 'gptq' }, @{ Scheme = 'awq' }, @{ Scheme = 'fp8' }
    ) {
        { Import-BaseModel $folder -Quantize $Scheme } | Should -Throw -ErrorId 'UnsupportedQuantization,*' -ExpectedMessage '*GPTQ, AWQ, FP8*'
        $model = Import-BaseModel $folder
        try { { $model | Export-BaseModel (Join-Path $work "refused-$Scheme") -Quantize $Scheme } | Should -Throw -ErrorId 'UnsupportedQuantization,*' }
        finally { $model.Dispose() }
    }
}
