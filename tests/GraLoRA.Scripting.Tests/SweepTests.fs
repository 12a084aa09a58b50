module GraLoRA.Scripting.Tests.SweepTests

open System
open System.IO
open Xunit
open GraLoRA
open GraLoRA.Adapters
open GraLoRA.Scripting
open GraLoRA.Scripting.Tests.Support

let private chat = Path.Combine(repoRoot, "examples", "data", "tiny-chat.jsonl")

[<Fact>]
let ``the sweep expression sets each field of the spec`` () =
    let training = { Train.defaults with Dataset = "d.jsonl"; MaxSteps = Some 3 }
    let spec =
        sweep {
            baseModel "m"
            ranks [ 4; 8 ]
            ks [ 1; 2 ]
            methods [ SweepMethod.LoRA; SweepMethod.Hybrid 2 ]
            adapter { GraLoRA.defaults with Dropout = 0.1 }
            train training
            evaluate "e.jsonl"
        }
    let expected =
        { Sweep.empty with
            BaseModel = "m"; Ranks = [ 4; 8 ]; Ks = [ 1; 2 ]; Methods = [ SweepMethod.LoRA; SweepMethod.Hybrid 2 ]
            Adapter = { GraLoRA.defaults with Dropout = 0.1 }; Train = training; Evaluation = Some "e.jsonl" }
    Assert.Equal(expected, spec)
    Assert.Equal(Sweep.empty, sweep { ranks Sweep.empty.Ranks })

[<Fact>]
let ``points cover rank x method x k, leave out k that do not divide the GraLoRA rank, and give alpha 2r`` () =
    let spec = { Sweep.empty with Ranks = [ 6; 8 ]; Ks = [ 1; 2; 4 ]; Methods = [ SweepMethod.GraLoRA; SweepMethod.LoRA; SweepMethod.Hybrid 2 ] }
    let describe (label, s: AdapterSettings) = sprintf "%s r%d k%A h%d a%g" label s.Rank s.K s.HybridRank (Option.get s.Alpha)
    let actual = Sweep.points spec |> List.map describe
    let expected =
        [ "GraLoRA r6 kFixed 1 h0 a12"; "GraLoRA r6 kFixed 2 h0 a12"; "LoRA r6 kAuto h0 a12"
          "Hybrid r4 kFixed 1 h2 a12"; "Hybrid r4 kFixed 2 h2 a12"; "Hybrid r4 kFixed 4 h2 a12"
          "GraLoRA r8 kFixed 1 h0 a16"; "GraLoRA r8 kFixed 2 h0 a16"; "GraLoRA r8 kFixed 4 h0 a16"; "LoRA r8 kAuto h0 a16"
          "Hybrid r6 kFixed 1 h2 a16"; "Hybrid r6 kFixed 2 h2 a16" ]
    Assert.Equal<string list>(expected, actual)
    let methods = Sweep.points spec |> List.map (fun (_, s) -> s.Method) |> List.distinct
    Assert.Equal<AdapterMethod list>([ AdapterMethod.GraLoRA; AdapterMethod.LoRA ], methods)

[<Fact>]
let ``a hybrid rank not below r and a missing base model are refused before training`` () =
    let hybrid = Assert.Throws<GraloraException>(fun () -> Sweep.points { Sweep.empty with Ranks = [ 4 ]; Methods = [ SweepMethod.Hybrid 4 ] } |> ignore)
    Assert.Equal("InvalidHybridRank", hybrid.ErrorId)
    let missing = Assert.Throws<GraloraException>(fun () -> Sweep.run { Sweep.empty with BaseModel = Path.Combine(tempDir (), "none") } |> ignore)
    Assert.Equal("ModelFolderNotFound", missing.ErrorId)

[<Fact>]
let ``a tiny grid trains every point at equal parameters and prints and charts the rows`` () =
    let dir = tempDir ()
    let folder = Path.Combine(dir, "base")
    (BaseModel.tiny folder).Dispose()
    let evaluation = Path.Combine(dir, "eval.jsonl")
    File.WriteAllLines(evaluation, File.ReadLines chat |> Seq.take 8)
    let seen = ResizeArray<SweepResult>()
    let rows =
        sweep {
            baseModel folder
            ranks [ 4 ]
            ks [ 2 ]
            methods [ SweepMethod.GraLoRA; SweepMethod.LoRA; SweepMethod.Hybrid 2 ]
            train { Train.defaults with Dataset = chat; MaxLength = 48; BatchSize = 4; MaxSteps = Some 2; LearningRate = 1e-2; LoggingSteps = 1 }
            evaluate evaluation
        }
        |> Sweep.runWith seen.Add
    Assert.Equal<SweepResult list>(rows, List.ofSeq seen)
    Assert.Equal<(string * int option * int) list>(
        [ "GraLoRA", Some 2, 0; "LoRA", None, 0; "Hybrid", Some 2, 2 ],
        rows |> List.map (fun r -> r.Method, r.K, r.HybridRank))
    // Every linear layer at total rank 4: 4 · (in + out) each, whatever the method.
    use probe = BaseModel.load folder |> Adapter.add { LoRA.defaults with Rank = 4; Targets = [ "all-linear" ] }
    let loraCount = (Adapter.parameterCounts probe).Trainable
    for r in rows do
        Assert.Equal(4, r.Rank)
        Assert.Equal(loraCount, r.TrainableParameters)
        Assert.Equal(2, r.Steps)
        Assert.True(Double.IsFinite r.FinalLoss && Double.IsFinite r.FirstLoss, sprintf "%A" r)
        Assert.True(r.EvaluationLoss |> Option.exists Double.IsFinite, sprintf "%A" r)
    // The same seeds give the same first-step loss wherever the adapter starts as a no-op (B = 0).
    Assert.Single(rows |> List.map (fun r -> Math.Round(r.FirstLoss, 4)) |> List.distinct) |> ignore
    let lines = (Sweep.table rows).Split(Environment.NewLine)
    Assert.Equal(rows.Length + 1, lines.Length)
    Assert.StartsWith("method", lines[0])
    Assert.Matches(@"^LoRA +4 +- +0 +\d+ ", lines[2])
    let png = Sweep.chart (Path.Combine(dir, "sweep.png")) rows
    let bytes = File.ReadAllBytes png
    Assert.True(bytes.Length > 1000 && bytes[1] = byte 'P' && bytes[2] = byte 'N' && bytes[3] = byte 'G')

[<Fact>]
let ``Compare.methods trains the paper's methods at equal parameters, tabulates and charts them`` () =
    let dir = tempDir ()
    use model = BaseModel.tiny (Path.Combine(dir, "base"))
    let chart = Path.Combine(dir, "methods.png")
    let seen = ResizeArray<GraLoRA.Training.MethodComparisonRow>()
    let result =
        model
        |> Compare.methodsWith seen.Add [ AdapterMethod.GraLoRA; AdapterMethod.RaSA ] 8 { LoRA.defaults with Targets = [ "q_proj"; "v_proj" ] }
            { Train.defaults with Dataset = chat; MaxLength = 48; BatchSize = 4; MaxSteps = Some 2; LearningRate = 1e-2; ValidationSplit = 0.25 }
            (Some chart)
    // LoRA runs first even when not listed: it is the time reference.
    Assert.Equal<AdapterMethod list>([ AdapterMethod.LoRA; AdapterMethod.GraLoRA; AdapterMethod.RaSA ], result.Rows |> Seq.map (fun r -> r.Method) |> List.ofSeq)
    Assert.Equal(3, seen.Count)
    Assert.Equal(1.0, result.Rows[0].TimeVersusLoRA)
    Assert.Equal(result.Rows[0].TrainableParameters, result.Rows[1].TrainableParameters)   // GraLoRA = LoRA at equal r
    Assert.True(File.Exists chart && FileInfo(chart).Length > 1000L)
    Assert.Empty(model.Adapters.Names)
    let lines = (Compare.table result).Split(Environment.NewLine)
    Assert.Equal(4, lines.Length)
    Assert.Matches(@"^RaSA r 8 k 1 +\d+ +\d\.\d{4}", lines[3])
    // A comparison writes nothing: an output folder is refused (NotForTrials), not ignored.
    let refused =
        Assert.Throws<GraloraException>(fun () ->
            Compare.methods [ AdapterMethod.GraLoRA ] 8 LoRA.defaults { Train.defaults with Dataset = chat; OutputPath = Some (Path.Combine(dir, "out")) } None model |> ignore)
    Assert.Equal("NotForTrials", refused.ErrorId)
    Assert.False(Directory.Exists(Path.Combine(dir, "out")))
