module GraLoRA.Scripting.Tests.DeployTests

open System.IO
open Xunit
open GraLoRA.Adapters
open GraLoRA.Gguf
open GraLoRA.Models
open GraLoRA.Scripting
open GraLoRA.Scripting.Tests.Support

// The F# functions make the Core calls ConvertTo-LoRAAdapter and Export-BaseModel -Format gguf make.

[<Fact>]
let ``Adapter.toLora writes the exact LoRA and toGgufLora the GGUF adapter Core writes`` () =
    let dir = tempDir ()
    let folder = TinyModelFactory.SaveWithTokenizer(Path.Combine(dir, "m"), TinyModelOptions(Architecture = "qwen2"))
    use model =
        BaseModel.load folder
        |> Adapter.add { GraLoRA.defaults with Rank = 8; K = Fixed 2; HybridRank = 2; Seed = Some 7L }
    // Make ΔW non-zero: B starts at zero.
    for (_, layer) in model.Adapters.Layers() do
        for p in layer.AdapterParameters "default" do
            use _ = TorchSharp.torch.no_grad ()
            p.normal_(0.0, 0.1) |> ignore
    let exact = model |> Adapter.toLora Exact (Path.Combine(dir, "lora"))
    Assert.Equal(18, exact.Rank)                                     // k·r + hybrid_r
    Assert.True(exact.MaxRelativeError < 1e-6)
    use core = model.ConvertToLora("default")
    Assert.Equal<int list>([ for l in core.Layers -> l.Rank ], [ for l in exact.Layers -> l.Rank ])
    let truncated = model |> Adapter.toLora (KeepRank 4) (Path.Combine(dir, "lora4"))
    Assert.All(truncated.Layers, fun l -> Assert.Equal(4, l.Rank))
    let energy = model |> Adapter.toGgufLora (KeepEnergy 0.5) (Path.Combine(dir, "a.gguf"))
    let file = GgufFile.Read energy.Path
    Assert.Equal(box "adapter", file.["general.type"])
    Assert.Equal(box "qwen2", file.["general.architecture"])
    Assert.Equal(2 * energy.Layers.Count, file.Tensors.Count)

[<Fact>]
let ``BaseModel.exportGguf writes the file ExportGguf writes`` () =
    let dir = tempDir ()
    let folder = TinyModelFactory.SaveWithTokenizer(Path.Combine(dir, "m"), TinyModelOptions(Architecture = "qwen3"))
    use model = BaseModel.load folder |> BaseModel.exportGguf "q8_0" (Path.Combine(dir, "m.gguf"))
    let file = GgufFile.Read(Path.Combine(dir, "m.gguf"))
    Assert.Equal(box "qwen3", file.["general.architecture"])
    Assert.Equal(box 7u, file.["general.file_type"])
    Assert.Equal(GgmlType.Q8_0, (file.Tensors |> Seq.find (fun t -> t.Name = "blk.0.attn_q.weight")).Type)

[<Fact>]
let ``BaseModel.exportQuantized writes a bitsandbytes checkpoint that loads quantised`` () =
    let dir = tempDir ()
    let folder = TinyModelFactory.SaveWithTokenizer(Path.Combine(dir, "m"), TinyModelOptions())
    use model = BaseModel.load folder
    let rounding = model |> BaseModel.exportQuantized "nf4" true (Path.Combine(dir, "q"))
    use again = BaseModel.load (Path.Combine(dir, "q"))
    Assert.Equal(Some "nf4", (BaseModel.info again).Quantization)
    Assert.Equal(again.Config.NumLayers * 7, rounding.Length)                 // every projection of every layer, once
    Assert.All(rounding, fun r -> Assert.InRange(r.RelativeError, 1e-4, 0.2))
    let bad = Assert.Throws<GraLoRA.GraloraException>(fun () -> model |> BaseModel.exportQuantized "gptq" false (Path.Combine(dir, "g")) |> ignore)
    Assert.Equal("UnsupportedQuantization", bad.ErrorId)
    Assert.Contains("GPTQ", bad.Message)
