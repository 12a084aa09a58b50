namespace GraLoRA.Scripting

open GraLoRA.Data
open GraLoRA.Diagnostics

/// What `Diagnostics.entanglement` measures (as `Measure-GradientEntanglement`).
type EntanglementSettings =
    { /// Linear layers: full names or suffixes ("down_proj", "layers.1.mlp.down_proj"); [] = every down_proj.
      Layers: string list
      /// Batches of the data to run.
      Batches: int
      /// Examples per batch.
      BatchSize: int
      /// Longest example in tokens.
      MaxLength: int
      /// Rank of the fresh LoRA and GraLoRA factors (LoRA gets Rank + HybridRank).
      Rank: int
      /// GraLoRA k of the fresh factors; `Auto` = r/k² ≈ 8.
      K: K
      /// Hybrid rank of the fresh GraLoRA factors.
      HybridRank: int
      /// Analyse this adapter's own factors instead of fresh ones.
      Adapter: string option
      /// Keep B = 0 as PEFT initialises it (U = G·AᵀA) instead of drawing B with A's bound.
      ZeroB: bool
      /// Outlier rule factor (mean or max |x| ≥ this × the median channel's).
      OutlierThreshold: float
      /// Synthetic outliers: (input channel, factor) applied before each measured layer.
      InjectOutliers: (int * float) list
      /// Seed of the fresh factors.
      Seed: int64
      /// Folder for the PNG charts; `None` = no charts.
      OutDirectory: string option }

/// Gradient entanglement, ΔW rank analysis and k selection over the Core diagnostics (GraLoRA.Diagnostics).
[<RequireQualifiedAccess>]
module Diagnostics =
    /// Every down_proj, 4 batches of 4 examples up to 512 tokens, fresh factors at r 32, k Auto, threshold 6, no charts.
    let defaults : EntanglementSettings =
        { Layers = []; Batches = 4; BatchSize = 4; MaxLength = 512; Rank = GraLoRA.Adapters.AdapterDefaults.GraloraRank; K = Auto; HybridRank = 0; Adapter = None; ZeroB = false
          OutlierThreshold = ChannelStatistics.DefaultOutlierThreshold; InjectOutliers = []; Seed = 0L; OutDirectory = None }

    let private tokenizer (what: string) (model: BaseModel) =
        match model.Tokenizer with
        | null -> raise (GraLoRA.GraloraException("TokenizerNotFound", GraLoRA.GraloraErrorKind.NotFound,
                                                  $"{what} needs the model's tokenizer, and '{model.Path}' has no tokenizer.json.", model.Path))
        | t -> t

    /// Per-layer activation statistics and LoRA/GraLoRA deviation from full fine-tuning on the first batches of `dataset`.
    let entanglementWith (settings: EntanglementSettings) (dataset: string) (model: BaseModel) : LayerEntanglement list =
        let data = TrainingData.Prepare(tokenizer "Measuring gradient entanglement" model, DatasetSource.FromFile dataset, null,
                                        DataOptions(MaxLength = settings.MaxLength))
        let loader = BatchLoader(data.Train, data.PadTokenId, BatchOptions(BatchSize = settings.BatchSize, Shuffle = false))
        let inject : System.Collections.Generic.IReadOnlyDictionary<int, float> | null =
            if List.isEmpty settings.InjectOutliers then null
            else System.Collections.Generic.Dictionary<int, float>(dict settings.InjectOutliers)
        let options =
            EntanglementOptions(
                Layers = (if List.isEmpty settings.Layers then null else Array.ofList settings.Layers),
                Batches = settings.Batches, Rank = settings.Rank,
                K = (match settings.K with Fixed k -> GraLoRA.Adapters.KChoice.Fixed k | Auto -> GraLoRA.Adapters.KChoice.Auto),
                HybridRank = settings.HybridRank, Adapter = Option.toObj settings.Adapter, Seed = settings.Seed, ZeroB = settings.ZeroB,
                OutlierThreshold = settings.OutlierThreshold,
                InjectOutliers = inject)
        GradientEntanglement.Measure(model, loader, options)
        |> Seq.map (fun layer ->
            match settings.OutDirectory with
            | Some folder -> DiagnosticCharts.SaveEntanglement(layer, folder)
            | None -> layer)
        |> List.ofSeq

    /// `entanglementWith defaults`.
    let entanglement (dataset: string) (model: BaseModel) : LayerEntanglement list = entanglementWith defaults dataset model

    /// ΔW singular values, numerical rank and entropy-based effective rank of adapter `name` per layer (as `Get-GraLoRAAdapter -Detailed`).
    let spectrum (name: string) (model: BaseModel) : AdapterSpectrum list = List.ofSeq (RankAnalysis.Adapter(model.Adapters, name))

    /// Draws spectra (σ_i/σ_1, log scale) into a PNG and returns its path (an existing file there is replaced).
    let spectrumChart (path: string) (spectra: AdapterSpectrum list) : string = DiagnosticCharts.SaveSpectra(Array.ofList spectra, path, overwrite = true)

    /// Short equal-budget runs over k (and hybrid splits) at total rank `rank`, scored on `validation`; as `Find-GraLoRAK`.
    /// `train` and `validation` are dataset files; trial adapters go on `targets` and are removed afterwards.
    let findK (rank: int) (stepBudget: int) (targets: string list) (train: string) (validation: string) (model: BaseModel) : KTrial list =
        let tok = tokenizer "Find k" model
        let data = TrainingData.Prepare(tok, DatasetSource.FromFile train, DatasetSource.FromFile validation, DataOptions())
        let batches = BatchOptions(BatchSize = 8)
        let options =
            KSearchOptions(Rank = rank, StepBudget = stepBudget,
                           Adapter = GraLoRA.Adapters.AdapterConfig(TargetModules = Array.ofList targets, Alpha = System.Nullable(2.0 * float rank)))
        List.ofSeq (KSearch.Run(model, data.CreateTrainLoader batches, data.CreateValidationLoader batches, options))
