module GraLoRA.Scripting.Tests.SettingsTests

open System.IO
open Xunit
open GraLoRA
open GraLoRA.Adapters
open GraLoRA.Scripting
open GraLoRA.Scripting.Tests.Support

[<Theory>]
[<InlineData(16, 2)>]
[<InlineData(32, 2)>]
[<InlineData(64, 4)>]
[<InlineData(128, 4)>]
let ``K Auto follows the r over k squared near 8 rule`` (rank: int, k: int) =
    let config = Adapter.toConfig { GraLoRA.defaults with Rank = rank }
    Assert.Equal(System.Nullable k, config.K)
    Assert.Equal(AdapterMethod.GraLoRA, config.Method)

[<Fact>]
let ``settings reach the model: GraLoRA k 4 for r 64, LoRA without k`` () =
    use model = BaseModel.tiny (Path.Combine(tempDir (), "m"))
    model
    |> Adapter.addNamed "g" { GraLoRA.defaults with Rank = 64; Alpha = Some 128.0 }
    |> Adapter.addNamed "l" { LoRA.defaults with Targets = [ "k_proj"; "o_proj" ] }   // one module cannot mix methods
    |> ignore
    match Adapter.list model with
    | [ g; l ] ->
        Assert.Equal(AdapterMethod.GraLoRA, g.Method)
        Assert.Equal(64, g.Rank)
        Assert.Equal(System.Nullable 4, g.K)
        Assert.Equal(128.0, g.Alpha)
        Assert.Equal<string seq>([ "q_proj"; "v_proj" ], g.Targets |> Seq.map (fun t -> t.Split('.') |> Array.last) |> Seq.distinct |> Seq.sort)
        Assert.False(g.Active)
        Assert.Equal(AdapterMethod.LoRA, l.Method)
        Assert.Equal(8, l.Rank)
        Assert.False(l.K.HasValue)
        Assert.Equal(8.0, l.Alpha)
        Assert.Equal<string seq>([ "k_proj"; "o_proj" ], l.Targets |> Seq.map (fun t -> t.Split('.') |> Array.last) |> Seq.distinct |> Seq.sort)
        Assert.True(l.Active)
    | other -> failwithf "expected two adapters, got %A" other
    Assert.Equal("l", Adapter.current model)
    model |> Adapter.activate [ "g"; "l" ] |> ignore
    let ex = Assert.Throws<GraloraException>(fun () -> Adapter.current model |> ignore)
    Assert.Equal("AmbiguousAdapter", ex.ErrorId)

let badSettings =
    let data = TheoryData<AdapterSettings, string>()
    data.Add({ GraLoRA.defaults with Rank = 30; K = Fixed 4 }, "RankNotDivisibleByK")
    data.Add({ GraLoRA.defaults with K = Fixed 0 }, "InvalidK")
    data.Add({ LoRA.defaults with K = Fixed 2 }, "NotForLoRA")
    data.Add({ GraLoRA.defaults with Targets = [] }, "NoTargetModules")
    data.Add({ GraLoRA.defaults with Bias = "lora_only" }, "InvalidBias")
    data.Add({ LoRA.defaults with Rank = 0 }, "InvalidRank")
    data

[<Theory>]
[<MemberData(nameof badSettings)>]
let ``bad adapter settings raise Core's error and leave the model unchanged`` (settings: AdapterSettings, errorId: string) =
    use model = BaseModel.tiny (Path.Combine(tempDir (), "m"))
    let ex = Assert.Throws<GraloraException>(fun () -> model |> Adapter.add settings |> ignore)
    Assert.Equal(errorId, ex.ErrorId)
    Assert.Empty(Adapter.list model)

[<Fact>]
let ``bad training settings raise Core's error before any data is read`` () =
    use model = BaseModel.tiny (Path.Combine(tempDir (), "m")) |> Adapter.add GraLoRA.defaults
    let ex = Assert.Throws<GraloraException>(fun () ->
        model |> Train.run { Train.defaults with Dataset = "no-such-file.jsonl"; LearningRate = 0.0 } |> ignore)
    Assert.Equal("InvalidTrainingOption", ex.ErrorId)
    let missing = Assert.Throws<GraloraException>(fun () -> BaseModel.load (Path.Combine(tempDir (), "absent")) |> ignore)
    Assert.Equal("ModelFolderNotFound", missing.ErrorId)

[<Fact>]
let ``training settings map to Core's TrainingOptions`` () =
    let o = Train.toOptions { Train.defaults with MaxSteps = Some 7; Schedule = Cosine; Warmup = 3; Seed = 5; OutputPath = Some "out" }
    Assert.Equal(System.Nullable 7, o.MaxSteps)
    Assert.Equal(GraLoRA.Training.LearningRateSchedule.Cosine, o.Schedule)
    Assert.Equal(3, o.WarmupSteps)
    Assert.Equal(5L, o.Seed)
    Assert.Equal("out", o.OutputDirectory)
    Assert.False(o.OverwriteOutputDirectory)
    Assert.True((Train.toOptions { Train.defaults with OverwriteOutput = true }).OverwriteOutputDirectory)
    Assert.Null(Train.toOptions(Train.defaults).OutputDirectory)
