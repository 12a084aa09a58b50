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
    Assert.True(config.K.Value.IsAuto)                  // passed on to Core, which resolves it per module
    Assert.Equal(k, config.EffectiveK)
    Assert.Equal(AdapterMethod.GraLoRA, config.Method)
    Assert.Equal(Auto, (Adapter.ofConfig config).K)
    use model = BaseModel.tiny (Path.Combine(tempDir (), "m"))
    model |> Adapter.add { GraLoRA.defaults with Rank = rank } |> ignore
    Assert.Equal(Fixed k, (Adapter.settingsOf Adapter.DefaultName model).K)

[<Fact>]
let ``the F# defaults are Core's PEFT defaults`` () =
    let g = Adapter.toConfig GraLoRA.defaults
    let l = Adapter.toConfig LoRA.defaults
    Assert.Equal((AdapterDefaults.GraloraRank, AdapterDefaults.GraloraAlpha), (g.EffectiveRank, g.EffectiveAlpha))
    Assert.Equal((AdapterDefaults.LoraRank, AdapterDefaults.LoraAlpha), (l.EffectiveRank, l.EffectiveAlpha))
    Assert.Equal<string list>(List.ofSeq AdapterDefaults.TargetModules, GraLoRA.defaults.Targets)

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

[<Fact>]
let ``the F# training settings are every Core training setting, which the cmdlet takes too`` () =
    // Two F# names differ from Core's and the cmdlet's (kept for existing scripts); Dataset is the data itself.
    let renamed = dict [ "Validation", "ValidationDataset"; "Warmup", "WarmupSteps" ]
    let fsharp =
        Microsoft.FSharp.Reflection.FSharpType.GetRecordFields typeof<TrainSettings>
        |> Array.map (fun f -> match renamed.TryGetValue f.Name with | true, name -> name | _ -> f.Name)
        |> Array.filter (fun name -> name <> "Dataset")
        |> Array.sort
    let core =
        typeof<GraLoRA.Training.TrainingSettings>.GetProperties(System.Reflection.BindingFlags.Public ||| System.Reflection.BindingFlags.Instance)
        |> Array.map (fun p -> p.Name)
        |> Array.sort
    Assert.Equal<string[]>(core, fsharp)
    Assert.Equal(GraLoRA.Training.TrainingSettings.Default, Train.toSettings Train.defaults)   // and the same defaults
    let everything =
        { Train.defaults with
            Format = Some GraLoRA.Data.DatasetFormat.Chat; Validation = Some "v.jsonl"; ValidationSplit = 0.1; MaxLength = 7; Packing = true
            TrainOnPrompt = true; BatchSize = 3; GroupByLength = true; LearningRate = 0.5; Epochs = 4; MaxSteps = Some 9
            GradientAccumulation = 2; Warmup = 5; WarmupRatio = 0.25; Schedule = Constant; WeightDecay = 0.125; MaxGradNorm = 0.75; Seed = 11
            OutputPath = Some "o"; OverwriteOutput = true; SaveSteps = Some 2; EvalSteps = Some 3; SaveTotalLimit = 6; EarlyStoppingPatience = Some 4
            GradientCheckpointing = true; OnNonFinite = GraLoRA.Training.NonFiniteAction.Stop; LoggingSteps = 8; Adapter = Some "a"
            Resume = true; ResumeFrom = Some "r" }
    // Every field reaches Core: no Core value is left at its default.
    let mapped = Train.toSettings everything
    for p in typeof<GraLoRA.Training.TrainingSettings>.GetProperties(System.Reflection.BindingFlags.Public ||| System.Reflection.BindingFlags.Instance) do
        Assert.False(obj.Equals(p.GetValue mapped, p.GetValue GraLoRA.Training.TrainingSettings.Default), $"{p.Name} was not mapped")

[<Fact>]
let ``Adapter.current, Adapter.save, Adapter.toLora and Train use Core's current-adapter rule and its error ids`` () =
    use model = BaseModel.tiny (Path.Combine(tempDir (), "m"))
    let noAdapter = Assert.Throws<GraloraException>(fun () -> Adapter.current model |> ignore)
    Assert.Equal("NoActiveAdapter", noAdapter.ErrorId)
    model
    |> Adapter.addNamed "a" { GraLoRA.defaults with Rank = 8; K = Fixed 2 }
    |> Adapter.addNamed "b" { GraLoRA.defaults with Rank = 8; K = Fixed 2 }
    |> Adapter.activate [ "a"; "b" ]
    |> ignore
    let ids =
        [ (fun () -> Adapter.current model |> ignore)
          (fun () -> Adapter.save (Path.Combine(tempDir (), "saved")) model |> ignore)
          (fun () -> Train.run { Train.defaults with Dataset = "no-such-file.jsonl" } model |> ignore)
          (fun () -> Adapter.toLora Exact (Path.Combine(tempDir (), "lora")) model |> ignore) ]
        |> List.map (fun f -> (Assert.Throws<GraloraException>(f)).ErrorId)
    Assert.Equal<string list>(List.replicate 4 "AmbiguousAdapter", ids)
    model |> Adapter.activate [ "b" ] |> ignore
    Assert.Equal(model.Adapters.Current(), Adapter.current model)
    Assert.Equal("b", Adapter.current model)
