# The doc test: README.md and docs/*.md say only what the code does. Every example runs here or says why it cannot, and
# every cmdlet and parameter they name exists. The rules: docs/development.md, "The doc test".
BeforeDiscovery {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    . (Join-Path $PSScriptRoot 'DocTestHelpers.ps1')
    $script:Pages = Get-DocPage $root | ForEach-Object {
        $blocks = @(Get-DocBlock $_.Path)
        @{
            Page = $_.Name; Path = $_.Path
            Runs = [bool]@($blocks | Where-Object { -not $_.Marker -and $_.Language -in 'powershell', 'fsharp', 'bash' }).Count
        }
    }
}

BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    . (Join-Path $PSScriptRoot 'DocTestHelpers.ps1')
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:Cmdlets = @{}
    Get-Command -Module GraLoRA | ForEach-Object { $Cmdlets[$_.Name] = $_ }
    $script:Sandboxes = [Collections.Generic.List[string]]::new()
    $script:Models = $null   # made at the first page that runs examples
}

AfterAll {
    foreach ($dir in @($Sandboxes) + $Models) { if ($dir) { Remove-Item $dir -Recurse -Force -ErrorAction SilentlyContinue } }
}

Describe 'Documentation pages' {
    It 'README links every docs page, and every page it links exists' {
        $readme = Get-Content (Join-Path $root 'README.md') -Raw
        $linked = [regex]::Matches($readme, '\]\((docs/[^)#]+)') | ForEach-Object { $_.Groups[1].Value } | Sort-Object -Unique
        $linked | ForEach-Object { Join-Path $root $_ | Should -Exist }
        Get-ChildItem (Join-Path $root 'docs') -Filter *.md | ForEach-Object { $linked | Should -Contain "docs/$($_.Name)" }
    }

    It '<Page>: every code block is fenced with a language, and every marker has a reason or a file it quotes' -ForEach $Pages {
        $problems = @(Get-DocIndentedCode $Path | ForEach-Object { "${Page}:${_}: an indented code block: fence it with a language (text for formulas and output)" }) +
        @(foreach ($block in Get-DocBlock $Path) {
            $where = "${Page}:$($block.Line)"
            if (-not $block.Language) { "${where}: a fenced block without a language (text for output)" }
            elseif ($block.Language -notin 'powershell', 'fsharp', 'bash', 'csharp', 'python', 'json', 'text') { "${where}: unknown language '$($block.Language)'" }
            if ($block.Language -in 'csharp', 'python' -and -not $block.Marker) { "${where}: $($block.Language) is not run here: mark it with a not-run line and the reason" }
            if ($block.Marker -eq 'not-run' -and $block.Reason.Length -lt 8) { "${where}: say why it cannot run here" }
            if ($block.Marker -eq 'from') { Test-DocQuote $block $where $root }
        })
        $problems | Should -BeNullOrEmpty
    }

    It '<Page>: names only cmdlets and parameters that exist, in code and in prose' -ForEach $Pages {
        $problems = @(
            foreach ($block in Get-DocBlock $Path | Where-Object Language -EQ 'powershell') { Test-DocPowerShell $block.Code "${Page}:$($block.Line)" $Cmdlets }
            Test-DocProse @(Get-DocProse $Path) $Page $Cmdlets
        )
        $problems | Should -BeNullOrEmpty
    }

    It '<Page>: bash examples call ./build.sh commands and repository files that exist' -ForEach $Pages {
        $problems = foreach ($block in Get-DocBlock $Path | Where-Object Language -EQ 'bash') { Test-DocBash $block.Code "${Page}:$($block.Line)" $root }
        $problems | Should -BeNullOrEmpty
    }

    It '<Page>: its examples run, in order, on the tiny models' -ForEach ($Pages | Where-Object { $_.Runs }) {
        $blocks = @(Get-DocBlock $Path | Where-Object { -not $_.Marker })
        if (-not $Models) { $script:Models = New-DocModels }
        $sandbox = New-DocSandbox $root $Models
        $Sandboxes.Add($sandbox)
        $powershell = @($blocks | Where-Object Language -EQ 'powershell')
        $fsharp = @($blocks | Where-Object Language -EQ 'fsharp')
        $bash = @($blocks | Where-Object Language -EQ 'bash')
        if ($powershell) { Invoke-DocPowerShell $powershell $Page $sandbox | Should -BeNullOrEmpty }
        if ($fsharp) { Invoke-DocFSharp $fsharp $Page $sandbox $root | Should -BeNullOrEmpty }
        foreach ($block in $bash) {
            Push-Location $sandbox
            try { $output = & bash -euo pipefail -c $block.Code 2>&1 | Out-String } finally { Pop-Location }
            $LASTEXITCODE | Should -Be 0 -Because "${Page}:$($block.Line): $output"
        }
    }
}

Describe 'The doc test itself' {
    BeforeAll {
        $script:fake = Join-Path ([IO.Path]::GetTempPath()) "gralora-doctest-$([Guid]::NewGuid().ToString('N')).md"
        @(
            '- **Export-BaseModel** `-Path [-Colour]` writes.'
            'Run `Invoke-BaseModel -OutFil x` or `Start-GraLoRATrainning`.'
            '```powershell'
            '# not-run: the Hub'
            'Import-BaseModel -Name x/y -Revisionn main'
            '```'
            '```'
            'no language'
            '```'
            '```bash'
            './build.sh deploy examples/nope.ps1'
            '```'
            ''
            '- a list item'
            ''
            '    its second paragraph'
            ''
            'A paragraph.'
            ''
            '    Import-BaseModel ./indented'
        ) | Set-Content $fake
    }
    AfterAll { Remove-Item $fake -ErrorAction SilentlyContinue }

    It 'finds a parameter a cmdlet lacks in a bold-cmdlet bullet, in inline code and in a not-run block, a cmdlet that does not exist, and an indented code block' {
        $prose = @(Test-DocProse @(Get-DocProse $fake) 'fake.md' $Cmdlets)
        $prose | Where-Object { $_ -like 'fake.md:1: Export-BaseModel has no parameter -Colour*' } | Should -Not -BeNullOrEmpty
        $prose | Where-Object { $_ -like 'fake.md:2: Invoke-BaseModel has no parameter -OutFil*' } | Should -BeNullOrEmpty -Because '-OutFil is an unambiguous prefix of -OutFile, which PowerShell binds'
        $prose | Where-Object { $_ -like 'fake.md:2: no cmdlet Start-GraLoRATrainning' } | Should -Not -BeNullOrEmpty
        $block = @(Get-DocBlock $fake)[0]
        $block.Marker | Should -Be 'not-run'
        Test-DocPowerShell $block.Code 'fake.md:3' $Cmdlets | Should -BeLike 'fake.md:3: Import-BaseModel has no parameter -Revisionn*'
        @(Get-DocBlock $fake)[1].Language | Should -Be ''
        $bash = @(Test-DocBash @(Get-DocBlock $fake)[2].Code 'fake.md:10' $root)
        $bash | Should -Contain "fake.md:10: ./build.sh has no command 'deploy'"
        $bash | Should -Contain 'fake.md:10: no file or folder examples/nope.ps1 in the repository'
        Get-DocIndentedCode $fake | Should -Be 20 -Because 'an indented block after a paragraph escapes the fences; one inside a list item is its text'
    }

    It 'reports the page line of a statement that fails' {
        $sandbox = Join-Path ([IO.Path]::GetTempPath()) "gralora-doctest-$([Guid]::NewGuid().ToString('N'))"
        $null = New-Item -ItemType Directory $sandbox
        $Sandboxes.Add($sandbox)
        foreach ($name in 'GraLoRA.psd1', 'module', 'en-US') { $null = New-Item -ItemType SymbolicLink -Path (Join-Path $sandbox $name) -Target (Join-Path $root $name) }
        $blocks = @([pscustomobject]@{ CodeLine = 10; Code = "`$a = 1`nImport-BaseModel ./missing" }, [pscustomobject]@{ CodeLine = 20; Code = '$b = 2' })
        Invoke-DocPowerShell $blocks 'fake.md' $sandbox | Should -BeLike "DOC-FAILED fake.md:11: *missing*"
    }
}
