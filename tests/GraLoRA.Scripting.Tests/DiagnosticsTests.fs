module GraLoRA.Scripting.Tests.DiagnosticsTests

open System.IO
open Xunit
open GraLoRA.Scripting
open GraLoRA.Scripting.Tests.Support

let chatData = Path.Combine(repoRoot, "examples", "data", "tiny-chat.jsonl")

[<Fact>]
let ``entanglement flags an injected outlier channel and writes charts`` () =
    let dir = tempDir ()
    use model = BaseModel.tiny (Path.Combine(dir, "m"))
    let layers =
        model
        |> Diagnostics.entanglementWith
            { Diagnostics.defaults with
                Layers = [ "layers.0.mlp.down_proj" ]; Batches = 1; MaxLength = 64; Rank = 8; K = Fixed 2
                InjectOutliers = [ 5, 80.0 ]; OutDirectory = Some(Path.Combine(dir, "charts")) }
            chatData
    let layer = Assert.Single layers
    Assert.Contains(5, layer.OutlierChannels)
    Assert.Equal(3, layer.Charts.Count)
    match layer.Gralora with
    | null -> failwith "no GraLoRA result"
    | g -> Assert.Equal(2, g.K)

[<Fact>]
let ``spectrum shows GraLoRA's rank k times r`` () =
    let dir = tempDir ()
    use model = BaseModel.tiny (Path.Combine(dir, "m"))
    let spectra =
        model
        |> Adapter.add { GraLoRA.defaults with Rank = 8; K = Fixed 2; Targets = [ "q_proj" ] }
        |> Diagnostics.spectrum Adapter.DefaultName
    // B starts at zero: ΔW = 0.
    Assert.All(spectra, fun s -> Assert.Equal(0L, s.NumericalRank))
    Assert.All(spectra, fun s -> Assert.Equal(16L, s.MaxRank))
    let png = spectra |> Diagnostics.spectrumChart (Path.Combine(dir, "s.png"))
    Assert.True(File.Exists png)
