namespace GraLoRA.Scripting

open GraLoRA.Generation
open GraLoRA.Text

/// How `Generate.withOptions` and `Generate.chatWith` continue text (transformers' generate() semantics).
type GenerateSettings =
    { /// Most tokens added.
      MaxNewTokens: int
      /// Sample instead of taking the most likely token (greedy).
      Sample: bool
      /// Divides logits before sampling.
      Temperature: float
      /// Keep only the k most likely tokens when sampling (0 = off).
      TopK: int
      /// Nucleus sampling threshold (1 = off).
      TopP: float
      /// Penalty on tokens already in the sequence (1 = off).
      RepetitionPenalty: float
      /// Strings that end generation once the text contains one.
      StopStrings: string list
      /// Seed of the sampling generator; `None` draws a fresh one.
      Seed: int64 option }

/// Text generation and chat with the model's active adapters.
[<RequireQualifiedAccess>]
module Generate =

    /// Greedy, up to 64 new tokens, no penalties or stop strings.
    let defaults : GenerateSettings =
        { MaxNewTokens = 64
          Sample = false
          Temperature = 1.0
          TopK = 0
          TopP = 1.0
          RepetitionPenalty = 1.0
          StopStrings = []
          Seed = None }

    /// Core's `GenerationOptions` for `settings`, keeping the model's EOS and padding ids.
    let toOptions (settings: GenerateSettings) (model: BaseModel) : GenerationOptions =
        let d = model.EffectiveGenerationOptions()
        GenerationOptions(
            MaxNewTokens = settings.MaxNewTokens,
            DoSample = settings.Sample,
            Temperature = settings.Temperature,
            TopK = settings.TopK,
            TopP = settings.TopP,
            RepetitionPenalty = settings.RepetitionPenalty,
            StopStrings = List.toArray settings.StopStrings,
            Seed = Option.toNullable settings.Seed,
            EosTokenIds = d.EosTokenIds,
            PadTokenId = d.PadTokenId)

    /// Continues `prompt` (encoded with the tokenizer's special tokens) with `settings`; returns only the new text.
    let withOptions (settings: GenerateSettings) (prompt: string) (model: BaseModel) : string =
        model.Generate([| prompt |], toOptions settings model).[0].Text

    /// Continues `prompt` with the model's generation defaults (generation_config.json); returns only the new text.
    let text (prompt: string) (model: BaseModel) : string =
        model.Generate([| prompt |]).[0].Text

    let private messages (turns: (string * string) list) =
        turns |> List.map (fun (role, content) -> ChatMessage(role, content)) |> List.toArray

    /// Answers a conversation of (role, content) turns, e.g. `[ "user", "What is 2 + 2?" ]`, through the model's
    /// chat template with `settings`; returns the answer.
    let chatWith (settings: GenerateSettings) (turns: (string * string) list) (model: BaseModel) : string =
        model.Chat(messages turns, toOptions settings model).Text

    /// Answers a conversation of (role, content) turns through the model's chat template with its generation defaults.
    let chat (turns: (string * string) list) (model: BaseModel) : string =
        model.Chat(messages turns).Text
