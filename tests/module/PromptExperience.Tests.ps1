# Get-BaseModel, argument completion, training configs and help: what makes the module feel complete at the prompt.
BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-prompt-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 7).FullName
    $script:m = Import-BaseModel $tiny
    $m | Add-GraLoRAAdapter -Name first -Rank 8 -K 2 -InformationAction Ignore | Out-Null
    $m | Add-GraLoRAAdapter -Name second -Rank 4 -K 2 -InformationAction Ignore | Out-Null
    $m | Set-GraLoRAAdapter -Active second | Out-Null

    # The completion texts TabExpansion2 offers at the end of a command line.
    function Get-Completion([string] $Line) {
        (TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText
    }
}

AfterAll {
    if ($m) { $m.Dispose() }
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Get-BaseModel' {
    It 'describes the model, its adapters and head' {
        $info = Get-BaseModel -Model $m
        $info.GetType().FullName | Should -Be 'GraLoRA.PowerShell.BaseModelInfo'
        $info.Name | Should -Be $m.Name
        $info.Path | Should -Be $tiny
        $info.Architecture | Should -Be 'llama'
        $info.Parameters | Should -Be $m.ParameterCount
        $info.DType | Should -Be 'float32'
        $info.Device | Should -Be 'cpu'
        $info.TokenizerVocabSize | Should -Be $m.Tokenizer.VocabSize
        $info.Adapters | Should -Be @('first', 'second')
        $info.ActiveAdapters | Should -Be @('second')
        $info.ClassificationLabels | Should -Be 0
    }

    It 'takes the model from the pipeline, also by property name' {
        ($m | Get-BaseModel).Architecture | Should -Be 'llama'
        ([pscustomobject]@{ Model = $m } | Get-BaseModel).Architecture | Should -Be 'llama'
    }

    It 'declares its output type' {
        (Get-Command Get-BaseModel).OutputType.Name | Should -Be 'GraLoRA.PowerShell.BaseModelInfo'
    }

    It 'formats as a list' {
        $text = Get-BaseModel $m | Out-String
        $text | Should -Match 'Architecture\s+:\s+llama'
        $text | Should -Match 'Tokenizer\s+:\s+\d+ tokens'
        $text | Should -Match 'Adapters\s+:\s+first, second'
        $text | Should -Match 'ActiveAdapters\s+:\s+second'
    }

    It 'reports no adapters for a fresh model' {
        $fresh = Import-BaseModel $tiny
        try {
            $info = Get-BaseModel $fresh
            $info.Adapters | Should -BeNullOrEmpty
            Get-BaseModel $fresh | Out-String | Should -Match 'Adapters\s+:\s+none'
        }
        finally { $fresh.Dispose() }
    }
}

Describe 'Argument completion' {
    It 'completes -Device with cpu, the CUDA devices and auto' {
        $devices = Get-Completion 'Import-BaseModel ./x -Device '
        $devices | Should -Contain 'cpu'
        $devices | Should -Contain 'auto'
        $cuda = (Get-TorchDevice).Devices | Where-Object Type -EQ 'CUDA'
        if ($cuda) { $devices | Should -Contain 'cuda:0' } else { $devices | Should -Not -Contain 'cuda' }
        Get-Completion 'Import-BaseModel ./x -Device c' | Should -Contain 'cpu'
        Get-Completion 'Import-BaseModel ./x -Device c' | Should -Not -Contain 'auto'
    }

    It 'completes adapter names from the bound -Model: <Line>' -ForEach @(
        @{ Line = 'Get-GraLoRAAdapter -Model $m -Name ' }
        @{ Line = 'Set-GraLoRAAdapter -Model $m -Active ' }
        @{ Line = 'Remove-GraLoRAAdapter -Model $m -Name ' }
        @{ Line = 'Save-GraLoRAAdapter -Model $m -Name ' }
        @{ Line = 'Merge-GraLoRAAdapter -Model $m -Name ' }
        @{ Line = 'Start-GraLoRATraining -Model $m -Adapter ' }
    ) {
        Get-Completion $Line | Should -Be @('first', 'second')
    }

    It 'narrows adapter names to the typed prefix' {
        Get-Completion 'Set-GraLoRAAdapter -Model $m -Active s' | Should -Be @('second')
    }

    It 'offers no adapter names without a bound model' {
        Get-Completion 'Get-GraLoRAAdapter -Name ' | Should -BeNullOrEmpty
    }

    It 'completes -TargetModule with the linear layer names and all-linear' {
        $targets = Get-Completion 'Add-GraLoRAAdapter -Model $m -TargetModule '
        foreach ($t in 'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head', 'all-linear') {
            $targets | Should -Contain $t
        }
        $targets | Should -Be ($targets | Select-Object -Unique)
        Get-Completion 'Add-GraLoRAAdapter -Model $m -TargetModule q' | Should -Be @('q_proj')
        Get-Completion 'Add-GraLoRAAdapter -Model $m -TargetModule all' | Should -Be @('all-linear')
    }

    It 'completes -ExcludeModule and -ModulesToSave with the layer names only' {
        Get-Completion 'Add-GraLoRAAdapter -Model $m -ModulesToSave lm' | Should -Be @('lm_head')
        Get-Completion 'Add-GraLoRAAdapter -Model $m -ExcludeModule ' | Should -Not -Contain 'all-linear'
    }

    It 'offers all-linear for -TargetModule without a bound model' {
        Get-Completion 'Add-GraLoRAAdapter -TargetModule ' | Should -Be @('all-linear')
    }
}

Describe 'New-GraLoRATrainingConfig and Start-GraLoRATraining -Config' {
    BeforeAll {
        $script:alpaca = Join-Path $root 'examples/data/tiny-alpaca.jsonl'
        function New-Trainable {
            $t = Import-BaseModel $tiny
            $t | Add-GraLoRAAdapter -Rank 8 -K 2 -TargetModule q_proj, v_proj -InformationAction Ignore | Out-Null
            $t
        }
        # A .psd1 text for a flat hashtable of strings, numbers and booleans.
        function ConvertTo-Psd1([Collections.IDictionary] $Table) {
            $lines = foreach ($key in $Table.Keys) {
                $v = $Table[$key]
                $text = if ($v -is [bool]) { if ($v) { '$true' } else { '$false' } }
                elseif ($v -is [string]) { "'" + $v.Replace("'", "''") + "'" }
                else { [string]::Format([Globalization.CultureInfo]::InvariantCulture, '{0:R}', $v) }
                "    $key = $text"
            }
            "@{`n" + ($lines -join "`n") + "`n}"
        }
    }

    It 'holds only the given settings, in a fixed order, switches as booleans' {
        $config = New-GraLoRATrainingConfig -MaxSteps 2 -LearningRate 1e-3 -Packing -GroupByLength:$false
        $config.GetType().FullName | Should -Be 'System.Collections.Specialized.OrderedDictionary'
        @($config.Keys) | Should -Be @('Packing', 'GroupByLength', 'LearningRate', 'MaxSteps')
        $config.Packing | Should -BeOfType ([bool])
        $config.Packing | Should -BeTrue
        $config.GroupByLength | Should -BeFalse
        $config.LearningRate | Should -Be 1e-3
        (New-GraLoRATrainingConfig).Count | Should -Be 0
    }

    It 'offers every optimisation, data and output parameter of Start-GraLoRATraining' {
        $train = (Get-Command Start-GraLoRATraining).Parameters
        $own = (Get-Command New-GraLoRATrainingConfig).Parameters.Keys | Where-Object { $_ -notin [Management.Automation.PSCmdlet]::CommonParameters }
        foreach ($name in $own) {
            $train.Keys | Should -Contain $name
        }
        $own | Should -Contain 'LearningRate'
        $own | Should -Contain 'OutputPath'
        $own | Should -Contain 'MaxLength'
        $own | Should -Not -Contain 'Model'
    }

    It 'trains 2 steps from a configuration round-tripped through <Kind>' -ForEach @(@{ Kind = 'JSON' }, @{ Kind = 'PSD1' }) {
        $out = Join-Path $work "config-$Kind"
        $config = New-GraLoRATrainingConfig -MaxSteps 2 -BatchSize 4 -LearningRate 1e-3 -Schedule Constant -LoggingSteps 1 -MaxLength 256 -Seed 11 -OutputPath $out -GradientCheckpointing
        $loaded = if ($Kind -eq 'JSON') {
            $file = Join-Path $work 'config.json'
            $config | ConvertTo-Json | Set-Content $file
            Get-Content $file -Raw | ConvertFrom-Json -AsHashtable
        }
        else {
            $file = Join-Path $work 'config.psd1'
            ConvertTo-Psd1 $config | Set-Content $file
            Import-PowerShellDataFile $file
        }
        $loaded.Count | Should -Be $config.Count
        $t = New-Trainable
        try {
            $run = $t | Start-GraLoRATraining $alpaca -Config $loaded -InformationAction Ignore
            $run.Steps | Should -Be 2
            $run.TotalSteps | Should -Be 2
            $run.History.Count | Should -Be 2
            $run.History | ForEach-Object { $_.LearningRate | Should -Be 1e-3 }
            $run.OutputPath | Should -Be $out
            $run.LastCheckpoint | Should -Exist
        }
        finally { $t.Dispose() }
    }

    It 'lets explicit parameters win over the configuration' {
        $t = New-Trainable
        try {
            $config = @{ MaxSteps = 5; LearningRate = 1e-3; Schedule = 'Constant'; LoggingSteps = 1; BatchSize = 4; MaxLength = 256 }
            $run = $t | Start-GraLoRATraining $alpaca -Config $config -MaxSteps 2 -LearningRate 5e-4 -InformationAction Ignore
            $run.TotalSteps | Should -Be 2
            $run.History[0].LearningRate | Should -Be 5e-4
        }
        finally { $t.Dispose() }
    }

    It 'refuses an unknown key, by id' {
        { $m | Start-GraLoRATraining $alpaca -Adapter first -Config @{ LearnRate = 1e-3 } } | Should -Throw -ErrorId 'InvalidTrainingConfig,*'
    }

    It 'refuses a value outside the parameter''s set or type, by id' {
        { $m | Start-GraLoRATraining $alpaca -Adapter first -Config @{ Schedule = 'Exponential' } } | Should -Throw -ErrorId 'InvalidTrainingConfig,*'
        { $m | Start-GraLoRATraining $alpaca -Adapter first -Config @{ MaxSteps = 'many' } } | Should -Throw -ErrorId 'InvalidTrainingConfig,*'
    }
}

Describe 'examples/02-lora-vs-gralora.ps1' {
    It 'trains LoRA and GraLoRA at equal parameters and tabulates them' {
        $rows = @(& (Join-Path $root 'examples/02-lora-vs-gralora.ps1') -Steps 4 -Rank 8)
        $rows.Method | Should -Be @('LoRA', 'GraLoRA')
        $rows[0].Parameters | Should -BeGreaterThan 0
        $rows[1].Parameters | Should -Be $rows[0].Parameters
        $rows[1].K | Should -Be 2
        foreach ($row in $rows) {
            [double]::IsFinite($row.FinalLoss) | Should -BeTrue
            [double]::IsFinite($row.ValidationLoss) | Should -BeTrue
        }
        $rows | Format-Table | Out-String | Should -Match 'Method\s+Rank\s+K\s+Parameters'
    }
}
