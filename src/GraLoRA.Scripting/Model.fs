namespace GraLoRA.Scripting

open GraLoRA.Models

/// A loaded Hugging Face decoder (Core's `GraLoRA.Models.BaseModel`): the value every function of this
/// library takes last and, where it changes the model, returns, so steps chain with `|>`.
/// It owns native memory: bind it with `use` (or call `Dispose`) when a script is done with it.
type BaseModel = GraLoRA.Models.BaseModel

/// How `BaseModel.loadWith` loads a folder.
type LoadSettings =
    { /// "float32", "bfloat16" or "float16"; `None` keeps the checkpoint's own dtype.
      DType: string option
      /// "cpu", "cuda", "cuda:N" or "auto".
      Device: string
      /// Quantise the decoder layers' linear weights while loading: "nf4" or "int8" (`DType` is then the compute
      /// dtype); `None` loads as stored (a checkpoint saved quantised by bitsandbytes loads quantised either way).
      Quantize: string option
      /// With "nf4": also quantise the per-block absmax values to 8 bits (bitsandbytes' double quantisation).
      DoubleQuant: bool }

/// A summary of a model, as `BaseModel.info` reports it.
type ModelInfo =
    { /// Display name: the repository id or the folder name.
      Name: string
      /// The folder the model was loaded from.
      Path: string
      /// model_type, e.g. "llama" or "qwen2".
      Architecture: string
      /// The dtype the weights are held in (the compute dtype of quantised layers).
      DType: string
      /// "nf4" or "int8" when the decoder layers' linear weights are held quantised, else `None`.
      Quantization: string option
      /// The device the weights live on.
      Device: string
      /// Number of parameters (a tied head counted once), adapters included.
      Parameters: int64
      /// Decoder layers.
      Layers: int
      /// Names of the model's adapters, in the order they were added.
      Adapters: string list
      /// Whether the folder had a tokenizer (needed for text generation and training).
      HasTokenizer: bool }

/// Loading, inspecting, running and exporting base models.
[<RequireQualifiedAccess>]
module BaseModel =

    /// `LoadSettings` that keep the checkpoint's dtype and load onto the CPU.
    let defaults : LoadSettings = { DType = None; Device = "cpu"; Quantize = None; DoubleQuant = false }

    /// Loads a Hugging Face model folder (config.json, *.safetensors, tokenizer when present) with `settings`.
    /// A missing folder raises `GraloraException` with ErrorId "ModelFolderNotFound".
    let loadWith (settings: LoadSettings) (folder: string) : BaseModel =
        Runtime.init ()
        let options = BaseModelLoadOptions(DType = Option.toObj settings.DType, Device = settings.Device)
        let options =
            BaseModelLoadOptions(DType = options.DType, Device = options.Device,
                                 Quantize = GraLoRA.Quantization.QuantizationOptions.From(Option.toObj settings.Quantize, settings.DoubleQuant))
        GraLoRA.Models.BaseModel.Load(folder, options)

    /// Loads a Hugging Face model folder onto the CPU in its own dtype (`loadWith BaseModel.defaults`).
    let load (folder: string) : BaseModel = loadWith defaults folder

    /// Downloads a Hugging Face repository (e.g. "Qwen/Qwen2.5-0.5B") into the Hugging Face cache, or finds it
    /// there (offline with HF_HUB_OFFLINE=1), and loads it onto the CPU.
    let fromHub (repoId: string) : BaseModel =
        Runtime.init ()
        GraLoRA.Models.BaseModel.LoadFromHub repoId

    /// Writes a tiny random llama model (2 layers, 64 wide, seed 0) with a real byte-level tokenizer and a ChatML
    /// chat template into `folder` and loads it: a model for tests and examples that trains in seconds on a CPU.
    let tiny (folder: string) : BaseModel =
        Runtime.init ()
        TinyModelFactory.SaveWithTokenizer(folder, TinyModelOptions()) |> load

    /// Writes the model as a Hugging Face checkpoint in `folder` with its active adapters merged into the weights
    /// (config, safetensors, generation and tokenizer files), so `BaseModel.load folder` gives the adapted model
    /// without adapters. Returns the model unchanged so a pipeline can go on; the folder is `Path.GetFullPath folder`.
    let export (folder: string) (model: BaseModel) : BaseModel =
        model.Export folder |> ignore
        model

    /// Writes the model (active adapters merged in) as one GGUF file for llama.cpp, Ollama and LM Studio, stored as
    /// `dtype`: "float32", "float16", "bfloat16" or "q8_0". The file must be missing or empty (`OutputExists`).
    let exportGguf (dtype: string) (path: string) (model: BaseModel) : BaseModel =
        model.ExportGguf(path, dtype) |> ignore
        model

    /// Writes the model (active adapters merged in) as transformers saves a bitsandbytes-quantised checkpoint: the decoder
    /// layers' linear weights quantised as `scheme` ("nf4" or "int8"; `doubleQuant` also quantises NF4's absmax values),
    /// config.json with its quantization_config, the other tensors in the model's dtype. Returns the rounding quantising
    /// added to each weight (relative to the weight): Export-BaseModel -Quantize.
    let exportQuantized (scheme: string) (doubleQuant: bool) (folder: string) (model: BaseModel) : GraLoRA.Adapters.LayerRequantization list =
        model.ExportQuantized(folder, GraLoRA.Quantization.QuantizationOptions(Scheme = GraLoRA.Quantization.QuantizationOptions.ParseScheme scheme, DoubleQuant = doubleQuant)) |> List.ofSeq

    /// One forward pass over rectangular token ids (one list per row) with the active adapters;
    /// returns the logits as [row][position][vocabulary entry].
    let forward (inputIds: int list list) (model: BaseModel) : float32[][][] =
        let rows = inputIds |> List.map (fun row -> List.toArray row :> System.Collections.Generic.IReadOnlyList<int>) |> List.toArray
        use output = model.Forward(rows)
        output.Logits

    /// Name, architecture, dtype, device, parameter count, layers and adapters of the model.
    let info (model: BaseModel) : ModelInfo =
        { Name = model.Name
          Path = model.Path
          Architecture = model.Architecture
          DType = model.DType
          Quantization = model.Quantization |> Option.ofNullable |> Option.map GraLoRA.Quantization.QuantizationOptions.Name
          Device = model.Device
          Parameters = model.ParameterCount
          Layers = (match model.EncoderConfig with
                    | null -> model.Config.NumLayers
                    | encoder -> encoder.NumLayers)
          Adapters = List.ofSeq model.Adapters.Names
          HasTokenizer = not (isNull model.Tokenizer) }
