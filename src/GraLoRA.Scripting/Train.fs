namespace GraLoRA.Scripting

open System
open System.Threading
open System.Threading.Tasks
open GraLoRA.Data
open GraLoRA.Training

/// How the learning rate moves after warmup.
type Schedule =
    /// Stays at the peak.
    | Constant
    /// Falls linearly to 0 at the last step.
    | Linear
    /// Half a cosine from the peak to 0.
    | Cosine

/// A fine-tuning run: the data, its preparation and the optimizer settings (the same knobs, defaults and
/// seeding as `Start-GraLoRATraining`). Start from `Train.defaults`.
type TrainSettings =
    { /// Training data file (.jsonl, .json, .csv, .parquet): chat, alpaca, prompt/completion, text, or text + label.
      Dataset: string
      /// The record format; `None` detects it from the first record.
      Format: DatasetFormat option
      /// Validation data file; `None` uses `ValidationSplit` (or no validation).
      Validation: string option
      /// Fraction of the training records held out for validation when `Validation` is `None` (0 = none).
      ValidationSplit: float
      /// Longest example in tokens; longer ones are cut at the end.
      MaxLength: int
      /// Examples per micro-batch.
      BatchSize: int
      /// Micro-batches per optimizer step.
      GradientAccumulation: int
      /// Peak learning rate.
      LearningRate: float
      /// Passes over the training data (ignored when `MaxSteps` is set).
      Epochs: int
      /// Optimizer steps to run; `None` runs `Epochs`.
      MaxSteps: int option
      /// Linear warmup steps.
      Warmup: int
      /// Schedule after warmup.
      Schedule: Schedule
      /// AdamW weight decay.
      WeightDecay: float
      /// Seed of the data order, the validation split, packing and training randomness.
      Seed: int
      /// Learn the prompt tokens too (default: only responses).
      TrainOnPrompt: bool
      /// Concatenate examples into sequences of up to `MaxLength` tokens.
      Packing: bool
      /// Report progress every this many steps.
      LoggingSteps: int
      /// Where checkpoints, metrics.jsonl and TensorBoard events go; `None` writes nothing.
      OutputPath: string option
      /// Start afresh in an `OutputPath` that already holds files (a previous run's), replacing them (`Start-GraLoRATraining
      /// -Force`); `false` makes such a folder an `OutputExists` error. Not together with `ResumeFrom`.
      OverwriteOutput: bool
      /// Save a checkpoint every this many steps (needs `OutputPath`); `None` saves only at the end and on cancellation.
      SaveSteps: int option
      /// A checkpoint folder (or an `OutputPath` folder, meaning its latest checkpoint) to continue from where that
      /// run stopped: adapter weights, optimizer state, step and data position; `None` starts afresh.
      ResumeFrom: string option
      /// The adapter to train; `None` trains `Adapter.current` (the only active, or only, adapter).
      Adapter: string option }

/// Fine-tuning the current adapter of a model.
[<RequireQualifiedAccess>]
module Train =

    /// One epoch over no dataset yet (set `Dataset`): max length 1024, batch 8, learning rate 2e-4, linear schedule,
    /// no warmup, seed 42, logging every 10 steps, nothing written.
    let defaults : TrainSettings =
        { Dataset = ""
          Format = None
          Validation = None
          ValidationSplit = 0.0
          MaxLength = 1024
          BatchSize = 8
          GradientAccumulation = 1
          LearningRate = 2e-4
          Epochs = 1
          MaxSteps = None
          Warmup = 0
          Schedule = Linear
          WeightDecay = 0.0
          Seed = 42
          TrainOnPrompt = false
          Packing = false
          LoggingSteps = 10
          OutputPath = None
          OverwriteOutput = false
          SaveSteps = None
          ResumeFrom = None
          Adapter = None }

    /// Core's `TrainingOptions` for `settings`.
    let toOptions (settings: TrainSettings) : TrainingOptions =
        TrainingOptions(
            LearningRate = settings.LearningRate,
            Epochs = settings.Epochs,
            MaxSteps = Option.toNullable settings.MaxSteps,
            GradientAccumulationSteps = settings.GradientAccumulation,
            WarmupSteps = settings.Warmup,
            Schedule =
                (match settings.Schedule with
                 | Constant -> LearningRateSchedule.Constant
                 | Linear -> LearningRateSchedule.Linear
                 | Cosine -> LearningRateSchedule.Cosine),
            WeightDecay = settings.WeightDecay,
            Seed = int64 settings.Seed,
            LoggingSteps = settings.LoggingSteps,
            SaveSteps = Option.toNullable settings.SaveSteps,
            OutputDirectory = Option.toObj settings.OutputPath,
            OverwriteOutputDirectory = settings.OverwriteOutput)

    /// Trains as `Train.run` does, calling `onProgress` synchronously on every logging step and stopping at the next
    /// step boundary once `cancellation` is cancelled (then `Cancelled` is true and, with `OutputPath`, a resumable
    /// checkpoint is written; continue with `ResumeFrom`). Returns Core's `TrainingResult` (steps, losses, history) and the model.
    let runWith (onProgress: TrainingProgress -> unit) (cancellation: CancellationToken) (settings: TrainSettings) (model: BaseModel)
        : TrainingResult * BaseModel =
        let adapter = settings.Adapter |> Option.defaultWith (fun () -> Adapter.current model)
        // Options and adapter are checked before the data is read, as the cmdlet does.
        let trainer = Trainer(model, adapter, toOptions settings)
        let tokenizer =
            match model.Tokenizer with
            | null -> raise (GraLoRA.GraloraException("TokenizerNotFound", GraLoRA.GraloraErrorKind.NotFound,
                                                      $"Training needs the model's tokenizer, and '{model.Path}' has no tokenizer.json.", model.Path))
            | t -> t
        let train = DatasetSource.FromFile settings.Dataset
        let validation = settings.Validation |> Option.map DatasetSource.FromFile |> Option.toObj
        let dataOptions =
            DataOptions(Format = Option.toNullable settings.Format, MaxLength = settings.MaxLength, TrainOnPrompt = settings.TrainOnPrompt,
                        Packing = settings.Packing, ValidationFraction = settings.ValidationSplit, Seed = settings.Seed,
                        ClassLabels = model.NamedClassLabels)
        let data = TrainingData.Prepare(tokenizer, train, validation, dataOptions)
        match data.ClassLabels with
        | null -> ()
        | labels -> model.PrepareClassification(adapter, labels.Labels)
        let batchOptions = BatchOptions(BatchSize = settings.BatchSize, Seed = settings.Seed)
        let trainLoader = data.CreateTrainLoader batchOptions
        let progress = { new System.IProgress<TrainingProgress> with member _.Report p = onProgress p }
        let result =
            let validation : IBatchSource | null = if data.Validation.Count > 0 then data.CreateValidationLoader batchOptions else null
            trainer.Train(trainLoader, validation, progress, cancellation, Option.toObj settings.ResumeFrom)
        result, model

    /// Trains the current adapter (or `settings.Adapter`) on `settings.Dataset` and returns the model, so a pipeline
    /// goes on (`Adapter.merge`, `BaseModel.export`). Use `Train.runWith` for progress and the result.
    let run (settings: TrainSettings) (model: BaseModel) : BaseModel =
        runWith ignore CancellationToken.None settings model |> snd

    /// Starts `Train.runWith` on a thread-pool thread and returns at once. `onProgress` is called on that thread at
    /// every logging step; cancelling `cancellation` stops the run at the next step boundary and the task still
    /// completes normally, with `Cancelled = true` and (with `OutputPath`) a checkpoint to resume from. Errors fault
    /// the task. Do not touch the model from another thread until the task has completed.
    let start (onProgress: TrainingProgress -> unit) (cancellation: CancellationToken) (settings: TrainSettings) (model: BaseModel)
        : Task<TrainingResult> =
        Task.Run<TrainingResult>(fun () -> runWith onProgress cancellation settings model |> fst)

    /// Training as a cold observable: each subscription starts a run (`Train.start`) whose progress reports arrive
    /// through `OnNext` on the training thread, then `OnCompleted` (also after a cancelled run) or `OnError`.
    /// Disposing the subscription cancels the run at the next step boundary.
    let observe (settings: TrainSettings) (model: BaseModel) : IObservable<TrainingProgress> =
        { new IObservable<TrainingProgress> with
            member _.Subscribe(observer: IObserver<TrainingProgress>) =
                let cancel = new CancellationTokenSource()
                let run = start observer.OnNext cancel.Token settings model
                run.ContinueWith(fun (finished: Task<TrainingResult>) ->
                    match finished.Exception with
                    | null -> observer.OnCompleted()
                    | error -> observer.OnError(error.GetBaseException())
                    cancel.Dispose())
                |> ignore
                { new IDisposable with
                    member _.Dispose() = try cancel.Cancel() with :? ObjectDisposedException -> () } }

/// Loss and exact match of a model (with its active adapters) on a dataset.
[<RequireQualifiedAccess>]
module Evaluate =

    /// Mean next-token loss, perplexity and token count on `dataset` (examples up to 1024 tokens, batches of 8, in
    /// record order), as `Invoke-GraLoRAEvaluation` computes them.
    let loss (dataset: string) (model: BaseModel) : EvaluationResult =
        let tokenizer =
            match model.Tokenizer with
            | null -> raise (GraLoRA.GraloraException("TokenizerNotFound", GraLoRA.GraloraErrorKind.NotFound,
                                                      $"Evaluation needs the model's tokenizer, and '{model.Path}' has no tokenizer.json.", model.Path))
            | t -> t
        let data = TrainingData.Prepare(tokenizer, DatasetSource.FromFile dataset, null, DataOptions(ClassLabels = model.ClassLabels))
        let loader = BatchLoader(data.Train, data.PadTokenId, BatchOptions(BatchSize = 8, Shuffle = false))
        Trainer.Evaluate(model, loader)

    /// The label and every label's probability for each text, with the model's classification head and active
    /// adapters (as `Invoke-GraLoRAClassification`).
    let classify (texts: string list) (model: BaseModel) : GraLoRA.Models.ClassificationPrediction list =
        model.Classify(Array.ofList texts) |> List.ofSeq

    /// As `classify` for sentence pairs (text, second text).
    let classifyPairs (pairs: (string * string) list) (model: BaseModel) : GraLoRA.Models.ClassificationPrediction list =
        let texts = pairs |> List.map fst |> Array.ofList
        let seconds = pairs |> List.map (fun (_, b) -> (b: string | null)) |> Array.ofList
        model.Classify(texts, seconds) |> List.ofSeq

    /// Greedy answers to the first `limit` records of `dataset` (chat, alpaca or prompt/completion) compared with the references.
    let exactMatchFirst (limit: int) (dataset: string) (model: BaseModel) : ExactMatchResult =
        ExactMatch.Evaluate(model, DatasetSource.FromFile dataset, limit = limit)

    /// Greedy answers to every record of `dataset` (chat, alpaca or prompt/completion) compared with the references.
    let exactMatch (dataset: string) (model: BaseModel) : ExactMatchResult =
        ExactMatch.Evaluate(model, DatasetSource.FromFile dataset)
