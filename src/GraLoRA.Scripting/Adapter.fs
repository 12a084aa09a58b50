namespace GraLoRA.Scripting

open System
open GraLoRA
open GraLoRA.Adapters

/// GraLoRA's grid size k: how many blocks each side of a weight is split into.
type K =
    /// Exactly k (must divide the rank and the module's in/out sizes).
    | Fixed of int
    /// The paper's rule of thumb r/k² ≈ 8 (`AdapterConfig.AutoK`): k 2 for r 16–32, k 4 for r 64–128, applied by Core
    /// to each module's own rank. For LoRA settings `Auto` means "no k" (LoRA has none).
    | Auto

/// One adapter's settings: the method (GraLoRA or a baseline), rank, k, alpha, dropout and which modules it adapts.
/// Start from `GraLoRA.defaults`, `LoRA.defaults`, `DoRA.defaults`, `MoRA.defaults`, `RaSA.defaults` or `Full.defaults`
/// and change fields with `{ ... with ... }`.
type AdapterSettings =
    { /// GraLoRA, or a baseline: LoRA, DoRA, MoRA, RaSA, Full.
      Method: AdapterMethod
      /// Rank r of the update (GraLoRA: shared by the k blocks of each row; LoRA: of B·A; MoRA: the LoRA rank its
      /// square matrix matches; RaSA: private r − k plus k shared). 0 for Full, which has none.
      Rank: int
      /// MoRA's compression type (1 or 6); `None`: the MoRA fork's default, 1. MoRA only.
      MoraType: int option
      /// RaSA's rasa_k, ranks each layer gives to its module type's shared pool; `None`: the authors' default, 1. RaSA only.
      RasaK: int option
      /// GraLoRA grid size (ignored as `Auto` for LoRA; `Fixed` with LoRA is an error).
      K: K
      /// Hybrid LoRA rank added beside the GraLoRA blocks (GraLoRA only; 0 = none).
      HybridRank: int
      /// Scale numerator α; `None` uses the method's default (GraLoRA 64, LoRA/DoRA 8; RaSA's rasa_alpha 8). MoRA and Full have none.
      Alpha: float option
      /// Dropout on the adapter input.
      Dropout: float
      /// Module-name suffixes to adapt (PEFT's target_modules), or ["all-linear"] for every linear but the head.
      Targets: string list
      /// Module-name suffixes never adapted.
      Exclude: string list
      /// Linear modules (e.g. "lm_head") trained in full and saved with the adapter.
      ModulesToSave: string list
      /// Which biases train with the adapter: "none", "all", or "gralora_only" / "lora_only".
      Bias: string
      /// LoRA and DoRA only: scale by α/√r (rsLoRA).
      UseRsLora: bool
      /// Seed of the adapter's initial weights (the global TorchSharp seed is set just before they are made);
      /// `None` leaves the generator as it is.
      Seed: int64 option }

/// Default GraLoRA settings (PEFT's GraloraConfig defaults).
[<RequireQualifiedAccess>]
module GraLoRA =
    /// GraLoRA with r 32, k `Auto` (2 for r 32), α 64, no dropout, on q_proj and v_proj, initial weights seeded with 42.
    let defaults : AdapterSettings =
        { Method = AdapterMethod.GraLoRA
          Rank = AdapterDefaults.GraloraRank
          MoraType = None
          RasaK = None
          K = Auto
          HybridRank = 0
          Alpha = None
          Dropout = 0.0
          Targets = List.ofSeq AdapterDefaults.TargetModules
          Exclude = []
          ModulesToSave = []
          Bias = "none"
          UseRsLora = false
          Seed = Some 42L }

/// Default LoRA settings (PEFT's LoraConfig defaults), the baseline GraLoRA is compared with.
[<RequireQualifiedAccess>]
module LoRA =
    /// LoRA with r 8, α 8, no dropout, on q_proj and v_proj, initial weights seeded with 42.
    let defaults : AdapterSettings = { GraLoRA.defaults with Method = AdapterMethod.LoRA; Rank = AdapterDefaults.LoraRank }

/// Default DoRA settings (PEFT's LoraConfig with use_dora).
[<RequireQualifiedAccess>]
module DoRA =
    /// DoRA with r 8, α 8 on q_proj and v_proj: LoRA plus a trained magnitude per output row.
    let defaults : AdapterSettings = { LoRA.defaults with Method = AdapterMethod.DoRA }

/// Default MoRA settings (the MoRA authors' fork: r 8, mora_type 1).
[<RequireQualifiedAccess>]
module MoRA =
    /// MoRA with r 8 (a square matrix of about LoRA's parameters at r 8 per layer), type 1, on q_proj and v_proj.
    let defaults : AdapterSettings = { LoRA.defaults with Method = AdapterMethod.MoRA }

/// Default RaSA settings (the RaSA authors' RasaConfig: r 256, rasa_k 1, rasa_alpha 8).
[<RequireQualifiedAccess>]
module RaSA =
    /// RaSA with the authors' defaults on q_proj and v_proj; their scripts use r 8–32 with rasa_k = r/8.
    let defaults : AdapterSettings = { GraLoRA.defaults with Method = AdapterMethod.RaSA; Rank = AdapterDefaults.RasaRank }

/// Full fine-tuning of the target modules (no rank, alpha or dropout).
[<RequireQualifiedAccess>]
module Full =
    /// Full fine-tuning of q_proj and v_proj; saved as a whole checkpoint.
    let defaults : AdapterSettings = { GraLoRA.defaults with Method = AdapterMethod.Full; Rank = 0 }

/// Trainable and total parameter counts of a model (shared tensors counted once).
type ParameterCounts =
    { /// Parameters that train: the active adapters' (and their modules to save and biases).
      Trainable: int64
      /// All parameters, base and adapters.
      Total: int64 }

/// How `Adapter.toLora` keeps each layer's ΔW.
type LoraTruncation =
    /// Exact: rank k·r + hybrid_r, ΔW reproduced to float32 rounding.
    | Exact
    /// The n strongest directions in every layer (at most the exact rank).
    | KeepRank of int
    /// Per layer, the fewest directions holding this share, in (0, 1], of ΔW's squared singular values.
    | KeepEnergy of float

/// Adding, switching, merging, saving and loading adapters. Every function takes the model last and returns it.
[<RequireQualifiedAccess>]
module Adapter =

    /// The name `Adapter.add` uses: PEFT's "default".
    [<Literal>]
    let DefaultName = AdapterConfig.DefaultName

    /// The Core `AdapterConfig` that `settings` describe: the one place the F# settings are mapped to Core.
    /// Core checks the result when the adapter is added (GraloraException with ErrorId such as "InvalidRank" or "NotForLoRA").
    let toConfig (settings: AdapterSettings) : AdapterConfig =
        let k =
            match settings.K, settings.Method with
            | Fixed k, _ -> Nullable(KChoice.Fixed k)
            | Auto, AdapterMethod.GraLoRA -> Nullable KChoice.Auto       // Core resolves it per module
            | Auto, _ -> Nullable()
        // Core reads null as "not given"; these init-only properties are not annotated as nullable.
        let listOrNull (items: string list) : Collections.Generic.IReadOnlyList<string> =
            if List.isEmpty items then Unchecked.defaultof<_> else List.toArray items :> Collections.Generic.IReadOnlyList<string>
        AdapterConfig(
            Method = settings.Method,
            // Full has no rank: its settings carry 0, which Core reads as "not given" only for Full.
            Rank = (if settings.Method = AdapterMethod.Full && settings.Rank = 0 then Nullable() else Nullable settings.Rank),
            MoraType = Option.toNullable settings.MoraType,
            RasaK = Option.toNullable settings.RasaK,
            K = k,
            HybridRank = settings.HybridRank,
            Alpha = Option.toNullable settings.Alpha,
            Dropout = settings.Dropout,
            TargetModules = (List.toArray settings.Targets :> Collections.Generic.IReadOnlyList<string>),
            ExcludeModules = listOrNull settings.Exclude,
            ModulesToSave = listOrNull settings.ModulesToSave,
            Bias = settings.Bias,
            UseRsLora = settings.UseRsLora)

    /// The settings an existing Core `AdapterConfig` describes: the inverse of `toConfig` for configs that `toConfig`
    /// makes (`K` comes back as `Auto` for an Auto config and for LoRA, else `Fixed k` — an adapter's stored config has
    /// its k resolved; `Seed` as `None`, since a config carries no seed).
    let ofConfig (config: AdapterConfig) : AdapterSettings =
        let listOf (items: Collections.Generic.IReadOnlyList<string> | null) = match items with null -> [] | items -> List.ofSeq items
        { Method = config.Method
          Rank = config.EffectiveRank
          MoraType = Option.ofNullable config.MoraType
          RasaK = Option.ofNullable config.RasaK
          K =
            (match config.Method, Option.ofNullable config.K with
             | AdapterMethod.GraLoRA, Some k when k.IsAuto -> Auto
             | AdapterMethod.GraLoRA, _ -> Fixed config.EffectiveK
             | _ -> Auto)
          HybridRank = config.HybridRank
          Alpha = Option.ofNullable config.Alpha
          Dropout = config.Dropout
          Targets = (match config.TargetModules with null -> GraLoRA.defaults.Targets | t -> List.ofSeq t)
          Exclude = listOf config.ExcludeModules
          ModulesToSave = listOf config.ModulesToSave
          Bias = config.Bias
          UseRsLora = config.UseRsLora
          Seed = None }

    /// Adds an adapter called `name` with `settings` and makes it the only active (and trainable) adapter.
    let addNamed (name: string) (settings: AdapterSettings) (model: BaseModel) : BaseModel =
        let config = toConfig settings
        config.Validate()
        settings.Seed |> Option.iter (fun seed -> TorchSharp.torch.manual_seed seed |> ignore)
        model.AddAdapter(name, config) |> ignore
        model

    /// Adds the adapter "default" with `settings` and makes it the only active adapter.
    let add (settings: AdapterSettings) (model: BaseModel) : BaseModel = addNamed DefaultName settings model

    /// Makes exactly the adapters `names` active: their outputs add up, and only they train.
    let activate (names: string list) (model: BaseModel) : BaseModel =
        model.Adapters.SetActive names
        model

    /// The model computes as its base model (adapters kept) until `Adapter.enable`.
    let disable (model: BaseModel) : BaseModel =
        model.Adapters.Disable()
        model

    /// Undoes `Adapter.disable`.
    let enable (model: BaseModel) : BaseModel =
        model.Adapters.Enable()
        model

    /// Deletes adapter `name` (it must not be merged).
    let remove (name: string) (model: BaseModel) : BaseModel =
        model.Adapters.Remove name
        model

    /// Adds the active adapters' ΔW into the base weights (the adapters stay, and `Adapter.unmerge` takes them out again).
    /// A quantised base is re-quantised; `mergeReport` also returns the rounding that added per layer.
    let merge (model: BaseModel) : BaseModel =
        model.Adapters.Merge() |> ignore
        model

    /// As `merge`, returning per quantised layer the rounding re-quantising added (largest error, and its size relative
    /// to the update ΔW); empty for a full-precision base.
    let mergeReport (model: BaseModel) : GraLoRA.Adapters.LayerRequantization list =
        model.Adapters.Merge() |> List.ofSeq

    /// Subtracts every merged ΔW from the base weights again.
    let unmerge (model: BaseModel) : BaseModel =
        model.Adapters.Unmerge()
        model

    /// PEFT's merge_and_unload: merges the active adapters, puts the plain layers back and forgets every adapter.
    let unload (model: BaseModel) : BaseModel =
        model.Adapters.Unload() |> ignore
        model

    /// The adapter a single-adapter operation means — Core's one rule (`AdapterHost.Current`), as the cmdlets use it:
    /// the only active one, else the only one; otherwise a `GraloraException` "AmbiguousAdapter" (or "NoActiveAdapter").
    let current (model: BaseModel) : string = model.Adapters.Current()

    /// Saves adapter `name` in PEFT's format (adapter_config.json, adapter_model.safetensors) into `folder`, replacing it.
    let saveNamed (name: string) (folder: string) (model: BaseModel) : BaseModel =
        model.SaveAdapter(name, folder, overwrite = true) |> ignore
        model

    /// Saves the current adapter (`Adapter.current`) in PEFT's format into `folder`, replacing it.
    let save (folder: string) (model: BaseModel) : BaseModel = saveNamed (current model) folder model

    /// Loads a PEFT adapter folder (GraLoRA or LoRA) as adapter `name` and makes it active.
    let importNamed (name: string) (folder: string) (model: BaseModel) : BaseModel =
        model.LoadAdapter(folder, name) |> ignore
        model

    /// Loads a PEFT adapter folder as adapter "default" and makes it active.
    let import (folder: string) (model: BaseModel) : BaseModel = importNamed DefaultName folder model

    let private convert (truncation: LoraTruncation) (gguf: bool) (path: string) (model: BaseModel) : LoraConversionResult =
        let options =
            match truncation with
            | Exact -> LoraConversionOptions()
            | KeepRank n -> LoraConversionOptions(Rank = Nullable n)
            | KeepEnergy e -> LoraConversionOptions(Energy = Nullable e)
        model.ConvertToLora(current model, path, options, gguf, true)

    /// Writes the current adapter (GraLoRA, MoRA or RaSA exactly; DoRA and Full only with `KeepRank` or `KeepEnergy`, their
    /// ΔW having full rank) as a PEFT LoRA adapter folder (vLLM, TGI, PEFT load it), replacing it; returns each layer's
    /// exact rank, kept rank and relative error. The model is not changed.
    let toLora (truncation: LoraTruncation) (folder: string) (model: BaseModel) : LoraConversionResult =
        convert truncation false folder model

    /// Writes the current adapter as a GGUF LoRA adapter file (llama.cpp --lora, Ollama ADAPTER), replacing it (see `toLora`).
    let toGgufLora (truncation: LoraTruncation) (path: string) (model: BaseModel) : LoraConversionResult =
        convert truncation true path model

    /// One row per adapter: name, method, rank, k, α, targets, parameters, active, merged, disabled.
    let list (model: BaseModel) : AdapterInfo list = List.ofSeq (model.Adapters.List())

    /// Trainable and total parameter counts of the model.
    let parameterCounts (model: BaseModel) : ParameterCounts =
        let struct (trainable, total) = model.Adapters.ParameterCounts()
        { Trainable = trainable; Total = total }

    /// The settings of adapter `name` of the model (`Adapter.ofConfig` of its Core config).
    let settingsOf (name: string) (model: BaseModel) : AdapterSettings = ofConfig (model.Adapters.Config name)

    /// Singular values of every adapted module's ΔW for adapter `name`, largest first, keyed by module name in model
    /// order. ΔW comes from the layers' own `GetDeltaWeight` (the one builder of ΔW) and is computed in float32, so
    /// LoRA's spectrum has at most r non-zero values and GraLoRA's up to k·r.
    let deltaSingularValues (name: string) (model: BaseModel) : (string * float32[]) list =
        model.Adapters.Layers()
        |> Seq.filter (fun struct (_, layer) -> Seq.contains name layer.AdapterNames)
        |> Seq.map (fun struct (moduleName, layer) ->
            use scope = TorchSharp.torch.NewDisposeScope()
            use noGrad = TorchSharp.torch.no_grad()
            let delta = layer.GetDeltaWeight(name).``to``(TorchSharp.torch.float32)
            let values = TorchSharp.torch.linalg.svdvals(delta).data<float32>().ToArray()
            moduleName, values)
        |> List.ofSeq

    /// How many of `values` (singular values, largest first) exceed `relativeTolerance` times the largest one:
    /// the numerical rank of the ΔW they came from (0 for an all-zero ΔW).
    let numericalRank (relativeTolerance: float32) (values: float32[]) : int =
        if values.Length = 0 || values[0] <= 0.0f then 0
        else values |> Array.filter (fun v -> v > relativeTolerance * values[0]) |> Array.length
