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

/// A fine-tuning run: the data, its preparation, the optimizer and output settings — every setting of
/// `Start-GraLoRATraining` (Core's `TrainingSettings`; a test keeps the lists equal), with the same defaults and seeding.
/// Start from `Train.defaults`.
type TrainSettings =
    { /// Training data file (.jsonl, .json, .csv, .parquet): chat, alpaca, prompt/completion, text, or text + label.
      Dataset: string
      /// The record format; `None` detects it from the first record.
      Format: DatasetFormat option
      /// Validation data file; `None` uses `ValidationSplit` (or no validation). (`-ValidationDataset`)
      Validation: string option
      /// Fraction of the training records held out for validation when `Validation` is `None` (0 = none).
      ValidationSplit: float
      /// Longest example in tokens; longer ones are cut at the end.
      MaxLength: int
      /// Concatenate examples into sequences of up to `MaxLength` tokens.
      Packing: bool
      /// Learn the prompt tokens too (default: only responses).
      TrainOnPrompt: bool
      /// Examples per micro-batch.
      BatchSize: int
      /// Batch examples of similar length together (less padding).
      GroupByLength: bool
      /// Peak learning rate.
      LearningRate: float
      /// Passes over the training data (ignored when `MaxSteps` is set).
      Epochs: int
      /// Optimizer steps to run; `None` runs `Epochs`.
      MaxSteps: int option
      /// Micro-batches per optimizer step.
      GradientAccumulation: int
      /// Linear warmup steps (overrides `WarmupRatio`). (`-WarmupSteps`)
      Warmup: int
      /// Warmup as a fraction of all steps.
      WarmupRatio: float
      /// Schedule after warmup.
      Schedule: Schedule
      /// AdamW weight decay.
      WeightDecay: float
      /// Clip the gradient norm to this (0 = off).
      MaxGradNorm: float
      /// Seed of the data order, the validation split, packing and training randomness.
      Seed: int
      /// Where checkpoints, metrics.jsonl and TensorBoard events go; `None` writes nothing.
      OutputPath: string option
      /// Start afresh in an `OutputPath` that already holds files (a previous run's), replacing them (`Start-GraLoRATraining
      /// -Force`); `false` makes such a folder an `OutputExists` error. Not together with `ResumeFrom`.
      OverwriteOutput: bool
      /// Save a checkpoint every this many steps (needs `OutputPath`); `None` saves only at the end and on cancellation.
      SaveSteps: int option
      /// Evaluate on the validation data every this many steps; `None` evaluates at the end only.
      EvalSteps: int option
      /// Checkpoints kept (the newest and the best by validation loss always are).
      SaveTotalLimit: int
      /// Stop after this many evaluations without a better validation loss; `None` never stops early.
      EarlyStoppingPatience: int option
      /// Recompute each decoder layer's activations in backward (less memory for long sequences).
      GradientCheckpointing: bool
      /// What a NaN or infinite loss or gradient does: skip that step (with a warning in the result) or stop.
      OnNonFinite: NonFiniteAction
      /// Report progress every this many steps.
      LoggingSteps: int
      /// The adapter to train; `None` trains `Adapter.current` (the only active, or only, adapter).
      Adapter: string option
      /// Continue from the latest checkpoint in `OutputPath`.
      Resume: bool
      /// A checkpoint folder (or an `OutputPath` folder, meaning its latest checkpoint) to continue from where that
      /// run stopped: adapter weights, optimizer state, step and data position; without `OutputPath`, new checkpoints
      /// go beside it. `None` starts afresh.
      ResumeFrom: string option }

/// Fine-tuning the current adapter of a model.
[<RequireQualifiedAccess>]
module Train =

    let private core = TrainingSettings.Default

    /// Core's defaults (`TrainingSettings.Default`) and no dataset yet (set `Dataset`): one epoch, max length 1024,
    /// batch 8, learning rate 2e-4, linear schedule, no warmup, seed 42, logging every 10 steps, nothing written.
    let defaults : TrainSettings =
        { Dataset = ""
          Format = Option.ofNullable core.Format
          Validation = Option.ofObj core.ValidationDataset
          ValidationSplit = core.ValidationSplit
          MaxLength = core.MaxLength
          Packing = core.Packing
          TrainOnPrompt = core.TrainOnPrompt
          BatchSize = core.BatchSize
          GroupByLength = core.GroupByLength
          LearningRate = core.LearningRate
          Epochs = core.Epochs
          MaxSteps = Option.ofNullable core.MaxSteps
          GradientAccumulation = core.GradientAccumulation
          Warmup = core.WarmupSteps
          WarmupRatio = core.WarmupRatio
          Schedule =
            (match core.Schedule with
             | LearningRateSchedule.Constant -> Constant
             | LearningRateSchedule.Cosine -> Cosine
             | _ -> Linear)
          WeightDecay = core.WeightDecay
          MaxGradNorm = core.MaxGradNorm
          Seed = core.Seed
          OutputPath = Option.ofObj core.OutputPath
          OverwriteOutput = core.OverwriteOutput
          SaveSteps = Option.ofNullable core.SaveSteps
          EvalSteps = Option.ofNullable core.EvalSteps
          SaveTotalLimit = core.SaveTotalLimit
          EarlyStoppingPatience = Option.ofNullable core.EarlyStoppingPatience
          GradientCheckpointing = core.GradientCheckpointing
          OnNonFinite = core.OnNonFinite
          LoggingSteps = core.LoggingSteps
          Adapter = Option.ofObj core.Adapter
          Resume = core.Resume
          ResumeFrom = Option.ofObj core.ResumeFrom }

    /// Core's `TrainingSettings` for `settings` (everything but the dataset): the one place they are mapped.
    let toSettings (settings: TrainSettings) : TrainingSettings =
        let schedule =
            match settings.Schedule with
            | Constant -> LearningRateSchedule.Constant
            | Linear -> LearningRateSchedule.Linear
            | Cosine -> LearningRateSchedule.Cosine
        TrainingSettings(
            // data
            Format = Option.toNullable settings.Format, ValidationDataset = Option.toObj settings.Validation,
            ValidationSplit = settings.ValidationSplit, MaxLength = settings.MaxLength, Packing = settings.Packing,
            TrainOnPrompt = settings.TrainOnPrompt, BatchSize = settings.BatchSize, GroupByLength = settings.GroupByLength,
            // optimisation
            LearningRate = settings.LearningRate, Epochs = settings.Epochs, MaxSteps = Option.toNullable settings.MaxSteps,
            GradientAccumulation = settings.GradientAccumulation, WarmupSteps = settings.Warmup, WarmupRatio = settings.WarmupRatio,
            Schedule = schedule, WeightDecay = settings.WeightDecay, MaxGradNorm = settings.MaxGradNorm, Seed = settings.Seed,
            // output and control
            OutputPath = Option.toObj settings.OutputPath, OverwriteOutput = settings.OverwriteOutput, SaveSteps = Option.toNullable settings.SaveSteps,
            EvalSteps = Option.toNullable settings.EvalSteps, SaveTotalLimit = settings.SaveTotalLimit,
            EarlyStoppingPatience = Option.toNullable settings.EarlyStoppingPatience, GradientCheckpointing = settings.GradientCheckpointing,
            OnNonFinite = settings.OnNonFinite, LoggingSteps = settings.LoggingSteps,
            // the job
            Adapter = Option.toObj settings.Adapter, Resume = settings.Resume, ResumeFrom = Option.toObj settings.ResumeFrom)

    /// Core's `TrainingOptions` for `settings` (what the Trainer gets, writing to `OutputPath`).
    let toOptions (settings: TrainSettings) : TrainingOptions =
        (toSettings settings).ToTrainingOptions(Option.toObj settings.OutputPath)

    /// Core's `TrainingJob` for `settings` on `model`: adapter, tokenizer, data, classification head and loaders, checked
    /// and ready to run (Core's errors, such as "NoActiveAdapter" or "InvalidTrainingOption", before any data is read);
    /// cancelling `cancellation` stops the data preparation (chat-template rendering).
    let prepareWith (cancellation: CancellationToken) (settings: TrainSettings) (model: BaseModel) : TrainingJob =
        TrainingJob.Prepare(model, DatasetSource.FromFile settings.Dataset, toSettings settings, cancellation)

    /// `Train.prepareWith` without cancellation.
    let prepare (settings: TrainSettings) (model: BaseModel) : TrainingJob = prepareWith CancellationToken.None settings model

    /// Trains as `Train.run` does, calling `onProgress` synchronously on every logging step and stopping at the next
    /// step boundary once `cancellation` is cancelled (then `Cancelled` is true and, with `OutputPath`, a resumable
    /// checkpoint is written; continue with `ResumeFrom`). Returns Core's `TrainingResult` (steps, losses, history) and the model.
    let runWith (onProgress: TrainingProgress -> unit) (cancellation: CancellationToken) (settings: TrainSettings) (model: BaseModel)
        : TrainingResult * BaseModel =
        let job = prepareWith cancellation settings model
        let progress = { new System.IProgress<TrainingProgress> with member _.Report p = onProgress p }
        let result = job.Run(progress, cancellation)
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
