module GraLoRA.Scripting.Tests.TrainAsyncTests

open System
open System.IO
open System.Threading
open Xunit
open GraLoRA.Training
open GraLoRA.Scripting
open GraLoRA.Scripting.Tests.Support

let private chat = Path.Combine(repoRoot, "examples", "data", "tiny-chat.jsonl")
let private adapter = { GraLoRA.defaults with Rank = 8; K = Fixed 2 }

let private settings output =
    { Train.defaults with Dataset = chat; MaxLength = 64; BatchSize = 4; MaxSteps = Some 6; LearningRate = 1e-2; LoggingSteps = 1; OutputPath = output }

[<Fact>]
let ``Train.start reports progress, stops on cancellation with a checkpoint, and a resumed run finishes the steps`` () =
    let dir = tempDir ()
    let folder = Path.Combine(dir, "base")
    let output = Path.Combine(dir, "run")
    use model = BaseModel.tiny folder |> Adapter.add adapter
    use cancel = new CancellationTokenSource()
    let seen = ResizeArray<TrainingProgress>()
    // (Which thread reports is not asserted: a task not yet started may run inline on the thread that waits for it.)
    let onProgress (p: TrainingProgress) =
        seen.Add p
        if p.Step = 2 then cancel.Cancel()
    let task = Train.start onProgress cancel.Token (settings (Some output)) model
    let result = task.Result
    Assert.True(result.Cancelled)
    Assert.Equal(2, result.Steps)
    Assert.Equal<int list>([ 1; 2 ], seen |> Seq.map (fun p -> p.Step) |> List.ofSeq)
    let checkpoint = match result.LastCheckpoint with null -> failwith "no checkpoint written" | c -> c
    Assert.Equal(Path.Combine(output, "checkpoint-2"), checkpoint)
    Assert.True(File.Exists(Path.Combine(checkpoint, "adapter_model.safetensors")))

    // A fresh process would start from the base model and the checkpoint: do the same here.
    use fresh = BaseModel.load folder |> Adapter.add adapter
    let resumed = ResizeArray<TrainingProgress>()
    let finished = (Train.start resumed.Add CancellationToken.None { settings (Some output) with ResumeFrom = Some output } fresh).Result
    Assert.False(finished.Cancelled)
    Assert.Equal(6, finished.Steps)
    Assert.Equal<int list>([ 3; 4; 5; 6 ], resumed |> Seq.map (fun p -> p.Step) |> List.ofSeq)

    // Resuming reproduces the uninterrupted run's losses (same seeds, data position and optimizer state).
    use straight = BaseModel.load folder |> Adapter.add adapter
    let whole, _ = Train.runWith ignore CancellationToken.None (settings None) straight
    let losses (history: TrainingProgress seq) = history |> Seq.map (fun p -> Math.Round(p.Loss, 4)) |> List.ofSeq
    Assert.Equal<float list>(losses whole.History |> List.skip 2, losses resumed)

[<Fact>]
let ``Train.observe delivers every logging step then completes, and errors arrive as OnError`` () =
    let dir = tempDir ()
    use model = BaseModel.tiny (Path.Combine(dir, "base")) |> Adapter.add adapter
    let steps = ResizeArray<int>()
    use completed = new ManualResetEventSlim()
    let mutable error : exn option = None
    let observer =
        { new IObserver<TrainingProgress> with
            member _.OnNext p = steps.Add p.Step
            member _.OnError e = error <- Some e; completed.Set()
            member _.OnCompleted() = completed.Set() }
    use subscription = (Train.observe (settings None) model).Subscribe observer
    Assert.True(completed.Wait(TimeSpan.FromMinutes 10.0), "training never completed")
    Assert.Equal(None, error)
    Assert.Equal<int list>([ 1 .. 6 ], List.ofSeq steps)

    use failed = new ManualResetEventSlim()
    let mutable failure : exn option = None
    let failing =
        { new IObserver<TrainingProgress> with
            member _.OnNext _ = ()
            member _.OnError e = failure <- Some e; failed.Set()
            member _.OnCompleted() = failed.Set() }
    use _ = (Train.observe { settings None with Dataset = Path.Combine(dir, "missing.jsonl") } model).Subscribe failing
    Assert.True(failed.Wait(TimeSpan.FromMinutes 2.0), "the failing run never finished")
    match failure with
    | Some (:? GraLoRA.GraloraException as e) -> Assert.Equal("DatasetNotFound", e.ErrorId)
    | other -> failwithf "expected a GraloraException, got %A" other
