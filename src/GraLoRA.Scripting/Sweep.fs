namespace GraLoRA.Scripting

open System
open System.Diagnostics
open System.IO
open System.Threading
open GraLoRA.Adapters

/// An adapter method in a sweep (qualified, `SweepMethod.LoRA`, so the cases do not hide the `GraLoRA` and `LoRA` modules).
[<RequireQualifiedAccess>]
type SweepMethod =
    /// GraLoRA at rank r, one row per k.
    | GraLoRA
    /// The LoRA baseline at rank r: k does not apply, so one row per rank.
    | LoRA
    /// Hybrid GraLoRA: `hybridRank` of the rank is a plain LoRA part and the other r − hybridRank are GraLoRA blocks
    /// (one row per k), so the parameter count equals LoRA's at rank r.
    | Hybrid of hybridRank: int

/// What a sweep trains: a grid of ranks × k × methods over one base model, each point trained from the same seeds.
/// Build it with the `sweep { ... }` computation expression or from `Sweep.empty`.
type SweepSpec =
    { /// Folder of the base model; every point loads a fresh copy (and disposes it).
      BaseModel: string
      /// Ranks r compared (for Hybrid, the total rank).
      Ranks: int list
      /// GraLoRA grid sizes k (combinations where k does not divide the GraLoRA rank are left out).
      Ks: int list
      /// Methods compared at each rank.
      Methods: SweepMethod list
      /// Template for every point's adapter (targets, dropout, seed...); method, rank, k and hybrid rank are set per
      /// point, and `Alpha = None` means α = 2r at every point (the same scale α/r for all methods).
      Adapter: AdapterSettings
      /// Training of every point (`Dataset` must be set).
      Train: TrainSettings
      /// A dataset to measure the loss on after training; `None` reports only training losses.
      Evaluation: string option }

/// One trained point of a sweep.
type SweepResult =
    { /// "GraLoRA", "LoRA" or "Hybrid".
      Method: string
      /// Total rank r (for Hybrid: GraLoRA blocks plus the LoRA part).
      Rank: int
      /// Grid size k; `None` for LoRA.
      K: int option
      /// The LoRA part of a Hybrid point (0 otherwise).
      HybridRank: int
      /// Trainable parameters of the adapter.
      TrainableParameters: int64
      /// Loss at the first logged step.
      FirstLoss: float
      /// Loss at the last logged step.
      FinalLoss: float
      /// Loss on `SweepSpec.Evaluation` after training.
      EvaluationLoss: float option
      /// Optimizer steps taken.
      Steps: int
      /// Wall-clock seconds of training and evaluation (informative only).
      Seconds: float }

/// Expanding, running, printing and charting sweeps.
[<RequireQualifiedAccess>]
module Sweep =

    /// No model or data yet; ranks [8], k [1; 2; 4], GraLoRA and LoRA, `GraLoRA.defaults` on every linear layer,
    /// `Train.defaults`, no evaluation.
    let empty : SweepSpec =
        { BaseModel = ""
          Ranks = [ 8 ]
          Ks = [ 1; 2; 4 ]
          Methods = [ SweepMethod.GraLoRA; SweepMethod.LoRA ]
          Adapter = { GraLoRA.defaults with Targets = [ AdapterConfig.AllLinear ] }
          Train = Train.defaults
          Evaluation = None }

    let private bad (id: string) (message: string) (value: obj) =
        GraLoRA.GraloraException(id, GraLoRA.GraloraErrorKind.InvalidArgument, message, value)

    /// The adapter settings of every point of the grid, in rank, method, k order, each with its method's label
    /// ("GraLoRA", "LoRA", "Hybrid"). A hybrid rank not below r raises `GraloraException` "InvalidHybridRank".
    let points (spec: SweepSpec) : (string * AdapterSettings) list =
        [ for rank in spec.Ranks do
            let alpha = spec.Adapter.Alpha |> Option.orElse (Some(2.0 * float rank))
            let point = { spec.Adapter with Rank = rank; Alpha = alpha; HybridRank = 0 }
            for sweepMethod in spec.Methods do
                match sweepMethod with
                | SweepMethod.LoRA -> "LoRA", { point with Method = AdapterMethod.LoRA; K = Auto }
                | SweepMethod.GraLoRA ->
                    for k in spec.Ks do
                        if k > 0 && rank % k = 0 then "GraLoRA", { point with Method = AdapterMethod.GraLoRA; K = Fixed k }
                | SweepMethod.Hybrid hybrid ->
                    if hybrid <= 0 || hybrid >= rank then
                        raise (bad "InvalidHybridRank" $"Hybrid {hybrid} needs 0 < hybrid rank < r, and r is {rank}: choose a smaller hybrid rank or a larger r." hybrid)
                    for k in spec.Ks do
                        if k > 0 && (rank - hybrid) % k = 0 then
                            "Hybrid", { point with Method = AdapterMethod.GraLoRA; Rank = rank - hybrid; HybridRank = hybrid; K = Fixed k } ]

    /// Trains every point of `spec` (a fresh base model each), calling `onResult` after each, and returns the rows.
    /// A missing base model or dataset raises before anything trains ("ModelFolderNotFound", "DatasetNotFound").
    let runWith (onResult: SweepResult -> unit) (spec: SweepSpec) : SweepResult list =
        if String.IsNullOrWhiteSpace spec.BaseModel || not (Directory.Exists spec.BaseModel) then
            raise (GraLoRA.GraloraException("ModelFolderNotFound", GraLoRA.GraloraErrorKind.NotFound,
                                    $"Sweep base model folder '{spec.BaseModel}' does not exist: set it with 'baseModel \"folder\"'.", spec.BaseModel))
        if String.IsNullOrWhiteSpace spec.Train.Dataset || not (File.Exists spec.Train.Dataset) then
            raise (GraLoRA.GraloraException("DatasetNotFound", GraLoRA.GraloraErrorKind.NotFound,
                                    $"Sweep training data '{spec.Train.Dataset}' does not exist: set it with 'train {{ Train.defaults with Dataset = ... }}'.", spec.Train.Dataset))
        let grid = points spec
        grid |> List.iter (fun (_, settings) -> (Adapter.toConfig settings).Validate())
        [ for label, settings in grid do
            use model = BaseModel.load spec.BaseModel
            model |> Adapter.add settings |> ignore
            let counts = Adapter.parameterCounts model
            let clock = Stopwatch.StartNew()
            let result, _ = Train.runWith ignore CancellationToken.None spec.Train model
            let evaluation = spec.Evaluation |> Option.map (fun data -> (Evaluate.loss data model).Loss)
            let losses = result.History |> Seq.map (fun p -> p.Loss) |> Seq.toList
            let row =
                { Method = label
                  Rank = settings.Rank + settings.HybridRank
                  K = (match settings.K with Fixed k -> Some k | Auto -> None)
                  HybridRank = settings.HybridRank
                  TrainableParameters = counts.Trainable
                  FirstLoss = (match losses with first :: _ -> first | [] -> nan)
                  FinalLoss = result.FinalLoss |> Option.ofNullable |> Option.defaultValue nan
                  EvaluationLoss = evaluation
                  Steps = result.Steps
                  Seconds = clock.Elapsed.TotalSeconds }
            onResult row
            row ]

    /// Trains every point of `spec` and returns one row per point (`Sweep.runWith ignore`).
    let run (spec: SweepSpec) : SweepResult list = runWith ignore spec

    /// The rows as a fixed-width text table (method, r, k, hybrid rank, trainable parameters, first, final and
    /// evaluation loss), one line per row under a header.
    let table (results: SweepResult list) : string =
        let header = sprintf "%-8s %4s %3s %6s %10s %10s %10s %10s" "method" "r" "k" "hybrid" "params" "first" "final" "eval"
        let line (r: SweepResult) =
            sprintf "%-8s %4d %3s %6d %10d %10.4f %10.4f %10s" r.Method r.Rank (r.K |> Option.map string |> Option.defaultValue "-")
                r.HybridRank r.TrainableParameters r.FirstLoss r.FinalLoss (r.EvaluationLoss |> Option.map (sprintf "%.4f") |> Option.defaultValue "-")
        String.Join(Environment.NewLine, header :: List.map line results)

    /// Draws the rows as a PNG at `path` (written atomically) and returns the path: the evaluation loss (else the final
    /// training loss) against k, one line per method and rank; LoRA, which has no k, as a dashed horizontal line.
    let chart (path: string) (results: SweepResult list) : string =
        use plot = new ScottPlot.Plot()
        let lossOf (r: SweepResult) = r.EvaluationLoss |> Option.defaultValue r.FinalLoss
        for (label, rank), rows in results |> List.groupBy (fun r -> r.Method, r.Rank) do
            match rows |> List.choose (fun r -> r.K |> Option.map (fun k -> float k, lossOf r)) |> List.sortBy fst with
            | [] ->
                for r in rows do
                    let line = plot.Add.HorizontalLine(lossOf r)
                    line.LinePattern <- ScottPlot.LinePattern.Dashed
                    line.LegendText <- $"{label} r={rank}"
            | series ->
                let scatter = plot.Add.Scatter(series |> List.map fst |> List.toArray, series |> List.map snd |> List.toArray)
                scatter.LegendText <- $"{label} r={rank}"
        plot.Axes.Bottom.Label.Text <- "k"
        plot.Axes.Left.Label.Text <- (if results |> List.exists (fun r -> r.EvaluationLoss.IsSome) then "evaluation loss" else "final training loss")
        plot.ShowLegend(ScottPlot.Alignment.UpperRight) |> ignore
        let bytes = plot.GetImageBytes(800, 450, ScottPlot.ImageFormat.Png)
        let full = Path.GetFullPath path
        GraLoRA.IO.AtomicFile.Write(full, fun stream -> stream.Write(bytes, 0, bytes.Length))
        full

/// The `sweep { ... }` computation expression: each operation sets one field of a `SweepSpec`, starting from
/// `Sweep.empty`; the result is the spec, run with `Sweep.run`.
type SweepBuilder() =
    /// Starts from `Sweep.empty`.
    member _.Yield(_: unit) : SweepSpec = Sweep.empty

    /// Sets the base model folder.
    [<CustomOperation("baseModel")>]
    member _.BaseModel(spec: SweepSpec, folder: string) : SweepSpec = { spec with BaseModel = folder }

    /// Sets the ranks.
    [<CustomOperation("ranks")>]
    member _.Ranks(spec: SweepSpec, ranks: int list) : SweepSpec = { spec with Ranks = ranks }

    /// Sets the GraLoRA grid sizes.
    [<CustomOperation("ks")>]
    member _.Ks(spec: SweepSpec, ks: int list) : SweepSpec = { spec with Ks = ks }

    /// Sets the methods compared at each rank.
    [<CustomOperation("methods")>]
    member _.Methods(spec: SweepSpec, methods: SweepMethod list) : SweepSpec = { spec with Methods = methods }

    /// Sets the adapter template (targets, dropout, α, seed).
    [<CustomOperation("adapter")>]
    member _.Adapter(spec: SweepSpec, settings: AdapterSettings) : SweepSpec = { spec with Adapter = settings }

    /// Sets the training settings of every point.
    [<CustomOperation("train")>]
    member _.Train(spec: SweepSpec, settings: TrainSettings) : SweepSpec = { spec with Train = settings }

    /// Measures the loss on `dataset` after each point's training.
    [<CustomOperation("evaluate")>]
    member _.Evaluate(spec: SweepSpec, dataset: string) : SweepSpec = { spec with Evaluation = Some dataset }

/// Brings the `sweep` computation expression into scope with `open GraLoRA.Scripting`.
[<AutoOpen>]
module SweepExpression =
    /// Builds a `SweepSpec`: `sweep { baseModel "m"; ranks [ 8 ]; ks [ 1; 2; 4 ]; train { Train.defaults with Dataset = "d.jsonl" } }`.
    let sweep = SweepBuilder()
