@{
    # The module as built from this checkout: './build.sh build' lays out module/bin.
    RootModule           = 'module/bin/GraLoRA.PowerShell.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '6f0b7a52-3c1e-4f5e-9a55-2f7c3c1f0a11'
    Author               = 'GraLoRA for .NET contributors'
    CompanyName          = 'GraLoRA for .NET'
    Copyright            = '(c) GraLoRA for .NET contributors. MIT License.'
    Description          = 'GraLoRA (granular low-rank adaptation) fine-tuning for PowerShell, over TorchSharp.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('module/GraLoRA.format.ps1xml')
    CmdletsToExport      = @(
        'Get-TorchDevice', 'New-BaseModel', 'Import-BaseModel', 'Get-BaseModel', 'Invoke-BaseModel', 'Export-BaseModel', 'Invoke-GraLoRAGeneration',
        'Add-GraLoRAAdapter', 'Get-GraLoRAAdapter', 'Set-GraLoRAAdapter', 'Remove-GraLoRAAdapter', 'Save-GraLoRAAdapter',
        'Import-GraLoRAAdapter', 'Merge-GraLoRAAdapter', 'Split-GraLoRAAdapter', 'Start-GraLoRATraining', 'New-GraLoRATrainingConfig', 'Invoke-GraLoRAEvaluation',
        'Measure-GradientEntanglement', 'Find-GraLoRAK', 'Invoke-GraLoRAClassification', 'ConvertTo-LoRAAdapter'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('GraLoRA', 'LoRA', 'PEFT', 'fine-tuning', 'TorchSharp', 'LLM')
            ProjectUri = 'https://github.com/gralora-dotnet/gralora'
        }
    }
}
