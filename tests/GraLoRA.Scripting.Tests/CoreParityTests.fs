module GraLoRA.Scripting.Tests.CoreParityTests

open System.IO
open Xunit
open TorchSharp
open GraLoRA.Adapters
open GraLoRA.Data
open GraLoRA.Models
open GraLoRA.Training
open GraLoRA.Scripting
open GraLoRA.Scripting.Tests.Support

let chatData = Path.Combine(repoRoot, "examples", "data", "tiny-chat.jsonl")

// The Core calls Start-GraLoRATraining makes (one seed for data, batches and training), written out by hand.
let coreRun (folder: string) =
    let model = GraLoRA.Models.BaseModel.Load folder
    torch.manual_seed 42L |> ignore
    model.AddAdapter("default", AdapterConfig(Rank = 16, K = 2, Alpha = 32.0, TargetModules = [| "q_proj"; "v_proj"; "down_proj" |])) |> ignore
    let trainer = Trainer(model, "default", TrainingOptions(MaxSteps = 6, LearningRate = 5e-3, Seed = 42L, WarmupSteps = 2))
    let tokenizer = match model.Tokenizer with null -> failwith "no tokenizer" | t -> t
    let data = TrainingData.Prepare(tokenizer, DatasetSource.FromFile chatData, options = DataOptions(MaxLength = 128, Seed = 42))
    let result = trainer.Train(data.CreateTrainLoader(BatchOptions(BatchSize = 4, Seed = 42)))
    model, result

let fsharpRun (folder: string) =
    let result, model =
        BaseModel.load folder
        |> Adapter.add { GraLoRA.defaults with Rank = 16; K = Fixed 2; Alpha = Some 32.0; Targets = [ "q_proj"; "v_proj"; "down_proj" ] }
        |> Train.runWith ignore System.Threading.CancellationToken.None
            { Train.defaults with Dataset = chatData; MaxLength = 128; BatchSize = 4; MaxSteps = Some 6; LearningRate = 5e-3; Warmup = 2 }
    model, result

[<Fact>]
let ``the F# API trains the same adapter as Core called directly with the same settings and seed`` () =
    let folder = TinyModelFactory.SaveWithTokenizer(Path.Combine(tempDir (), "m"), TinyModelOptions())
    let coreModel, coreResult = coreRun folder
    use coreModel = coreModel
    let fsModel, fsResult = fsharpRun folder
    use fsModel = fsModel
    let struct (coreTrainable, coreTotal) = coreModel.Adapters.ParameterCounts()
    let counts = Adapter.parameterCounts fsModel
    Assert.Equal(coreTrainable, counts.Trainable)
    Assert.Equal(coreTotal, counts.Total)
    Assert.True(counts.Trainable > 0L)
    Assert.Equal<float seq>(coreResult.History |> Seq.map (fun p -> p.Loss), fsResult.History |> Seq.map (fun p -> p.Loss))
    let coreWeights = coreModel.Adapters.StateDict "default"
    let fsWeights = fsModel.Adapters.StateDict "default"
    Assert.Equal<string seq>(Seq.sort coreWeights.Keys, Seq.sort fsWeights.Keys)
    for KeyValue(key, expected) in coreWeights do
        let actual = fsWeights[key]
        let diff = (expected - actual).abs().max().item<float32>()
        Assert.True((diff = 0.0f), $"{key} differs by {diff}")
    // Training moved the zero-initialised B blocks, so equal weights mean equal training, not two untouched adapters.
    let moved = coreWeights |> Seq.filter (fun kv -> kv.Key.Contains "gralora_B") |> Seq.map (fun kv -> kv.Value.abs().max().item<float32>())
    Assert.True(Seq.max moved > 0.0f)
