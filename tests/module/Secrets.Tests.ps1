# HF_TOKEN must never reach any PowerShell stream: not verbose or debug chatter, not warnings, not error records, on a
# download the Hub refuses (401) or that cannot connect at all. A loopback "Hub" answers every request with 401.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-secrets-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:token = 'hf_' + 'NotForLogs' + [guid]::NewGuid().ToString('N')
    $script:saved = @{}
    foreach ($name in 'HF_TOKEN', 'HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HF_HUB_OFFLINE', 'HUGGING_FACE_HUB_TOKEN') {
        $saved[$name] = [Environment]::GetEnvironmentVariable($name)
        [Environment]::SetEnvironmentVariable($name, $null)
    }
    $env:HF_TOKEN = $token
    $env:HF_HOME = Join-Path $work 'hf'

    # Everything a cmdlet call writes, every stream merged, as text.
    function script:AllStreams([scriptblock] $call) {
        $VerbosePreference = 'Continue'; $DebugPreference = 'Continue'; $InformationPreference = 'Continue'; $WarningPreference = 'Continue'
        $records = & $call *>&1
        ($records | ForEach-Object {
            if ($_ -is [System.Management.Automation.ErrorRecord]) { $_.ToString(); $_.Exception.ToString(); $_.FullyQualifiedErrorId; "$($_.TargetObject)" } else { $_ | Out-String }
        }) -join "`n"
    }
}

AfterAll {
    foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) }
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'HF_TOKEN in PowerShell streams' {
    It 'is sent to the Hub but never written to any stream when the Hub refuses it (401)' {
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $listener.Start()
        $job = Start-ThreadJob -ArgumentList $listener -ScriptBlock {
            param($l)
            $seen = [System.Collections.Generic.List[string]]::new()
            try {
                while ($true) {
                    $client = $l.AcceptTcpClient()
                    $stream = $client.GetStream()
                    $buffer = [byte[]]::new(65536)
                    $n = $stream.Read($buffer, 0, $buffer.Length)
                    $seen.Add([Text.Encoding]::ASCII.GetString($buffer, 0, $n))
                    $reply = [Text.Encoding]::ASCII.GetBytes("HTTP/1.1 401 Unauthorized`r`nContent-Type: application/json`r`nContent-Length: 27`r`nConnection: close`r`n`r`n{`"error`":`"Invalid token`"}  ")
                    $stream.Write($reply, 0, $reply.Length)
                    $client.Close()
                }
            }
            catch { }
            $seen
        }
        try {
            $env:HF_ENDPOINT = "http://127.0.0.1:$($listener.LocalEndpoint.Port)"
            $text = AllStreams { try { Import-BaseModel -Name test-org/tiny-model } catch { $_ } }
        }
        finally {
            $listener.Stop()
            $requests = ($job | Wait-Job -Timeout 30 | Receive-Job) -join "`n"
            $job | Remove-Job -Force
        }
        $requests | Should -Match "Authorization: Bearer $token" -Because 'the token must reach the Hub (else this test proves nothing)'
        $text | Should -Match 'Fetching test-org/tiny-model@main' -Because 'verbose output was captured'
        $text | Should -Match 'HTTP 401 Unauthorized.*the token from HF_TOKEN was refused' -Because 'the error names where the token came from, not what it is'
        $text | Should -Not -Match $token
        $text | Should -Not -Match 'NotForLogs'
    }

    It 'is never written to any stream when the Hub cannot be reached' {
        $closed = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $closed.Start(); $port = $closed.LocalEndpoint.Port; $closed.Stop()
        $env:HF_ENDPOINT = "http://127.0.0.1:$port"
        $text = AllStreams { try { Import-BaseModel -Name test-org/tiny-model } catch { $_ } }
        $text | Should -Match 'Fetching test-org/tiny-model@main' -Because 'verbose output was captured'
        $text | Should -Match "Could not reach http://127\.0\.0\.1:$port" -Because $text
        $text | Should -Not -Match 'NotForLogs'
    }
}
