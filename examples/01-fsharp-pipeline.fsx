// The F# pipeline end to end on a tiny model: add a GraLoRA adapter, fine-tune it on a small chat
// dataset, merge it, export a Hugging Face checkpoint and ask the exported model a question.
// Run after './build.sh build':  dotnet fsi examples/01-fsharp-pipeline.fsx   (well under a minute on a CPU)
#r "../src/GraLoRA.Scripting/bin/Release/net8.0/TorchSharp.dll"
#r "../src/GraLoRA.Scripting/bin/Release/net8.0/GraLoRA.Core.dll"
#r "../src/GraLoRA.Scripting/bin/Release/net8.0/GraLoRA.Scripting.dll"

open System.IO
open System.Threading
open GraLoRA.Scripting

let work = Path.Combine(Path.GetTempPath(), "gralora-fsx-" + string (System.Guid.NewGuid()))
let data = Path.Combine(__SOURCE_DIRECTORY__, "data", "tiny-chat.jsonl")

// A random 2-layer llama with a real byte-level tokenizer; use BaseModel.load "./folder" for a real one.
let model = BaseModel.tiny (Path.Combine(work, "base"))
let settings = { Train.defaults with Dataset = data; MaxLength = 128; MaxSteps = Some 150; LearningRate = 3e-3; Warmup = 4; LoggingSteps = 15 }

// Train.run returns the model; Train.runWith also reports progress and returns the result.
let result, _ =
    model
    |> Adapter.add { GraLoRA.defaults with Rank = 64; K = Fixed 4; Targets = [ "all-linear" ] }
    |> Train.runWith (fun p -> printfn "step %3d/%d  loss %.4f" p.Step p.TotalSteps p.Loss) CancellationToken.None settings

let losses = result.History |> Seq.map (fun p -> p.Loss) |> Seq.toList
printfn "loss %.4f -> %.4f (%s)" (List.head losses) (List.last losses) (if List.last losses < List.head losses then "falling" else "NOT falling")

let exported = Path.Combine(work, "merged")
model |> Adapter.merge |> BaseModel.export exported |> ignore

let merged = BaseModel.load exported
let answer = merged |> Generate.chatWith { Generate.defaults with MaxNewTokens = 16 } [ ("user", "What is 1 + 1?") ]
printfn "answer: %s" answer
printfn "exported: %s" (BaseModel.info merged).Path
model.Dispose()
merged.Dispose()
Directory.Delete(work, true)
