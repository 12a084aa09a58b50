BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    $script:example = Join-Path $root 'examples/03-ci-training.ps1'
    $script:chat = Join-Path $root 'examples/data/tiny-chat.jsonl'
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-ci-example-" + [guid]::NewGuid().ToString('N'))
    # The example runs as CI runs it: a separate, non-interactive pwsh whose exit code is the verdict.
    # `dotnet pwsh` is the repository's pinned tool, found from the checkout's .config/dotnet-tools.json.
    function Invoke-Example([string[]] $Arguments) {
        Push-Location $root
        try {
            $output = & dotnet pwsh -NoProfile -NonInteractive -File $example @Arguments 2>&1
            [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($output | Out-String) }
        }
        finally { Pop-Location }
    }
}

AfterAll { Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'examples/03-ci-training.ps1' {
    It 'trains, writes artefacts and exits 0' {
        $out = Join-Path $work 'ok'
        $r = Invoke-Example @('-Dataset', $chat, '-Output', $out, '-Steps', '4')
        $r.ExitCode | Should -Be 0 -Because $r.Output
        $summary = Get-Content (Join-Path $out 'summary.json') -Raw | ConvertFrom-Json
        $summary.steps | Should -Be 4
        $summary.validation_loss | Should -BeGreaterThan 0
        Join-Path $out 'adapter/adapter_model.safetensors' | Should -Exist
        Join-Path $out 'run/metrics.jsonl' | Should -Exist
        Join-Path $out 'run/training.png' | Should -Exist
        # The log: the per-step lines asked for, and nothing from the other cmdlets (quiet with progress off).
        @($r.Output -split '\r?\n' -match '^step\s+\d+/4  loss ').Count | Should -Be 1
        $r.Output | Should -Not -Match 'trainable params'
    }

    It 'exits 2 when the quality gate fails' {
        $r = Invoke-Example @('-Dataset', $chat, '-Output', (Join-Path $work 'gate'), '-Steps', '2', '-MaxValidationLoss', '0.0001')
        $r.ExitCode | Should -Be 2 -Because $r.Output
        $r.Output | Should -Match 'quality gate failed'
    }

    It 'exits 1 on a missing dataset, naming it' {
        $missing = Join-Path $work 'no-such.jsonl'
        $r = Invoke-Example @('-Dataset', $missing, '-Output', (Join-Path $work 'bad'), '-Steps', '2')
        $r.ExitCode | Should -Be 1
        $r.Output | Should -Match 'no-such\.jsonl'
    }
}
