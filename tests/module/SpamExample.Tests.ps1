BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    $script:example = Join-Path $root 'examples/07-spam-classification.ps1'
    $script:result = Join-Path ([IO.Path]::GetTempPath()) ("gralora-spam-" + [guid]::NewGuid().ToString('N') + '.json')
}

AfterAll { Remove-Item $result -Force -ErrorAction SilentlyContinue }

Describe 'examples/07-spam-classification.ps1' {
    It 'fetches the corpus, trains LoRA and GraLoRA at equal parameters and reports their metrics (short CI setting)' {
        $rows = @(& $example -Steps 4 -TrainPerClass 16 -TestPerClass 8 -MaxLength 32 -Words 200 -ResultFile $result 6>$null)
        $rows.Method | Should -Be @('LoRA', 'GraLoRA')
        $rows[0].AdapterParameters | Should -Be $rows[1].AdapterParameters
        $rows[1].K | Should -Be 2
        foreach ($row in $rows) {
            $row.TrainExamples | Should -Be 32
            $row.TestExamples | Should -Be 16
            $row.Accuracy | Should -BeGreaterOrEqual 0
            $row.Accuracy | Should -BeLessOrEqual 1
            $row.MCC | Should -BeGreaterOrEqual -1
            $row.ConfusionMatrix | Should -Match '^\[\d+ \d+\] \[\d+ \d+\]$'
        }
        (Get-Content $result -Raw | ConvertFrom-Json).Count | Should -Be 2
    }
}
