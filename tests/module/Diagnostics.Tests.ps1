BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
    Import-Module (Join-Path $root 'GraLoRA.psd1') -Force
    $script:work = Join-Path ([IO.Path]::GetTempPath()) ("gralora-diagnostics-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory $work | Out-Null
    $script:tinyFolder = (New-BaseModel (Join-Path $work 'tiny') -Architecture llama -Seed 3).FullName
    $script:records = 1..24 | ForEach-Object { @{ prompt = "Count from $($_):"; completion = " $($_ + 1) $($_ + 2) $($_ + 3)" } }
}

AfterAll {
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Measure-GradientEntanglement' {
    BeforeAll { $script:m = Import-BaseModel $tinyFolder }
    AfterAll { $m.Dispose() }

    It 'flags an injected outlier channel, compares LoRA with GraLoRA and writes the charts' {
        $out = Join-Path $work 'diag'
        $r = $m | Measure-GradientEntanglement -InputObject $records -Layer layers.0.mlp.down_proj -Rank 8 -K 2 -Batches 2 -InjectOutlier @{ 7 = 80 } -OutDirectory $out
        $r.GetType().FullName | Should -Be 'GraLoRA.Diagnostics.LayerEntanglement'
        $r.Layer | Should -Be 'model.layers.0.mlp.down_proj'
        $r.OutlierChannels | Should -Contain 7
        $r.GradientOutlierShare | Should -BeGreaterThan 0.5
        $r.Lora.Rank | Should -Be 8
        $r.Gralora.K | Should -Be 2
        $r.Charts.Count | Should -Be 3
        $r.Charts | ForEach-Object { (Get-Item $_).Length | Should -BeGreaterThan 1000 }
        # The module's table view: one row of numbers, not the arrays the object carries.
        $table = $r | Out-String -Width 300
        $table | Should -Match 'Layer\s+Shape\s+Outliers\s+GShare\s+LoRADev\s+GraLoRADev\s+LoRAErr\s+GraLoRAErr'
        $table | Should -Match ('model\.layers\.0\.mlp\.down_proj\s+{0}×{1}\s+\S*7\S*\s+{2:F3}\s+{3:F3}\s+{4:F3}' -f $r.OutFeatures, $r.InFeatures, $r.GradientOutlierShare, $r.Lora.Deviation, $r.Gralora.Deviation)
        $table | Should -Not -Match 'ChannelNorms|SingularValues|\{\d'
    }

    It 'names the layers there are when none matches' {
        { $m | Measure-GradientEntanglement -InputObject $records -Layer nope_proj } | Should -Throw -ErrorId 'NoMatchingLayer,*'
    }
}

Describe 'Get-GraLoRAAdapter -Detailed' {
    BeforeAll {
        $script:m = Import-BaseModel $tinyFolder
        $m | Add-GraLoRAAdapter -Name gra -Rank 8 -K 2 -TargetModule q_proj -RandomInit 6>$null | Out-Null
        $m | Add-GraLoRAAdapter -Name lo -Method LoRA -Rank 8 -TargetModule down_proj -RandomInit 6>$null | Out-Null
    }
    AfterAll { $m.Dispose() }

    It 'reports rank k·r for GraLoRA and r for LoRA, and draws the spectra' {
        $png = Join-Path $work 'spectra.png'
        $s = $m | Get-GraLoRAAdapter -Detailed -ChartPath $png
        $s[0].GetType().FullName | Should -Be 'GraLoRA.Diagnostics.AdapterSpectrum'
        ($s | Where-Object Adapter -EQ gra).NumericalRank | Sort-Object -Unique | Should -Be 16
        ($s | Where-Object Adapter -EQ lo).NumericalRank | Sort-Object -Unique | Should -Be 8
        (Get-Item $png).Length | Should -BeGreaterThan 1000
        $table = $s | Out-String -Width 300
        $table | Should -Match 'Adapter\s+Layer\s+Method\s+Rank\s+K\s+HybridRank\s+MaxRank\s+NumericalRank\s+EffectiveRank\s+Utilisation'
        $g = $s | Where-Object Adapter -EQ gra | Select-Object -First 1
        $table | Should -Match ('gra\s+{0}\s+GraLoRA\s+8\s+2\s+0\s+16\s+16\s+{1:F1}\s+100\s?%' -f [regex]::Escape($g.Layer), $g.EffectiveRank)
        $table | Should -Not -Match '\{\d'
    }

    It 'still lists the summary without -Detailed and refuses -ChartPath alone' {
        ($m | Get-GraLoRAAdapter).Name | Should -Be @('gra', 'lo')
        { $m | Get-GraLoRAAdapter -ChartPath (Join-Path $work 'x.png') } | Should -Throw -ErrorId 'ChartNeedsDetailed,*'
    }
}

Describe 'Find-GraLoRAK' {
    BeforeAll { $script:m = Import-BaseModel $tinyFolder }
    AfterAll { $m.Dispose() }

    It 'runs each candidate on its share of the budget, recommends one and leaves the model without adapters' {
        $trials = $m | Find-GraLoRAK -InputObject $records -Rank 8 -K 1, 2 -NoHybrid -StepBudget 4 -TargetModule q_proj -BatchSize 4 -ValidationSplit 0.25 -LearningRate 1e-2 6>$null
        $trials.Count | Should -Be 2
        $trials[0].GetType().FullName | Should -Be 'GraLoRA.Diagnostics.KTrial'
        $trials.Steps | Sort-Object -Unique | Should -Be 2
        @($trials | Where-Object Recommended).Count | Should -Be 1
        @($m | Get-GraLoRAAdapter).Count | Should -Be 0
        $table = $trials | Out-String -Width 300
        $table | Should -Match 'Rank\s+K\s+HybridRank\s+r/k²\s+Parameters\s+Steps\s+TrainLoss\s+ValidationLoss\s+Recommended'
        $best = $trials | Where-Object Recommended
        $table | Should -Match ('8\s+{0}\s+0\s+{1:F1}\s+{2:N0}\s+2\s+\S+\s+{3:F4}\s+\*' -f $best.K, $best.RankPerBlockRatio, $best.Parameters, $best.ValidationLoss)
    }
}

Describe 'examples/06-gradient-entanglement.ps1' {
    It 'measures each rank with and without the injected outlier, flags it, and writes the charts' {
        $root = Split-Path -Parent (Split-Path -Parent $PSScriptRoot)
        $out = Join-Path $work 'example'
        $rows = @(& (Join-Path $root 'examples/06-gradient-entanglement.ps1') -Rank 8 -OutDirectory $out 6>$null | Where-Object { $_ -is [pscustomobject] })
        $rows.Count | Should -Be 2
        $rows[0].Outlier | Should -Be 'none'
        $rows[1].Flagged -split ', ' | Should -Contain '37'
        $rows[1].GShare | Should -BeGreaterThan 0.5
        Test-Path (Join-Path $out 'spectra.png') | Should -BeTrue
        @(Get-ChildItem $out -Filter '*.blocks.png').Count | Should -Be 1
    }
}
