# Reading README.md and docs/*.md for the doc test (Docs.Tests.ps1): fenced blocks with their language, first line and
# marker; the prose outside them; and the checks of cmdlet and parameter names. docs/development.md describes the rules.

$script:CmdletNamePattern = '\b(?:Add|Get|Set|Remove|Import|Export|Save|Invoke|Start|Merge|Split|Measure|Find|New|ConvertTo|ConvertFrom)-(?:GraLoRA[A-Za-z]*|LoRA[A-Za-z]*|BaseModel|TorchDevice|GradientEntanglement)\b(?!\.ps1)'
$script:LanguageAliases = @{ powershell = 'powershell'; pwsh = 'powershell'; ps1 = 'powershell'; fsharp = 'fsharp'; 'f#' = 'fsharp'; fsx = 'fsharp'
    bash = 'bash'; sh = 'bash'; shell = 'bash'; csharp = 'csharp'; 'c#' = 'csharp'; cs = 'csharp'; python = 'python'; py = 'python'
    json = 'json'; text = 'text' }

# The pages: README.md and every docs/*.md, as objects with their path relative to the repository.
function Get-DocPage([string] $Root) {
    @(Get-Item (Join-Path $Root 'README.md')) + @(Get-ChildItem (Join-Path $Root 'docs') -Filter *.md | Sort-Object Name) |
        ForEach-Object { [pscustomobject]@{ Path = $_.FullName; Name = [IO.Path]::GetRelativePath($Root, $_.FullName) } }
}

# The fenced blocks of a page: Language (normalised, or the raw tag when unknown, or '' when none), Line (of the
# opening fence), Code, and Marker/Reason from a first line '# not-run: …', '// not-run: …', '# from: …' or '// from: …'.
function Get-DocBlock([string] $Path) {
    $lines = Get-Content $Path
    $blocks = [Collections.Generic.List[object]]::new()
    for ($i = 0; $i -lt $lines.Count; $i++) {
        if ($lines[$i] -notmatch '^\s*```\s*(\S*)\s*$') { continue }
        $tag = $Matches[1].ToLowerInvariant()
        $start = $i + 1
        $body = [Collections.Generic.List[string]]::new()
        for ($i++; $i -lt $lines.Count -and $lines[$i] -notmatch '^\s*```\s*$'; $i++) { $body.Add($lines[$i]) }
        $marker = $null; $reason = $null; $codeLines = @($body)
        if ($body.Count -gt 0 -and $body[0] -match '^\s*(?:#|//)\s*(not-run|from):\s*(.*)$') {
            $marker = $Matches[1]; $reason = $Matches[2].Trim(); $codeLines = @($body | Select-Object -Skip 1)
        }
        $blocks.Add([pscustomobject]@{
            Language = if ($LanguageAliases.ContainsKey($tag)) { $LanguageAliases[$tag] } else { $tag }
            Line = $start; Code = $codeLines -join "`n"; CodeLine = $start + 1 + [int]($null -ne $marker)
            Marker = $marker; Reason = $reason
        })
    }
    $blocks
}

# The page's text outside fenced blocks, as lines (fenced lines blanked, so line numbers stay).
function Get-DocProse([string] $Path) {
    $inFence = $false
    foreach ($line in Get-Content $Path) {
        if ($line -match '^\s*```') { $inFence = -not $inFence; ''; continue }
        if ($inFence) { '' } else { $line }
    }
}

# Line numbers where an indented code block starts (four spaces or a tab after a blank line, outside fences and lists):
# such a block has no language and no marker, so it would escape the doc test.
function Get-DocIndentedCode([string] $Path) {
    $inFence = $false; $previous = ''; $lastText = ''; $number = 0
    foreach ($line in Get-Content $Path) {
        $number++
        if ($line -match '^\s*```') { $inFence = -not $inFence }
        elseif (-not $inFence -and $line -match '^(    |\t)\s*\S' -and $previous -match '^\s*$' -and $lastText -notmatch '^\s*([-*+]|\d+\.)\s|^\s') { $number }
        if ($line -match '\S') { $lastText = $line }
        $previous = $line
    }
}

# 'Problem' strings for a parameter name that the cmdlet does not have (or that is ambiguous), as PowerShell binds it.
function Test-DocParameter([Management.Automation.CommandInfo] $Command, [string] $Parameter, [string] $Where) {
    try { $null = $Command.ResolveParameter($Parameter) }
    catch { "${Where}: $($Command.Name) has no parameter -$Parameter ($($_.Exception.Message.Split("`n")[0]))" }
}

# Problems with the cmdlets and parameters a PowerShell block names (every block, runnable or not).
function Test-DocPowerShell([string] $Code, [string] $Where, [hashtable] $Cmdlets) {
    $tokens = $null; $errors = $null
    $ast = [Management.Automation.Language.Parser]::ParseInput($Code, [ref] $tokens, [ref] $errors)
    foreach ($e in $errors) { "${Where}: does not parse, line $($e.Extent.StartLineNumber) of the block: $($e.Message)" }
    foreach ($call in $ast.FindAll({ param($n) $n -is [Management.Automation.Language.CommandAst] }, $true)) {
        $name = $call.GetCommandName()
        if (-not $name -or $name -notmatch "^$CmdletNamePattern$") { continue }
        if (-not $Cmdlets.ContainsKey($name)) { "${Where}: no cmdlet $name"; continue }
        foreach ($p in $call.CommandElements | Where-Object { $_ -is [Management.Automation.Language.CommandParameterAst] }) {
            Test-DocParameter $Cmdlets[$name] $p.ParameterName $Where
        }
    }
}

# -Name tokens in a piece of inline code, leaving out hyphens inside words (Get-Content) and negative numbers.
function Get-DocParameterToken([string] $Text) {
    [regex]::Matches($Text, '(?<![\w-])-([A-Za-z][A-Za-z0-9]*)') | ForEach-Object { $_.Groups[1].Value }
}

# Problems in the prose: cmdlet names that do not exist; inline code such as `Import-BaseModel -Name org/model` whose
# parameters the cmdlet lacks; parameters in backticks in a bullet or paragraph that starts with a bold cmdlet name.
function Test-DocProse([string[]] $Lines, [string] $Page, [hashtable] $Cmdlets) {
    $owner = $null
    for ($i = 0; $i -lt $Lines.Count; $i++) {
        $line = $Lines[$i]; $where = "${Page}:$($i + 1)"
        foreach ($m in [regex]::Matches($line, $CmdletNamePattern)) { if (-not $Cmdlets.ContainsKey($m.Value)) { "${where}: no cmdlet $($m.Value)" } }
        if ($line -match "^\s*(?:- )?\*\*($CmdletNamePattern)\*\*") { $owner = $Matches[1] }
        elseif ($line -match '^\s*$' -or $line -match '^\s*(- |#|\|)') { $owner = $null }
        foreach ($span in [regex]::Matches($line, '`([^`]+)`') | ForEach-Object { $_.Groups[1].Value }) {
            $segments = @($span -split '[|;]' | ForEach-Object Trim)
            if ($segments[0] -match "^($CmdletNamePattern)(\s|$)") {
                foreach ($segment in $segments) {
                    if ($segment -notmatch "^($CmdletNamePattern)(\s|$)") { continue }
                    $name = $Matches[1]
                    if ($Cmdlets.ContainsKey($name)) { Get-DocParameterToken $segment | ForEach-Object { Test-DocParameter $Cmdlets[$name] $_ $where } }
                }
            }
            elseif ($owner -and $Cmdlets.ContainsKey($owner) -and $span -notmatch '^[A-Z][a-z]+-[A-Z]') {
                Get-DocParameterToken $span | ForEach-Object { Test-DocParameter $Cmdlets[$owner] $_ $where }
            }
        }
    }
}

# Problems in a bash block: ./build.sh commands build.sh does not have, repository paths that do not exist.
function Test-DocBash([string] $Code, [string] $Where, [string] $Root) {
    $commands = Select-String -Path (Join-Path $Root 'build.sh') -Pattern '^\s+([a-z]+)\)' | ForEach-Object { $_.Matches[0].Groups[1].Value }
    foreach ($m in [regex]::Matches($Code, '\./build\.sh\s+([a-z]+)')) {
        if ($commands -notcontains $m.Groups[1].Value) { "${Where}: ./build.sh has no command '$($m.Groups[1].Value)'" }
    }
    foreach ($m in [regex]::Matches($Code, '(?<![\w./-])((?:src|tests|examples|bench|docs|tools|build|module)/[\w./-]+)')) {
        $path = $m.Groups[1].Value.TrimEnd('.')
        if ($path -match '/(bin|obj)/') { continue }   # build outputs
        if (-not (Test-Path (Join-Path $Root $path))) { "${Where}: no file or folder $path in the repository" }
    }
}

# Problems with a '// from: file' block: its lines must appear in that file, in order.
function Test-DocQuote([pscustomobject] $Block, [string] $Where, [string] $Root) {
    $file = Join-Path $Root $Block.Reason
    if (-not (Test-Path $file)) { return "${Where}: quotes $($Block.Reason), which does not exist" }
    $source = @(Get-Content $file); $at = 0
    foreach ($line in $Block.Code -split "`n" | Where-Object { $_.Trim() }) {
        while ($at -lt $source.Count -and $source[$at].TrimEnd() -ne $line.TrimEnd()) { $at++ }
        if ($at -ge $source.Count) { return "${Where}: the line '$line' is not in $($Block.Reason) (in this order)" }
        $at++
    }
}

# A fresh folder to run a page's examples in (docs/development.md, "The doc test"): the tiny models (copied from
# $Models, made once by New-DocModels), the data files, and the manifest with module/ and en-US/ linked from the
# checkout, so Import-Module ./GraLoRA.psd1 works there too.
function New-DocSandbox([string] $Root, [string] $Models) {
    $dir = Join-Path ([IO.Path]::GetTempPath()) "gralora-docs-$([Guid]::NewGuid().ToString('N'))"
    $null = New-Item -ItemType Directory $dir, (Join-Path $dir 'data')
    Copy-Item (Join-Path $Models '*') $dir -Recurse
    foreach ($name in 'GraLoRA.psd1', 'module', 'en-US') { $null = New-Item -ItemType SymbolicLink -Path (Join-Path $dir $name) -Target (Join-Path $Root $name) }
    $chat = Get-Content (Join-Path $Root 'examples/data/tiny-chat.jsonl')
    foreach ($file in 'train.jsonl', 'd.jsonl', 'data/train.jsonl') { $chat[0..15] | Set-Content (Join-Path $dir $file) }
    foreach ($file in 'test.jsonl', 'held-out.jsonl') { $chat[16..23] | Set-Content (Join-Path $dir $file) }
    $ham = 'Minutes of the meeting', 'Lunch on Friday?', 'The report is attached', 'See you at the meeting'
    $spam = 'Win a FREE prize now', 'Cheap money for you', 'Claim your FREE prize', 'You won money'
    $records = @($ham | ForEach-Object { @{ text = $_; label = 'ham' } }) + @($spam | ForEach-Object { @{ text = $_; label = 'spam' } })
    $records | ForEach-Object { $_ | ConvertTo-Json -Compress } | Set-Content (Join-Path $dir 'spam-train.jsonl')
    $records[1, 2, 5, 6] | ForEach-Object { $_ | ConvertTo-Json -Compress } | Set-Content (Join-Path $dir 'spam-test.jsonl')
    $dir
}

# The tiny models every sandbox gets: ./m (a Llama) and ./bert, in a new folder.
function New-DocModels {
    $dir = Join-Path ([IO.Path]::GetTempPath()) "gralora-docs-models-$([Guid]::NewGuid().ToString('N'))"
    $null = New-BaseModel (Join-Path $dir 'm') -Seed 0
    $null = New-BaseModel (Join-Path $dir 'bert') -Architecture bert -Words free, prize, money, meeting, minutes, report
    $dir
}

# Runs a page's runnable PowerShell blocks in order in one child pwsh in $Sandbox; returns $null, or why it failed with
# the page line of the failing statement.
function Invoke-DocPowerShell([object[]] $Blocks, [string] $Page, [string] $Sandbox) {
    $lines = [Collections.Generic.List[string]]::new()
    $lines.Add('$ErrorActionPreference = ''Stop''; $ProgressPreference = ''SilentlyContinue''; $InformationPreference = ''SilentlyContinue''')
    $lines.Add('Import-Module ./GraLoRA.psd1')
    foreach ($block in $Blocks) {
        $lines.Add("`$__doc = $($block.CodeLine); `$__first = $($lines.Count + 3)")
        $lines.Add('try { $null = . {')
        foreach ($line in $block.Code -split "`n") { $lines.Add($line) }
        $lines.Add('} } catch { [Console]::Out.WriteLine("DOC-FAILED ' + $Page + ':$($__doc + $_.InvocationInfo.ScriptLineNumber - $__first): $($_.Exception.Message)"); exit 3 }')
    }
    $lines.Add('[Console]::Out.WriteLine(''DOC-OK'')')
    $file = Join-Path $Sandbox 'doc-test.ps1'
    Set-Content $file $lines
    $result = Invoke-ChildPwsh -File $file -WorkingDirectory $Sandbox
    if ($result.ExitCode -eq 0 -and $result.Output -match 'DOC-OK') { return $null }
    $failed = ($result.Output -split "`n" | Where-Object { $_ -like 'DOC-FAILED*' }) -join "`n"
    if ($failed) { $failed } else { "exit $($result.ExitCode): $($result.Errors)$($result.Output)" }
}

# Runs a page's runnable F# blocks in order in one dotnet fsi in $Sandbox (built assemblies referenced,
# GraLoRA.Scripting opened, each block a module of its own); returns $null, or the output with the page lines of the script.
function Invoke-DocFSharp([object[]] $Blocks, [string] $Page, [string] $Sandbox, [string] $Root) {
    $bin = Join-Path $Root 'src/GraLoRA.Scripting/bin/Release/net8.0'
    $lines = [Collections.Generic.List[string]]::new()
    foreach ($dll in 'TorchSharp', 'ScottPlot', 'GraLoRA.Core', 'GraLoRA.Scripting') { $lines.Add("#r @""$(Join-Path $bin "$dll.dll")""") }
    foreach ($line in 'open System', 'open System.IO', 'open GraLoRA.Scripting', 'Runtime.init ()', "Environment.CurrentDirectory <- @""$Sandbox""") { $lines.Add($line) }
    $map = [Collections.Generic.List[string]]::new()
    for ($i = 0; $i -lt $Blocks.Count; $i++) {
        $lines.Add("module DocBlock$i =")
        $map.Add("script line $($lines.Count + 1) = ${Page}:$($Blocks[$i].CodeLine)")
        foreach ($line in $Blocks[$i].Code -split "`n") { $lines.Add("    $line") }
    }
    $lines.Add('printfn "DOC-OK"')
    $file = Join-Path $Sandbox 'doc-test.fsx'
    Set-Content $file $lines
    Push-Location $Sandbox
    try { $output = & dotnet fsi --quiet $file 2>&1 | Out-String }
    finally { Pop-Location }
    if ($LASTEXITCODE -eq 0 -and $output -match 'DOC-OK') { return $null }
    "dotnet fsi exited $LASTEXITCODE ($($map -join '; ')):`n$output"
}
