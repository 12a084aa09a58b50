namespace GraLoRA.Scripting

open System
open GraLoRA.Adapters
open GraLoRA.Data
open GraLoRA.Training

/// The GraLoRA paper's comparison at small scale (Core's `MethodComparison`, as Compare-GraLoRAMethod runs it): the same
/// model, data and training for each method at equal trainable parameters, one row per method.
[<RequireQualifiedAccess>]
module Compare =

    /// The paper's line-up: LoRA (the time reference), GraLoRA, MoRA, RaSA, DoRA.
    let paperMethods : AdapterMethod list = List.ofSeq MethodComparisonOptions.PaperMethods

    /// Trains each of `methods` at `rank` (the paper's settings per method; LoRA always runs, first) on `settings.Dataset`,
    /// evaluated on `settings.Validation` (or `ValidationSplit`), with `template`'s targets and dropout; calls `onRow` after
    /// each method and writes the loss curves to `chartPath` when given, replacing what is there (as `Sweep.chart` does).
    /// The adapters are removed afterwards.
    let methodsWith (onRow: MethodComparisonRow -> unit) (methods: AdapterMethod list) (rank: int) (template: AdapterSettings)
                    (settings: TrainSettings) (chartPath: string option) (model: BaseModel) : MethodComparisonResult =
        let data = AdapterTrials.PrepareData(model, DatasetSource.FromFile settings.Dataset, Train.toSettings settings, "The comparison reports validation losses")
        let options =
            MethodComparisonOptions(
                Methods = List.toArray methods, Rank = rank, Adapter = Adapter.toConfig template, Training = Train.toOptions settings,
                ClassLabels = data.ClassLabels)
        let progress = { new IProgress<MethodComparisonRow> with member _.Report row = onRow row }
        MethodComparison.Run(model, data.Train, data.Validation, options,
                             Option.toObj chartPath, progress, true)

    /// `Compare.methodsWith ignore`: the rows and the chart.
    let methods (methods: AdapterMethod list) (rank: int) (template: AdapterSettings) (settings: TrainSettings) (chartPath: string option) (model: BaseModel) =
        methodsWith ignore methods rank template settings chartPath model

    /// The rows as a fixed-width text table: settings, trainable parameters, final and best validation loss, accuracy,
    /// median step time and its ratio to LoRA's.
    let table (result: MethodComparisonResult) : string =
        let header = sprintf "%-20s %10s %9s %9s %8s %9s %7s" "method" "params" "val loss" "best" "acc" "step ms" "×LoRA"
        let opt (format: float -> string) (value: Nullable<float>) = if value.HasValue then format value.Value else "-"
        let line (r: MethodComparisonRow) =
            sprintf "%-20s %10d %9s %9s %8s %9.1f %7.2f" r.Settings r.TrainableParameters (opt (sprintf "%.4f") r.FinalValidationLoss)
                (opt (sprintf "%.4f") r.BestValidationLoss) (opt (sprintf "%.3f") r.Accuracy) (1000.0 * r.StepSeconds) r.TimeVersusLoRA
        String.Join(Environment.NewLine, header :: (result.Rows |> Seq.map line |> List.ofSeq))
