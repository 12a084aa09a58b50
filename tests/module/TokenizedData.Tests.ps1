# Datasets that are already tokenized (input_ids, optional labels and attention_mask, as Hugging Face datasets and TRL
# store them) through Start-GraLoRATraining and Invoke-GraLoRAEvaluation. The tiny models' tokenizer is byte-level: a
# byte's id is its value, <|begin_of_text|> is 256 and <|end_of_text|> 257, so records can be written by hand.
BeforeDiscovery {
    Import-Module (Join-Path (Split-Path -Parent (Split-Path -Parent $PSScriptRoot)) 'GraLoRA.psd1') -Force
    # -Format names a dataset format everywhere but on the writers, where it names the file format written (-Path/-OutputPath).
    $script:FormatCmdlets = Get-Command -Module GraLoRA | Where-Object {
        $_.Parameters.ContainsKey('Format') -and -not ($_.Parameters.ContainsKey('Path') -and $_.Verb -in 'Export', 'ConvertTo')
    } | ForEach-Object { @{ Name = $_.Name } }
}

BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-tokenized-" + [guid]::NewGuid().ToString('N'))
    $null = New-Item -ItemType Directory $work
    $script:tiny = (New-BaseModel (Join-Path $work 'tiny') -HiddenSize 32 -IntermediateSize 64 -Layers 1 -Seed 2).FullName

    # A prompt that is not learned (-100) and an answer that is, then end of text; right-padded to 24 tokens as
    # padding='max_length' would, the padding masked out.
    function New-TokenizedRecord([string] $Prompt, [string] $Answer) {
        $p = @(256) + [Text.Encoding]::UTF8.GetBytes($Prompt) | ForEach-Object { [int] $_ }
        $a = @([Text.Encoding]::UTF8.GetBytes($Answer) | ForEach-Object { [int] $_ }) + 257
        $pad = 24 - $p.Count - $a.Count
        [ordered]@{
            input_ids      = @($p + $a + @(258) * $pad)
            labels         = @(@(-100) * $p.Count + $a + @(-100) * $pad)
            attention_mask = @(@(1) * ($p.Count + $a.Count) + @(0) * $pad)
        }
    }
    $script:records = 1..8 | ForEach-Object { New-TokenizedRecord "$_+1=" "$($_ + 1)" }
    $script:file = Join-Path $work 'tokenized.jsonl'
    $records | ForEach-Object { $_ | ConvertTo-Json -Compress } | Set-Content $file

    # Every model starts from the same adapter weights (Add-GraLoRAAdapter draws A at random).
    $script:start = Join-Path $work 'start-adapter'
    $first = Import-BaseModel $tiny | Add-GraLoRAAdapter -Rank 4 -K 2 -TargetModule all-linear -InformationAction Ignore
    $first | Save-GraLoRAAdapter $start | Out-Null
    $first.Dispose()
    function New-Model { Import-BaseModel $tiny | Import-GraLoRAAdapter $start }
    $train = @{ MaxSteps = 3; BatchSize = 4; LearningRate = 1e-2; LoggingSteps = 1; InformationAction = 'Ignore' }
}

AfterAll {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Pre-tokenized datasets' {
    It 'trains on a JSONL file of input_ids, labels and attention_mask, detected as Tokenized, as on the same records piped in' {
        $a = New-Model
        $fromFile = $a | Start-GraLoRATraining $file @train
        $b = New-Model
        $fromRecords = $b | Start-GraLoRATraining -InputObject $records @train
        $fromFile.Format | Should -Be 'Tokenized'
        $fromFile.TrainExamples | Should -Be 8
        $fromFile.Steps | Should -Be 3
        $fromFile.History.Loss | Should -Be $fromRecords.History.Loss
        $a.Dispose(); $b.Dispose()
    }

    It 'learns only the labelled tokens: evaluation counts the answers and their end-of-text, not prompts or padding' {
        $m = New-Model
        $run = $m | Invoke-GraLoRAEvaluation -Dataset $file
        $run.Format | Should -Be 'Tokenized'
        $run.Examples | Should -Be 8
        # Each record labels its answer (one digit, 2 to 9) and <|end_of_text|>: 2 tokens each (worked by hand).
        $run.Tokens | Should -Be (8 * 2)
        [Math]::Abs([Math]::Exp($run.Loss) - $run.Perplexity) | Should -BeLessThan 1e-9
        $m.Dispose()
    }

    It 'fails naming the line and field of an id outside the tokenizer''s vocabulary' {
        $bad = Join-Path $work 'bad-id.jsonl'
        @($records[0] | ConvertTo-Json -Compress; '{"input_ids": [256, 99999, 257]}') | Set-Content $bad
        $m = New-Model
        { $m | Start-GraLoRATraining $bad @train } | Should -Throw -ErrorId 'InvalidDatasetRecord,*' -ExpectedMessage "*'bad-id.jsonl' line 2: input_ids``[1``] = 99999 is not a token id*"
        $m.Dispose()
    }

    It 'fails naming the record and field when labels and input_ids differ in length' {
        $m = New-Model
        { $m | Invoke-GraLoRAEvaluation -InputObject @{ input_ids = 1, 2, 3; labels = 1, 2 } } |
            Should -Throw -ErrorId 'InvalidDatasetRecord,*' -ExpectedMessage '*record 0: labels has 2 values and input_ids 3*'
        $m.Dispose()
    }

    It 'has no answers to compare for -ExactMatch, and says so' {
        $m = New-Model
        { $m | Invoke-GraLoRAEvaluation -Dataset $file -ExactMatch } | Should -Throw -ErrorId 'ExactMatchNotSupported,*' -ExpectedMessage '*Tokenized*'
        $m.Dispose()
    }
}

Describe '-Format' {
    It '<Name> -Format offers exactly the dataset formats Core reads' -ForEach $FormatCmdlets {
        $set = (Get-Command $Name).Parameters['Format'].Attributes | Where-Object { $_ -is [Management.Automation.ValidateSetAttribute] }
        # Core loads in the module's own load context, so its enum is found through its assembly.
        $core = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'GraLoRA.Core' }
        $set.ValidValues | Sort-Object | Should -Be ([Enum]::GetNames($core.GetType('GraLoRA.Data.DatasetFormat')) | Sort-Object)
    }
}
