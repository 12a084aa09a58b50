BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:fixtures = if ($env:GRALORA_FIXTURES) { $env:GRALORA_FIXTURES } else { Join-Path (Split-Path $root) 'shared/fixtures' }
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-encoders-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null

    $good = 'great film', 'lovely day', 'well done', 'very nice', 'good work', 'so happy', 'great day', 'nice film'
    $bad = 'awful film', 'rainy mess', 'badly done', 'very poor', 'weak work', 'so sad', 'awful day', 'poor film'
    $script:records = @($good | ForEach-Object { @{ text = $_; label = 'positive' } }) + @($bad | ForEach-Object { @{ text = $_; label = 'negative' } })
    $words = ($good + $bad) -split ' ' | Sort-Object -Unique
    $script:tinyBert = (New-BaseModel (Join-Path $work 'bert') -Architecture bert -Labels negative, positive -Words $words -Seed 2).FullName
}

AfterAll {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Encoders' {
    It 'Import-BaseModel loads a BERT checkpoint as a classifier with named labels' {
        $m = Import-BaseModel (Join-Path $fixtures 'models/bert') -Labels ham, spam
        try {
            $m.IsEncoder | Should -BeTrue
            $m.Architecture | Should -Be 'bert'
            $m.ClassLabels | Should -Be @('ham', 'spam')
            $m.Transformer.ClassificationLabels | Should -Be 2
            (Get-BaseModel -Model $m).ClassificationLabels | Should -Be 2
        }
        finally { $m.Dispose() }
    }

    It 'Invoke-BaseModel returns and writes the encoder outputs, token types included' {
        $m = Import-BaseModel (Join-Path $fixtures 'models/bert_seqcls')
        try {
            $ids = [int[][]] @(, [int[]] (2, 40, 41, 3, 50, 3))
            $types = [int[][]] @(, [int[]] (0, 0, 0, 0, 1, 1))
            $out = Invoke-BaseModel -Model $m -InputIds $ids -TokenTypeIds $types -HiddenStates
            try {
                $out.GetType().FullName | Should -Be 'GraLoRA.Models.EncoderForwardOutput'
                $out.Logits[0].Count | Should -Be 3
                $out.PoolerOutput[0].Count | Should -Be 64
                $out.HiddenStateCount | Should -Be 3
                $plain = Invoke-BaseModel -Model $m -InputIds $ids
                try { $plain.Logits[0][0] | Should -Not -Be $out.Logits[0][0] } finally { $plain.Dispose() }
            }
            finally { $out.Dispose() }
            $file = Invoke-BaseModel -Model $m -InputIds $ids -TokenTypeIds $types -OutFile (Join-Path $work 'out.safetensors')
            $file | Should -BeOfType ([IO.FileInfo])
            $file.Length | Should -BeGreaterThan 0
            { Invoke-BaseModel -Model $m -InputIds $ids -TokenTypeIds ([int[][]] @(, [int[]] (0, 0, 0, 0, 2, 2))) } | Should -Throw -ErrorId 'TokenTypeOutOfRange,*'
        }
        finally { $m.Dispose() }
    }

    It 'trains a tiny BERT classifier, reports classification metrics and classifies through the pipeline' {
        $m = Import-BaseModel $tinyBert
        try {
            $m | Add-GraLoRAAdapter -Rank 8 -K 2 -TargetModule all-linear -InformationAction Ignore | Out-Null
            (Get-GraLoRAAdapter -Model $m).Targets | Should -Not -Contain 'classifier'
            $before = $m | Invoke-GraLoRAEvaluation -InputObject $records
            $run = $m | Start-GraLoRATraining -InputObject $records -MaxSteps 40 -BatchSize 8 -LearningRate 3e-3 -InformationAction Ignore
            $run.Format | Should -Be 'Classification'
            $eval = $m | Invoke-GraLoRAEvaluation -InputObject $records
            $eval.Classification.Labels | Should -Be @('negative', 'positive')
            # How well it learns is the seeded Core test's business (EncoderAdapterTests); here: it trained at all.
            $eval.Loss | Should -BeLessThan $before.Loss
            $eval.MacroF1 | Should -Be $eval.Classification.MacroF1
            ($eval.Classification.ConfusionMatrix | ForEach-Object { $_ | Measure-Object -Sum } | Measure-Object -Property Sum -Sum).Sum | Should -Be 16

            # The pipeline's predictions agree with the evaluation: same share of the training records right.
            $predictions = @($records.text | Invoke-GraLoRAClassification -Model $m -BatchSize 5)
            $predictions.Count | Should -Be 16
            $predictions[0].GetType().FullName | Should -Be 'GraLoRA.Models.ClassificationPrediction'
            $predictions.Text | Should -Be $records.text
            $correct = @(for ($i = 0; $i -lt 16; $i++) { if ($predictions[$i].Label -eq $records[$i].label) { 1 } }).Count
            $correct / 16 | Should -Be $eval.Accuracy
            ($predictions[0].Probabilities.Values | Measure-Object -Sum).Sum | Should -BeGreaterThan 0.999
            $predictions[0].Score | Should -Be ($predictions[0].Probabilities.Values | Measure-Object -Maximum).Maximum
            # Objects with a Text property bind by name and give the same answer as the string.
            $fromObjects = @([pscustomobject]@{ Text = $records[5].text } | Invoke-GraLoRAClassification -Model $m)
            $fromObjects[0].Label | Should -Be $predictions[5].Label
        }
        finally { $m.Dispose() }
    }

    It 'refuses labels outside the model''s set, naming the record' {
        $m = Import-BaseModel $tinyBert
        try {
            $bad = $records + @(@{ text = 'meh'; label = 'neutral' })
            { $m | Invoke-GraLoRAEvaluation -InputObject $bad } | Should -Throw -ErrorId 'UnknownClassLabel,*' -ExpectedMessage '*neutral*'
            { 'x' | Invoke-GraLoRAClassification -Model $m -TextPair a, b } | Should -Throw -ErrorId 'TextPairCountMismatch,*'
        }
        finally { $m.Dispose() }
    }
}
