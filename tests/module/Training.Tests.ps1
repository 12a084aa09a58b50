BeforeDiscovery {
    # Every cmdlet that takes -Model, for the pipeline-binding checks.
    $script:ModelCmdlets = @(
        'Add-GraLoRAAdapter', 'Get-GraLoRAAdapter', 'Set-GraLoRAAdapter', 'Remove-GraLoRAAdapter', 'Save-GraLoRAAdapter',
        'Import-GraLoRAAdapter', 'Merge-GraLoRAAdapter', 'Split-GraLoRAAdapter', 'Export-BaseModel', 'Invoke-BaseModel',
        'Invoke-GraLoRAGeneration', 'Start-GraLoRATraining', 'Invoke-GraLoRAEvaluation'
    ) | ForEach-Object { @{ Name = $_ } }
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-training-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:alpaca = Join-Path $root 'examples/data/tiny-alpaca.jsonl'
    $script:chat = Join-Path $root 'examples/data/tiny-chat.jsonl'

    # A tiny Llama (hidden 64, 2 layers) with a byte-level tokenizer and a chat template.
    $script:tiny = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 5).FullName

    # A fresh model with one GraLoRA adapter on every linear layer and the output head trained in full, so a random
    # model learns visibly within a few dozen steps. -From: load this saved adapter instead (identical starting weights).
    function New-TrainableModel([string] $From) {
        $m = Import-BaseModel $tiny
        if ($From) { $m | Import-GraLoRAAdapter $From | Out-Null }
        else { $m | Add-GraLoRAAdapter -Rank 16 -K 2 -TargetModule all-linear -ModulesToSave lm_head -InformationAction Ignore | Out-Null }
        $m
    }

    $script:ids = [int[][]] @(@(10, 72, 105, 33, 5, 9), @(1, 2, 3, 4, 5, 6))
}

AfterAll {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Start-GraLoRATraining' {
    It 'takes every setting of Core''s TrainingSettings under its name, and New-GraLoRATrainingConfig those a configuration holds' {
        $core = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'GraLoRA.Core' } | Select-Object -First 1
        # -Force is Core's OverwriteOutput (the module-wide name of the writers' switch).
        $settings = $core.GetType('GraLoRA.Training.TrainingSettings').GetProperties([Reflection.BindingFlags] 'Public, Instance').Name |
            ForEach-Object { if ($_ -eq 'OverwriteOutput') { 'Force' } else { $_ } } | Sort-Object
        $common = [Management.Automation.PSCmdlet]::CommonParameters + [Management.Automation.PSCmdlet]::OptionalCommonParameters
        # The job's input (model, data, a configuration) and what it outputs are not settings.
        $inputs = 'Model', 'Dataset', 'InputObject', 'Config', 'PassThru'
        (Get-Command Start-GraLoRATraining).Parameters.Keys | Where-Object { $_ -notin $common -and $_ -notin $inputs } | Sort-Object |
            Should -Be $settings
        # A configuration holds the reusable settings: all but which adapter and which checkpoint.
        (Get-Command New-GraLoRATrainingConfig).Parameters.Keys | Where-Object { $_ -notin $common } | Sort-Object |
            Should -Be ($settings | Where-Object { $_ -notin 'Adapter', 'Resume', 'ResumeFrom' })
    }

    It 'lowers the loss, writes one line per logging step and emits one TrainingRun carrying the model' {
        $m = New-TrainableModel
        try {
            $before = $m | Invoke-GraLoRAEvaluation -Dataset $alpaca
            $out = @($m | Start-GraLoRATraining -Dataset $alpaca -MaxSteps 40 -BatchSize 8 -LearningRate 3e-3 -LoggingSteps 10 6>&1)
            $info = @($out | Where-Object { $_ -is [Management.Automation.InformationRecord] })
            $runs = @($out | Where-Object { $_ -isnot [Management.Automation.InformationRecord] })
            $runs.Count | Should -Be 1
            $run = $runs[0]
            $run.GetType().FullName | Should -Be 'GraLoRA.PowerShell.TrainingRun'
            [object]::ReferenceEquals($run.Model, $m) | Should -BeTrue
            $run.Adapter | Should -Be 'default'
            $run.Format | Should -Be 'Alpaca'
            $run.TrainExamples | Should -Be 100
            $run.Steps | Should -Be 40
            $run.TotalSteps | Should -Be 40
            $run.Cancelled | Should -BeFalse
            $run.OutputPath | Should -BeNullOrEmpty
            $run.ValidationLoss | Should -BeNullOrEmpty
            $run.History.Step | Should -Be @(10, 20, 30, 40)
            $run.FinalLoss | Should -Be $run.History[-1].Loss
            $run.FinalLoss | Should -BeLessThan ($run.History[0].Loss - 0.3)

            # The information stream: a header, one line per logging step with its loss, a summary; tagged GraLoRA (and
            # PSHOST, shown like Write-Host, only in interactive sessions: Automation.Tests checks the display).
            $steps = @($info | Where-Object { "$($_.MessageData)" -match '^step\s+\d+/40\s+loss (\d+\.\d+)' })
            $steps.Count | Should -Be 4
            $steps[0].Tags | Should -Contain 'GraLoRA'
            "$($steps[0].MessageData)" | Should -Match ('loss {0:0.0000}' -f $run.History[0].Loss)
            "$($info[0].MessageData)" | Should -Match "Training adapter 'default' on 100 examples \(Alpaca"
            "$($info[-1].MessageData)" | Should -Match '^done: 40/40 steps'

            # Measured independently: the same data scores better after training.
            $after = $m | Invoke-GraLoRAEvaluation -Dataset $alpaca
            $after.Loss | Should -BeLessThan ($before.Loss - 0.3)
        }
        finally { $m.Dispose() }
    }

    It 'runs the whole pipeline: Import | Add | Start | Merge | Export, and the export computes like the merged model' {
        $out = Join-Path $work 'pipeline-export'
        $folder = Import-BaseModel $tiny |
            Add-GraLoRAAdapter -TargetModule all-linear -InformationAction Ignore |
            Start-GraLoRATraining -Dataset $chat -MaxSteps 8 -LearningRate 5e-3 -InformationAction Ignore |
            Merge-GraLoRAAdapter -OutVariable merged |
            Export-BaseModel $out
        $folder.FullName | Should -Be $out
        $merged.Count | Should -Be 1
        $model = $merged[0]
        $base = Import-BaseModel $tiny
        $exported = Import-BaseModel $out
        try {
            (Get-GraLoRAAdapter -Model $model).Merged | Should -BeTrue
            $mergedLogits = Get-Logits $model $ids
            # Training changed the model...
            Get-RelativeError $mergedLogits (Get-Logits $base $ids) | Should -BeGreaterThan 1e-3
            # ...and the exported folder holds exactly that model.
            Get-RelativeError (Get-Logits $exported $ids) $mergedLogits | Should -BeLessThan 1e-4
        }
        finally { $model.Dispose(); $base.Dispose(); $exported.Dispose() }
    }

    It 'trains on -InputObject records (ConvertFrom-Json objects) exactly as on the file they came from' {
        $start = New-TrainableModel
        $adapter = Join-Path $work 'start-adapter'
        $start | Save-GraLoRAAdapter $adapter | Out-Null
        $start.Dispose()
        $a = New-TrainableModel -From $adapter
        $b = New-TrainableModel -From $adapter
        try {
            $fromFile = $a | Start-GraLoRATraining -Dataset $chat -MaxSteps 5 -LoggingSteps 1 -InformationAction Ignore
            $records = Get-Content $chat | ConvertFrom-Json
            $records[0].GetType().Name | Should -Be 'PSCustomObject'
            $fromObjects = $b | Start-GraLoRATraining -InputObject $records -MaxSteps 5 -LoggingSteps 1 -InformationAction Ignore
            $fromObjects.Format | Should -Be 'Chat'
            $fromObjects.TrainExamples | Should -Be 200
            $fromObjects.History.Loss | Should -Be $fromFile.History.Loss
        }
        finally { $a.Dispose(); $b.Dispose() }
    }

    It 'trains on -InputObject hashtables, detecting prompt/completion' {
        $m = New-TrainableModel
        try {
            $records = foreach ($i in 1..24) { @{ prompt = "What is $i + 1?"; completion = " $($i + 1)." } }
            $run = $m | Start-GraLoRATraining -InputObject $records -MaxSteps 12 -BatchSize 4 -LearningRate 3e-3 -LoggingSteps 4 -InformationAction Ignore
            $run.Format | Should -Be 'PromptCompletion'
            $run.TrainExamples | Should -Be 24
            $run.Steps | Should -Be 12
            $run.FinalLoss | Should -BeLessThan $run.History[0].Loss
        }
        finally { $m.Dispose() }
    }

    It 'writes checkpoints, metrics.jsonl, TensorBoard events and training.png to a relative -OutputPath, and validates' {
        $m = New-TrainableModel
        Push-Location $work
        try {
            $run = $m | Start-GraLoRATraining -Dataset $alpaca -OutputPath 'run-out' -MaxSteps 30 -BatchSize 8 -LearningRate 3e-3 `
                -LoggingSteps 10 -SaveSteps 10 -EvalSteps 10 -SaveTotalLimit 2 -ValidationSplit 0.2 -InformationAction Ignore
        }
        finally { Pop-Location }
        try {
            $out = Join-Path $work 'run-out'
            $run.OutputPath | Should -Be $out
            $run.TrainExamples | Should -Be 80
            $run.ValidationExamples | Should -Be 20
            $run.LastCheckpoint | Should -Be (Join-Path $out 'checkpoint-30')
            $run.ValidationLoss | Should -Not -BeNullOrEmpty
            $run.Perplexity | Should -Be ([Math]::Exp($run.ValidationLoss))
            $run.BestValidationLoss | Should -Be ($run.History.ValidationLoss | Measure-Object -Minimum).Minimum
            $run.BestCheckpoint | Should -Be (Join-Path $out "checkpoint-$($run.BestStep)")
            # Limit 2: the newest and the best survive, others are pruned.
            $kept = @((Get-ChildItem $out -Directory -Filter 'checkpoint-*').Name)
            $kept | Should -Contain 'checkpoint-30'
            $kept | Should -Contain "checkpoint-$($run.BestStep)"
            $kept.Count | Should -BeLessOrEqual 2
            foreach ($file in 'adapter_config.json', 'adapter_model.safetensors', 'optimizer.bin', 'rng_state.safetensors', 'trainer_state.json') {
                Join-Path $run.LastCheckpoint $file | Should -Exist
            }
            $metrics = @(Get-Content (Join-Path $out 'metrics.jsonl') | ConvertFrom-Json)
            $metrics.step | Should -Be @(10, 20, 30)
            $metrics[0].loss | Should -Be $run.History[0].Loss
            $metrics.eval_loss | Should -Not -Contain $null
            @(Get-ChildItem (Join-Path $out 'runs') -Filter 'events.out.tfevents.*').Count | Should -BeGreaterThan 0
            $run.Chart | Should -Be (Join-Path $out 'training.png')
            $png = [IO.File]::ReadAllBytes($run.Chart)
            $png[1..3] | Should -Be @(0x50, 0x4E, 0x47)
        }
        finally { $m.Dispose() }
    }

    It '-Resume continues from the latest checkpoint to the same step and the same adapter weights as an uninterrupted run' {
        $whole = Join-Path $work 'resume-whole'
        $part = Join-Path $work 'resume-part'
        $common = @{ Dataset = $alpaca; MaxSteps = 20; BatchSize = 8; LearningRate = 3e-3; SaveSteps = 10; InformationAction = 'Ignore' }
        $a = New-TrainableModel
        $full = $a | Start-GraLoRATraining @common -OutputPath $whole
        $a.Dispose()
        $full.Steps | Should -Be 20
        # Only the step-10 checkpoint, as if the run had stopped there; a model with a different random adapter resumes it.
        New-Item -ItemType Directory $part | Out-Null
        Copy-Item (Join-Path $whole 'checkpoint-10') $part -Recurse
        $b = New-TrainableModel
        try {
            $resumed = $b | Start-GraLoRATraining @common -OutputPath $part -Resume
            $resumed.Steps | Should -Be 20
            $resumed.History.Step | Should -Be @(20)
            $resumed.History[0].Loss | Should -Be $full.History[-1].Loss
            $expected = [IO.File]::ReadAllBytes((Join-Path $whole 'checkpoint-20/adapter_model.safetensors'))
            $actual = [IO.File]::ReadAllBytes((Join-Path $part 'checkpoint-20/adapter_model.safetensors'))
            [Convert]::ToBase64String($actual) | Should -Be ([Convert]::ToBase64String($expected))
        }
        finally { $b.Dispose() }
    }

    It '-GradientCheckpointing trains to the same loss as without it' {
        $start = Join-Path $work 'checkpointing-start'
        $seed = New-TrainableModel
        $seed | Save-GraLoRAAdapter -Path $start | Out-Null
        $seed.Dispose()
        $common = @{ Dataset = $alpaca; MaxSteps = 3; BatchSize = 4; LearningRate = 3e-3; LoggingSteps = 1; InformationAction = 'Ignore' }
        $a = New-TrainableModel -From $start
        $b = New-TrainableModel -From $start
        try {
            $plain = $a | Start-GraLoRATraining @common
            $recomputed = $b | Start-GraLoRATraining @common -GradientCheckpointing
            for ($i = 0; $i -lt 3; $i++) {
                [Math]::Abs($recomputed.History[$i].Loss - $plain.History[$i].Loss) | Should -BeLessThan 1e-4
            }
        }
        finally { $a.Dispose(); $b.Dispose() }
    }

    It 'trains text/label records through a classification head and reports accuracy' {
        $good = 'great film', 'lovely day', 'well done', 'very nice', 'good work', 'so happy'
        $bad = 'awful film', 'rainy mess', 'badly done', 'very poor', 'weak work', 'so sad'
        $records = @($good | ForEach-Object { @{ text = $_; label = 'positive' } }) + @($bad | ForEach-Object { @{ text = $_; label = 'negative' } })
        $m = New-TrainableModel
        try {
            $info = $m | Start-GraLoRATraining -InputObject $records -MaxSteps 40 -BatchSize 4 -LearningRate 2e-3 -Schedule Constant 6>&1
            $run = $info | Where-Object { $_ -isnot [Management.Automation.InformationRecord] }
            ($info | Where-Object { $_ -is [Management.Automation.InformationRecord] }).MessageData.Message -join "`n" |
                Should -Match "Classification over 2 labels \(negative, positive\)"
            $run.Format | Should -Be 'Classification'
            $after = $m | Invoke-GraLoRAEvaluation -InputObject $records
            $after.Format | Should -Be 'Classification'
            $after.Tokens | Should -Be 12
            $after.Accuracy | Should -Be 1
            (Get-GraLoRAAdapter -Model $m).Parameters | Should -BeGreaterThan 0
        }
        finally { $m.Dispose() }
    }

    It 'stops at a step boundary on Ctrl+C (StopProcessing), saving a checkpoint that -Resume continues from' {
        $out = Join-Path $work 'stopped'
        $ps = [PowerShell]::Create()
        try {
            $null = $ps.AddScript({
                param($Manifest, $Tiny, $Data, $Out)
                Import-Module $Manifest
                $m = Import-BaseModel $Tiny
                $m | Add-GraLoRAAdapter -InformationAction Ignore | Out-Null
                $m | Start-GraLoRATraining -Dataset $Data -MaxSteps 100000 -BatchSize 2 -LoggingSteps 1 -Schedule Constant -OutputPath $Out -InformationAction Ignore
            }).AddArgument((Join-Path $root 'GraLoRA.psd1')).AddArgument($tiny).AddArgument($alpaca).AddArgument($out)
            $async = $ps.BeginInvoke()
            $metrics = Join-Path $out 'metrics.jsonl'
            $deadline = [DateTime]::UtcNow.AddSeconds(90)
            while (-not ((Test-Path $metrics) -and @(Get-Content $metrics).Count -ge 3) -and [DateTime]::UtcNow -lt $deadline -and -not $async.IsCompleted) {
                Start-Sleep -Milliseconds 100
            }
            @(Get-Content $metrics).Count | Should -BeGreaterOrEqual 3
            $ps.Stop()
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
        }
        finally { $ps.Dispose() }

        $checkpoints = @(Get-ChildItem $out -Directory -Filter 'checkpoint-*')
        $checkpoints.Count | Should -Be 1
        $state = Get-Content (Join-Path $checkpoints[0].FullName 'trainer_state.json') | ConvertFrom-Json
        $state.Step | Should -BeGreaterOrEqual 3
        $state.Step | Should -BeLessThan 100000
        $checkpoints[0].Name | Should -Be "checkpoint-$($state.Step)"

        $m = Import-BaseModel $tiny
        try {
            $m | Add-GraLoRAAdapter -InformationAction Ignore | Out-Null
            $run = $m | Start-GraLoRATraining -Dataset $alpaca -MaxSteps ($state.Step + 2) -BatchSize 2 -LoggingSteps 1 -Schedule Constant -OutputPath $out -Resume -InformationAction Ignore
            $run.Steps | Should -Be ($state.Step + 2)
            $run.History.Step | Should -Be @(($state.Step + 1), ($state.Step + 2))
        }
        finally { $m.Dispose() }
    }

    It 'trains the adapter named by -Adapter when several are active, and refuses to guess' {
        $m = Import-BaseModel $tiny
        try {
            $m | Add-GraLoRAAdapter -Name first -InformationAction Ignore | Out-Null
            $m | Add-GraLoRAAdapter -Name second -InformationAction Ignore | Out-Null
            $m | Set-GraLoRAAdapter first, second | Should -BeNullOrEmpty
            { $m | Start-GraLoRATraining -Dataset $alpaca -MaxSteps 1 -InformationAction Ignore } | Should -Throw -ErrorId 'AmbiguousAdapter,*'
            $run = $m | Start-GraLoRATraining -Dataset $alpaca -MaxSteps 2 -Adapter second -InformationAction Ignore
            $run.Adapter | Should -Be 'second'
            (Get-GraLoRAAdapter -Model $m | Where-Object Active).Name | Should -Be 'second'
        }
        finally { $m.Dispose() }
    }

    It '-OnNonFinite: a step whose loss turns non-finite is skipped with a warning naming it (default), or stops the run (Stop)' {
        # A learning rate of 1e30 sends the first Adam update to ~1e30, so the next forward overflows.
        $m = New-TrainableModel
        try {
            $run = $m | Start-GraLoRATraining -Dataset $alpaca -MaxSteps 3 -LearningRate 1e30 -Schedule Constant -WarmupSteps 0 `
                -InformationAction Ignore -WarningVariable warnings -WarningAction SilentlyContinue
            $run.Steps | Should -Be 3
            @($warnings).Count | Should -BeGreaterThan 0
            "$($warnings[0])" | Should -Match '^Step \d+ skipped \(no update\): the (loss|gradient norm) is'
        }
        finally { $m.Dispose() }
        $m = New-TrainableModel
        try {
            { $m | Start-GraLoRATraining -Dataset $alpaca -MaxSteps 3 -LearningRate 1e30 -Schedule Constant -WarmupSteps 0 -OnNonFinite Stop `
                -InformationAction Ignore } | Should -Throw -ErrorId 'NonFinite*'
        }
        finally { $m.Dispose() }
    }

    Context 'errors' {
        BeforeAll { $script:m = New-TrainableModel }
        AfterAll { $m.Dispose() }

        It 'fails with DatasetNotFound for a missing file' {
            { $m | Start-GraLoRATraining -Dataset (Join-Path $work 'nope.jsonl') -MaxSteps 1 } | Should -Throw -ErrorId 'DatasetNotFound,*'
        }

        It 'fails with InvalidDatasetRecord naming the file and line of a bad record' {
            $bad = Join-Path $work 'bad.jsonl'
            @('{"prompt": "a", "completion": "b"}', '{"prompt": "c", "completion": "d"}', '{"prompt": "e", ') | Set-Content $bad
            $err = { $m | Start-GraLoRATraining -Dataset $bad -MaxSteps 1 } | Should -Throw -ErrorId 'InvalidDatasetRecord,*' -PassThru
            $err.Exception.Message | Should -Match "'bad\.jsonl' line 3"
            "$($err.CategoryInfo.Category)" | Should -Be 'InvalidData'
        }

        It 'fails with NoActiveAdapter on a model without an adapter' {
            $plain = Import-BaseModel $tiny
            try {
                $err = { $plain | Start-GraLoRATraining -Dataset $alpaca -MaxSteps 1 } | Should -Throw -ErrorId 'NoActiveAdapter,*' -PassThru
                $err.Exception.Message | Should -Match 'Add-GraLoRAAdapter'
            }
            finally { $plain.Dispose() }
        }

        It 'fails with AdapterNotFound for an -Adapter the model lacks' {
            { $m | Start-GraLoRATraining -Dataset $alpaca -Adapter ghost -MaxSteps 1 } | Should -Throw -ErrorId 'AdapterNotFound,*'
        }

        It 'fails with InvalidTrainingOption for <Case>' -ForEach @(
            @{ Case = '-LearningRate 0'; Extra = @{ LearningRate = 0 }; Pattern = 'LearningRate' }
            @{ Case = '-Epochs 0'; Extra = @{ Epochs = 0 }; Pattern = 'Epochs' }
            @{ Case = '-WarmupRatio 1'; Extra = @{ WarmupRatio = 1.0 }; Pattern = 'WarmupRatio' }
            @{ Case = '-SaveSteps without -OutputPath'; Extra = @{ SaveSteps = 5 }; Pattern = 'OutputDirectory' }
            @{ Case = '-Resume without -OutputPath'; Extra = @{ Resume = $true }; Pattern = 'OutputPath' }
            @{ Case = 'both validation sources'; Extra = @{ ValidationDataset = 'x.jsonl'; ValidationSplit = 0.1 }; Pattern = 'ValidationSplit' }
        ) {
            $err = { $m | Start-GraLoRATraining -Dataset $alpaca -MaxSteps 1 @Extra } | Should -Throw -ErrorId 'InvalidTrainingOption,*' -PassThru
            $err.Exception.Message | Should -Match $Pattern
            "$($err.CategoryInfo.Category)" | Should -Be 'InvalidArgument'
        }

        It 'fails with CheckpointNotFound when -Resume finds no checkpoint' {
            $empty = Join-Path $work 'no-checkpoints'
            New-Item -ItemType Directory $empty | Out-Null
            { $m | Start-GraLoRATraining -Dataset $alpaca -MaxSteps 1 -OutputPath $empty -Resume -InformationAction Ignore } | Should -Throw -ErrorId 'CheckpointNotFound,*'
        }

        It 'fails with NoClassificationHead when evaluating text/label records on a model without a head' {
            $records = foreach ($i in 1..8) { @{ text = "item $i"; label = if ($i % 2) { 'odd' } else { 'even' } } }
            { $m | Invoke-GraLoRAEvaluation -InputObject $records } | Should -Throw -ErrorId 'NoClassificationHead,*'
        }

        It 'fails with InvalidDatasetRecord for an -InputObject item that is not a record' {
            { $m | Start-GraLoRATraining -InputObject 'just text' -MaxSteps 1 } | Should -Throw -ErrorId 'InvalidDatasetRecord,*'
        }
    }
}

Describe 'Invoke-GraLoRAEvaluation' {
    BeforeAll { $script:m = New-TrainableModel }
    AfterAll { $m.Dispose() }

    It 'returns loss, perplexity = exp(loss) and the tokens predicted, in one EvaluationRun' {
        $e = $m | Invoke-GraLoRAEvaluation -Dataset $alpaca -BatchSize 16
        $e.GetType().FullName | Should -Be 'GraLoRA.PowerShell.EvaluationRun'
        $e.Format | Should -Be 'Alpaca'
        $e.Examples | Should -Be 100
        $e.Loss | Should -BeGreaterThan 0
        $e.Perplexity | Should -Be ([Math]::Exp($e.Loss))
        $e.Tokens | Should -BeGreaterThan 100
        $e.ExactMatch | Should -BeNullOrEmpty
        $e.Total | Should -BeNullOrEmpty
        # The batch size does not change the result (token-weighted mean, no shuffling).
        $other = $m | Invoke-GraLoRAEvaluation -Dataset $alpaca -BatchSize 3
        $other.Tokens | Should -Be $e.Tokens
        [Math]::Abs($other.Loss - $e.Loss) | Should -BeLessThan 1e-5
        ($e | Out-String) | Should -Match 'Perplexity\s+:'
    }

    It 'scores only the first -Limit examples, the same as those records given as -InputObject' {
        $first = $m | Invoke-GraLoRAEvaluation -Dataset $alpaca -Limit 4
        $first.Examples | Should -Be 4
        $records = Get-Content $alpaca -TotalCount 4 | ConvertFrom-Json
        $same = $m | Invoke-GraLoRAEvaluation -InputObject $records
        $same.Tokens | Should -Be $first.Tokens
        [Math]::Abs($same.Loss - $first.Loss) | Should -BeLessThan 1e-6
    }

    It 'generates greedy answers for -ExactMatch and counts the matches' {
        $e = $m | Invoke-GraLoRAEvaluation -Dataset $chat -ExactMatch -Limit 3
        $e.Total | Should -Be 3
        $e.Samples.Count | Should -Be 3
        $e.Correct | Should -Be @($e.Samples | Where-Object Correct).Count
        $e.ExactMatch | Should -Be ($e.Correct / 3)
        $e.Samples[0].Expected | Should -Be '1 + 1 = 2.'
        $e.Samples[0].Location | Should -Be "'tiny-chat.jsonl' line 1"
    }

    It 'fails with ExactMatchNotSupported for plain text' {
        $text = foreach ($i in 1..3) { @{ text = "line $i" } }
        { $m | Invoke-GraLoRAEvaluation -InputObject $text -ExactMatch } | Should -Throw -ErrorId 'ExactMatchNotSupported,*'
    }

    It 'fails with DatasetNotFound for a missing file' {
        { $m | Invoke-GraLoRAEvaluation -Dataset (Join-Path $work 'missing.jsonl') } | Should -Throw -ErrorId 'DatasetNotFound,*'
    }
}

Describe 'Pipeline binding' {
    It '<Name> takes -Model from the pipeline by value and by property name' -ForEach $ModelCmdlets {
        $attributes = (Get-Command $Name).Parameters['Model'].Attributes | Where-Object { $_ -is [Management.Automation.ParameterAttribute] }
        $attributes | ForEach-Object { $_.ValueFromPipeline | Should -BeTrue; $_.ValueFromPipelineByPropertyName | Should -BeTrue }
    }

    It 'formats a TrainingRun as a table with steps, losses and status' {
        $m = New-TrainableModel
        try {
            $run = $m | Start-GraLoRATraining -Dataset $alpaca -MaxSteps 2 -LoggingSteps 1 -InformationAction Ignore
            $text = $run | Out-String
            $text | Should -Match 'Adapter\s+Steps\s+FinalLoss'
            $text | Should -Match 'default\s+2/2\s+\d+\.\d{4}'
            $text | Should -Match 'Completed'
            ($run | Get-GraLoRAAdapter).Name | Should -Be 'default'
        }
        finally { $m.Dispose() }
    }
}
