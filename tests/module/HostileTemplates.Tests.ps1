# A chat template is code that comes with every downloaded model. Hostile ones used to kill the whole pwsh process
# (a stack overflow .NET cannot catch) or hang it; each must now fail with a clear error id, and the same session must go
# on to load a normal model and render its template. These run in the Pester process itself on purpose: if a case
# still killed the process, the whole run would fail.
BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    $script:manifest = Join-Path $root 'GraLoRA.psd1'
    Import-Module $manifest -Force
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-pester-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:normal = New-BaseModel (Join-Path $work 'normal') -Architecture qwen2 -Seed 3

    # A copy of the normal model whose tokenizer_config.json carries the given chat template.
    function script:New-ModelWithTemplate([string] $Name, [string] $Template) {
        $folder = Join-Path $work $Name
        Copy-Item $normal.FullName $folder -Recurse
        $configPath = Join-Path $folder 'tokenizer_config.json'
        $config = Get-Content $configPath -Raw | ConvertFrom-Json -AsHashtable
        $config['chat_template'] = $Template
        $config | ConvertTo-Json -Depth 32 | Set-Content $configPath
        $folder
    }
}

AfterAll {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Hostile chat templates' {
    It '<Name> fails with <ErrorId>, then the same session imports a normal model and renders its template' -ForEach @(
        @{ Name = '200k-nested-parentheses'; ErrorId = 'ChatTemplateTooDeep'; Template = '{{ ' + ('(' * 200000) + '1' + (')' * 200000) + ' }}' }
        @{ Name = 'runaway-macro-recursion'; ErrorId = 'ChatTemplateTooDeep'; Template = '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}' }
        # Python's sandboxed Jinja refuses range(1000000) itself (its MAX_RANGE is 100,000), and so does this engine...
        @{ Name = 'million-by-million-loops'; ErrorId = 'TemplateRenderError'; Template = '{% for i in range(1000000) %}{% for j in range(1000000) %}x{% endfor %}{% endfor %}' }
        # ...so at the largest range it allows, the step budget is what stops the loops.
        @{ Name = 'sandbox-range-squared'; ErrorId = 'ChatTemplateBudgetExceeded'; Template = '{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}' }
        @{ Name = 'ten-billion-characters'; ErrorId = 'ChatTemplateBudgetExceeded'; Template = '{{ "x" * 10000000000 }}' }
    ) {
        $hostile = Import-BaseModel (New-ModelWithTemplate $Name $Template)
        try {
            { Invoke-GraLoRAGeneration -Model $hostile -Messages @{ role = 'user'; content = 'Hi' } -MaxNewTokens 2 -Greedy } |
                Should -Throw -ErrorId "$ErrorId,*"
        }
        finally { $hostile.Dispose() }

        $model = Import-BaseModel $normal.FullName
        try {
            $r = Invoke-GraLoRAGeneration -Model $model -Messages @{ role = 'user'; content = 'Hi' } -MaxNewTokens 2 -Greedy
            $r.Prompt | Should -Be "<|begin_of_text|><|im_start|>user`nHi<|im_end|>`n<|im_start|>assistant`n"
        }
        finally { $model.Dispose() }
    }

    It 'stops training data preparation with the error id, naming the record' {
        $model = Import-BaseModel (New-ModelWithTemplate 'training' '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}')
        try {
            $records = @(
                [pscustomobject]@{ messages = @(@{ role = 'user'; content = 'Hi' }, @{ role = 'assistant'; content = 'Hello' }) }
            )
            $e = { $model | Add-GraLoRAAdapter -TargetModule all-linear -InformationAction Ignore |
                    Start-GraLoRATraining -InputObject $records -MaxSteps 1 -InformationAction Ignore } | Should -Throw -ErrorId 'ChatTemplateTooDeep,*' -PassThru
            $e.Exception.Message | Should -Match 'InputObject'
            $e.Exception.Message | Should -Match 'MaxRenderDepth'
        }
        finally { $model.Dispose() }
    }

    # Stop() is what Ctrl+C does. Whether the token reaches the template is proven without timing in Core's tests
    # (HostileTemplateTests.CancellationStopsRenderingAtOnce, BaseModelTextTests.ChatPassesItsCancellationToTheTemplate);
    # this checks the cmdlet's path end to end: Stop() during rendering leaves the command stopped, with no error.
    # (Measured on the shared 2-core machine: Stop() returned after 0.12 s; with the token not passed, after 11.7 s,
    # when the step budget ended the loop.)
    It 'Ctrl+C while a template renders stops the command' {
        $folder = New-ModelWithTemplate 'endless' '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}'
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                param($Manifest, $Folder)
                Import-Module $Manifest
                $m = Import-BaseModel $Folder
                Invoke-GraLoRAGeneration -Model $m -Messages @{ role = 'user'; content = 'Hi' } -MaxNewTokens 2 -Verbose
            }).AddArgument($manifest).AddArgument($folder)
            $async = $ps.BeginInvoke()
            # The cmdlet says when it starts rendering; then Stop() is what Ctrl+C does (StopProcessing).
            $deadline = [DateTime]::UtcNow.AddMinutes(5)
            while (-not ($ps.Streams.Verbose | Where-Object Message -Like 'Rendering the chat template*') -and -not $async.IsCompleted -and [DateTime]::UtcNow -lt $deadline) {
                Start-Sleep -Milliseconds 5
            }
            $ps.Streams.Verbose.Message | Should -Contain "Rendering the chat template of 'endless' for 1 message(s)"
            $ps.Stop()
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            @($ps.Streams.Error | Where-Object { $_.FullyQualifiedErrorId -like 'ChatTemplateBudgetExceeded*' }).Count | Should -Be 0
        }
        finally { $ps.Dispose() }
    }
}
