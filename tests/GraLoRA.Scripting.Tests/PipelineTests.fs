module GraLoRA.Scripting.Tests.PipelineTests

open System.IO
open System.Threading
open Xunit
open GraLoRA.Scripting
open GraLoRA.Scripting.Tests.Support

let chatData = Path.Combine(repoRoot, "examples", "data", "tiny-chat.jsonl")
let probe = [ [ 257; 72; 101; 108; 108; 111; 32; 49; 43; 49 ]; [ 257; 87; 104; 97; 116; 32; 105; 115; 32; 50 ] ]

let maxAbsDiff (a: float32[][][]) (b: float32[][][]) =
    Seq.zip (Seq.concat (Seq.concat a)) (Seq.concat (Seq.concat b)) |> Seq.map (fun (x, y) -> abs (float x - float y)) |> Seq.max

[<Fact>]
let ``the brief's pipeline compiles and runs: load, add, train, merge, export`` () =
    let dir = tempDir ()
    (BaseModel.tiny (Path.Combine(dir, "m"))).Dispose()
    use model =
        BaseModel.load (Path.Combine(dir, "m"))
        |> Adapter.add { GraLoRA.defaults with Rank = 64; K = Fixed 4 }
        |> Train.run { Train.defaults with Dataset = chatData; Epochs = 1; MaxSteps = Some 3; MaxLength = 128 }
        |> Adapter.merge
        |> BaseModel.export (Path.Combine(dir, "out"))
    Assert.True(File.Exists(Path.Combine(dir, "out", "config.json")))
    Assert.True(File.Exists(Path.Combine(dir, "out", "tokenizer.json")))
    Assert.True((Adapter.list model).Head.Merged)

[<Fact>]
let ``training lowers the loss, and the exported merged model gives the merged model's logits`` () =
    let dir = tempDir ()
    use model = BaseModel.tiny (Path.Combine(dir, "base"))
    let before = BaseModel.forward probe model
    let settings = { Train.defaults with Dataset = chatData; MaxLength = 128; MaxSteps = Some 30; LearningRate = 3e-3; LoggingSteps = 5 }
    let seen = ResizeArray()
    let result, trained =
        model
        |> Adapter.add { GraLoRA.defaults with Rank = 64; K = Fixed 4; Targets = [ "all-linear" ] }
        |> Train.runWith seen.Add CancellationToken.None settings
    Assert.Same(model, trained)
    Assert.Equal(30, result.Steps)
    Assert.Equal(6, seen.Count)                                   // the callback saw every logging step
    let first, last = seen[0].Loss, seen[seen.Count - 1].Loss
    Assert.True(last < first - 0.5, $"loss did not fall: {first} -> {last}")

    let merged = trained |> Adapter.merge |> BaseModel.forward probe
    Assert.True(maxAbsDiff before merged > 1e-3, "training left the logits unchanged")
    trained |> BaseModel.export (Path.Combine(dir, "merged")) |> ignore
    use reloaded = BaseModel.load (Path.Combine(dir, "merged"))
    Assert.Empty(Adapter.list reloaded)
    let diff = maxAbsDiff merged (BaseModel.forward probe reloaded)
    Assert.True(diff < 1e-4, $"reloaded logits differ by {diff}")

[<Fact>]
let ``unmerge, disable and enable move the logits between base and adapted`` () =
    let dir = tempDir ()
    use model = BaseModel.tiny (Path.Combine(dir, "base"))
    let baseLogits = BaseModel.forward probe model
    model
    |> Adapter.add { GraLoRA.defaults with Rank = 16; Targets = [ "all-linear" ] }
    |> Train.run { Train.defaults with Dataset = chatData; MaxLength = 128; MaxSteps = Some 3; LearningRate = 1e-2 }
    |> ignore
    let adapted = BaseModel.forward probe model
    Assert.True(maxAbsDiff baseLogits adapted > 1e-4)
    Assert.True(maxAbsDiff baseLogits (model |> Adapter.disable |> BaseModel.forward probe) < 1e-5)
    Assert.True(maxAbsDiff adapted (model |> Adapter.enable |> Adapter.merge |> BaseModel.forward probe) < 1e-4)
    Assert.True(maxAbsDiff adapted (model |> Adapter.unmerge |> BaseModel.forward probe) < 1e-4)
    Assert.True(maxAbsDiff baseLogits (model |> Adapter.remove Adapter.DefaultName |> BaseModel.forward probe) < 1e-5)
    Assert.Empty(Adapter.list model)

[<Fact>]
let ``a saved adapter imports into a fresh model with the same logits; evaluation and generation run`` () =
    let dir = tempDir ()
    use model = BaseModel.tiny (Path.Combine(dir, "base"))
    model
    |> Adapter.addNamed "chat" { GraLoRA.defaults with Rank = 16 }
    |> Train.run { Train.defaults with Dataset = chatData; MaxLength = 128; MaxSteps = Some 3; LearningRate = 1e-2 }
    |> Adapter.save (Path.Combine(dir, "adapter"))
    |> ignore
    use fresh = BaseModel.load (Path.Combine(dir, "base")) |> Adapter.import (Path.Combine(dir, "adapter"))
    Assert.Equal<string list>([ "default" ], (BaseModel.info fresh).Adapters)
    Assert.True(maxAbsDiff (BaseModel.forward probe model) (BaseModel.forward probe fresh) < 1e-5)
    let loss = Evaluate.loss chatData fresh
    Assert.True(loss.Loss > 0.0 && loss.Tokens > 0L)
    let em = Evaluate.exactMatchFirst 2 chatData fresh
    Assert.Equal(2, em.Total)
    let text = fresh |> Generate.withOptions { Generate.defaults with MaxNewTokens = 5 } "Hello"
    let greedy = fresh |> Generate.withOptions { Generate.defaults with MaxNewTokens = 5 } "Hello"
    Assert.Equal(text, greedy)
    Assert.False(System.String.IsNullOrEmpty(fresh |> Generate.chatWith { Generate.defaults with MaxNewTokens = 4 } [ ("user", "Hi") ]))

[<Fact>]
let ``an encoder classifier classifies texts and pairs from F#`` () =
    let dir = tempDir ()
    let folder =
        GraLoRA.Models.TinyEncoderFactory.Save(Path.Combine(dir, "bert"),
            GraLoRA.Models.TinyEncoderOptions(Labels = [| "no"; "yes" |], Words = [| "cat"; "dog" |]))
    use model = BaseModel.load folder
    let single = Evaluate.classify [ "a cat"; "a dog" ] model
    Assert.Equal(2, single.Length)
    for p in single do
        Assert.Contains(p.Label, [ "no"; "yes" ])
        Assert.Equal(1.0, p.Probabilities.Values |> Seq.sum, 5)
    let pairs = Evaluate.classifyPairs [ ("a cat", "a dog") ] model
    Assert.Equal(Some "a dog", Option.ofObj pairs.Head.TextPair)
    // A pair reads differently from its first text alone (token types and the second text count).
    Assert.NotEqual(single.Head.Score, pairs.Head.Score)

[<Fact>]
let ``a pre-tokenized dataset trains and evaluates from F#, with the loss of the text it was tokenized from`` () =
    let dir = tempDir ()
    use model = BaseModel.tiny (Path.Combine(dir, "m")) |> Adapter.add GraLoRA.defaults
    let textFile = Path.Combine(dir, "text.jsonl")
    File.WriteAllLines(textFile, [ for i in 1..8 -> sprintf """{"text": "Count from %d: %d %d"}""" i (i + 1) (i + 2) ])
    // The records a Hugging Face dataset.map(tokenizer) would hold for those texts: input_ids and attention_mask.
    let tokenizer = match model.Tokenizer with null -> failwith "the tiny model has a tokenizer" | t -> t
    let examples = GraLoRA.Data.TrainingData.Prepare(tokenizer, GraLoRA.Data.DatasetSource.FromFile textFile).Train
    let tokenizedFile = Path.Combine(dir, "tokenized.jsonl")
    File.WriteAllLines(tokenizedFile, [ for e in examples ->
                                          let ids = System.String.Join(", ", e.InputIds)
                                          let mask = System.String.Join(", ", Array.map (fun _ -> 1) e.InputIds)
                                          sprintf """{"input_ids": [%s], "attention_mask": [%s]}""" ids mask ])
    let fromText = Evaluate.loss textFile model
    let fromIds = Evaluate.loss tokenizedFile model
    Assert.Equal(fromText.Loss, fromIds.Loss)
    Assert.Equal(fromText.Tokens, fromIds.Tokens)
    let result, _ =
        model
        |> Train.runWith ignore CancellationToken.None
            { Train.defaults with Dataset = tokenizedFile; MaxSteps = Some 2; BatchSize = 4; LearningRate = 1e-2 }
    Assert.Equal(2, result.Steps)
    Assert.True((Evaluate.loss tokenizedFile model).Loss < fromIds.Loss, "two steps on the data lower its loss")
