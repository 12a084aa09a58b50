# Helpers shared by the Pester suites (dot-sourced in their BeforeAll blocks).

# Logits of one forward pass, flattened.
function Get-Logits($Model, $InputIds) {
    $out = Invoke-BaseModel -Model $Model -InputIds $InputIds
    try {
        $flat = [Collections.Generic.List[float]]::new()
        foreach ($row in $out.Logits) { foreach ($position in $row) { $flat.AddRange($position) } }
        , $flat.ToArray()
    }
    finally { $out.Dispose() }
}

# max |a - b| / max |b|: the error relative to the reference's scale.
function Get-RelativeError([float[]] $Actual, [float[]] $Expected) {
    $Actual.Count | Should -Be $Expected.Count
    $diff = 0.0; $scale = 0.0
    for ($i = 0; $i -lt $Expected.Count; $i++) {
        $diff = [Math]::Max($diff, [Math]::Abs($Actual[$i] - $Expected[$i]))
        $scale = [Math]::Max($scale, [Math]::Abs($Expected[$i]))
    }
    $diff / [Math]::Max($scale, 1e-12)
}

