# Shared by examples/02-lora-vs-gralora.ps1 and 05-hybrid-low-rank.ps1 (dot-sourced): one training per adapter on a
# fresh load of the same model, with the same data and training configuration, and one results row each.

<#
.SYNOPSIS
    For each named adapter setting: loads -ModelPath afresh, adds the adapter on every linear layer, trains it with
    -Config on -Dataset, and outputs a row (Method, Rank, HybridRank, K, Parameters, FinalLoss, ValidationLoss,
    Perplexity, Seconds).
.PARAMETER Adapters
    Row name → Add-GraLoRAAdapter parameters (an ordered dictionary: the rows come in its order).
#>
function Invoke-AdapterComparison {
    param(
        [Parameter(Mandatory)] [string] $ModelPath,
        [Parameter(Mandatory)] [string] $Dataset,
        [Parameter(Mandatory)] [Collections.IDictionary] $Config,
        [Parameter(Mandatory)] [Collections.Specialized.OrderedDictionary] $Adapters
    )
    foreach ($name in $Adapters.Keys) {
        $model = Import-BaseModel $ModelPath
        try {
            $settings = $Adapters[$name]
            $model | Add-GraLoRAAdapter @settings -TargetModule all-linear -InformationAction Ignore | Out-Null
            $info = $model | Get-GraLoRAAdapter
            $run = $model | Start-GraLoRATraining $Dataset -Config $Config -InformationAction Ignore
            [pscustomobject]@{
                Method         = $name
                Rank           = $info.Rank
                HybridRank     = $info.HybridRank
                K              = $info.K
                Parameters     = $info.Parameters
                FinalLoss      = [Math]::Round($run.FinalLoss, 4)
                ValidationLoss = [Math]::Round($run.ValidationLoss, 4)
                Perplexity     = [Math]::Round($run.Perplexity, 3)
                Seconds        = [Math]::Round($run.Elapsed.TotalSeconds, 1)
            }
        }
        finally { $model.Dispose() }
    }
}
