# Every cmdlet's help comes from the MAML generated at build time (tools/New-GraLoRAHelp.ps1) from the XML doc comments.
BeforeDiscovery {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $common = [Management.Automation.PSCmdlet]::CommonParameters + [Management.Automation.PSCmdlet]::OptionalCommonParameters
    $script:Cmdlets = Get-Command -Module GraLoRA | ForEach-Object { @{ Name = $_.Name } }
    $script:Parameters = foreach ($command in Get-Command -Module GraLoRA) {
        foreach ($p in $command.Parameters.Keys | Where-Object { $_ -notin $common }) { @{ Name = $command.Name; Parameter = $p } }
    }
}

BeforeAll {
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
}

Describe 'Cmdlet help' {
    It '<Name> has a written synopsis and description' -ForEach $Cmdlets {
        $help = Get-Help $Name -Full
        $help.Synopsis | Should -Not -BeNullOrEmpty
        # Without MAML, Get-Help makes the synopsis from the syntax ("Name [-Param] <type> ...").
        $help.Synopsis | Should -Not -Match "^\s*$([regex]::Escape($Name))\s"
        ($help.description.Text -join ' ') | Should -Not -BeNullOrEmpty
    }

    It '<Name> has at least one example with code and an explanation' -ForEach $Cmdlets {
        $examples = @((Get-Help $Name -Full).examples.example)
        $examples.Count | Should -BeGreaterThan 0
        foreach ($example in $examples) {
            $example.code | Should -Match $Name.Split('-')[1].Substring(0, 4)
            ($example.remarks.Text -join ' ') | Should -Not -BeNullOrEmpty
        }
    }

    It '<Name> -<Parameter> has a description' -ForEach $Parameters {
        $param = (Get-Help $Name -Full).parameters.parameter | Where-Object name -EQ $Parameter
        $param | Should -Not -BeNullOrEmpty
        ($param.description.Text -join ' ') | Should -Not -BeNullOrEmpty
    }

    It 'keeps the lines of a multi-line example, without the doc comment indentation' {
        $code = @((Get-Help Set-GraLoRAAdapter -Examples).examples.example)[1].code
        $code -split '\r?\n' | Should -Be @("`$model | Set-GraLoRAAdapter -Disable -PassThru | Invoke-GraLoRAGeneration 'Hello'", '$model | Set-GraLoRAAdapter -Enable')
    }

    It 'shows the parameter sets and pipeline input of the cmdlet' {
        $full = Get-Help Start-GraLoRATraining -Full | Out-String
        $full | Should -Match 'Start-GraLoRATraining -Model <BaseModel> \[-Dataset\] <String>'
        $full | Should -Match 'Start-GraLoRATraining .*-InputObject <Object\[\]>'
        $model = (Get-Help Start-GraLoRATraining -Full).parameters.parameter | Where-Object name -EQ Model
        $model.pipelineInput | Should -Match 'ByValue'
        $model.required | Should -Be 'true'
    }
}

Describe 'about_GraLoRA' {
    It 'resolves, with the concepts' {
        $text = Get-Help about_GraLoRA | Out-String
        foreach ($section in 'THE PIPELINE', 'OUTPUT AND -PASSTHRU', 'ADAPTERS', 'PEFT INTERCHANGE', 'TRAINING OUTPUTS', 'STREAMS, JOBS AND AUTOMATION', 'NATIVE LIBRARY') {
            $text | Should -Match $section
        }
    }
}
