module GraLoRA.Scripting.Tests.PropertyTests

open Xunit
open FsCheck.Xunit
open FsCheck
open FsCheck.FSharp
open TorchSharp
open GraLoRA
open GraLoRA.Adapters
open GraLoRA.Scripting

// Random layer shapes GraLoRA accepts: k divides r, in and out (in = k·a, out = k·b, r = k·c).
type ValidShape = { In: int; Out: int; Rank: int; K: int; Hybrid: int }

type Shapes =
    static member ValidShape() : Arbitrary<ValidShape> =
        gen {
            let! k = Gen.elements [ 1; 2; 4 ]
            let! a = Gen.choose (1, 12)
            let! b = Gen.choose (1, 12)
            let! c = Gen.choose (1, 4)
            let! hybrid = Gen.choose (0, 3)
            return { In = k * a; Out = k * b; Rank = k * c; K = k; Hybrid = hybrid }
        }
        |> Arb.fromGen

let private adapterParameters (layer: AdapterLayerBase) =
    layer.AdapterParameters "a" |> Seq.sumBy (fun p -> p.numel ())

[<Property(Arbitrary = [| typeof<Shapes> |], MaxTest = 60)>]
let ``GraLoRA trains LoRA's parameter count at equal rank: r times (in + out)`` (shape: ValidShape) =
    Runtime.init ()
    let baseG = torch.nn.Linear(int64 shape.In, int64 shape.Out)
    let baseL = torch.nn.Linear(int64 shape.In, int64 shape.Out)
    use gralora = new GraloraLinear(baseG, "a", GraloraOptions(Rank = shape.Rank, K = shape.K))
    use lora = new LoraLinear(baseL, "a", LoraOptions(Rank = shape.Rank))
    let expected = int64 shape.Rank * int64 (shape.In + shape.Out)
    adapterParameters gralora = expected && adapterParameters lora = expected

[<Property(Arbitrary = [| typeof<Shapes> |], MaxTest = 60)>]
let ``Hybrid GraLoRA adds hybrid_r times (in + out) to the count`` (shape: ValidShape) =
    Runtime.init ()
    let linear = torch.nn.Linear(int64 shape.In, int64 shape.Out)
    use layer = new GraloraLinear(linear, "a", GraloraOptions(Rank = shape.Rank, K = shape.K, HybridRank = shape.Hybrid))
    adapterParameters layer = int64 (shape.Rank + shape.Hybrid) * int64 (shape.In + shape.Out)

// Settings Core accepts, with k resolved (Adapter.ofConfig cannot know a seed or that k was Auto).
type Settings =
    static member AdapterSettings() : Arbitrary<AdapterSettings> =
        gen {
            let! isLora = Gen.elements [ true; false ]
            let! k = Gen.elements [ 1; 2; 4 ]
            let! multiple = Gen.choose (1, 16)
            let! hybrid = if isLora then Gen.constant 0 else Gen.choose (0, 4)
            let! alpha = Gen.optionOf (Gen.elements [ 1.0; 8.0; 16.0; 64.0 ])
            let! dropout = Gen.elements [ 0.0; 0.05; 0.1; 0.5 ]
            let! targets = Gen.elements [ [ "q_proj"; "v_proj" ]; [ "all-linear" ]; [ "k_proj" ] ]
            let! exclude = Gen.elements [ []; [ "o_proj" ] ]
            let! save = Gen.elements [ []; [ "lm_head" ] ]
            let! bias = Gen.elements [ "none"; "all"; "only" ]
            let! rs = if isLora then Gen.elements [ true; false ] else Gen.constant false
            let template = if isLora then LoRA.defaults else GraLoRA.defaults
            return
                { template with
                    Rank = k * multiple
                    K = (if isLora then Auto else Fixed k)
                    HybridRank = hybrid
                    Alpha = alpha
                    Dropout = dropout
                    Targets = targets
                    Exclude = exclude
                    ModulesToSave = save
                    Bias = (if bias = "only" then (if isLora then "lora_only" else "gralora_only") else bias)
                    UseRsLora = rs
                    Seed = None }
        }
        |> Arb.fromGen

// Baseline settings Core accepts: DoRA (rsLoRA or not), MoRA (type 1 or 6, no alpha), RaSA (k ≤ r), Full (no rank, alpha, dropout).
type BaselineSettings =
    static member AdapterSettings() : Arbitrary<AdapterSettings> =
        gen {
            let! methodIndex = Gen.choose (0, 3)
            let! rank = Gen.choose (1, 64)
            let! alpha = Gen.optionOf (Gen.elements [ 4.0; 16.0; 32.0 ])
            let! dropout = Gen.elements [ 0.0; 0.1 ]
            let! targets = Gen.elements [ [ "q_proj"; "v_proj" ]; [ "all-linear" ] ]
            let! rs = Gen.elements [ true; false ]
            let! moraType = Gen.optionOf (Gen.elements [ 1; 6 ])
            let! rasaK = Gen.optionOf (Gen.choose (1, rank))
            let! bias = Gen.elements [ "none"; "all"; "only" ]
            let template, only =
                match methodIndex with
                | 0 -> { DoRA.defaults with Rank = rank; Alpha = alpha; UseRsLora = rs; Dropout = dropout }, "lora_only"
                | 1 -> { MoRA.defaults with Rank = rank; MoraType = moraType; Dropout = dropout }, "lora_only"
                | 2 -> { RaSA.defaults with Rank = rank; RasaK = rasaK; Alpha = alpha; Dropout = dropout }, "rasa_only"
                | _ -> Full.defaults, "full_only"
            return { template with Targets = targets; Bias = (if bias = "only" then only else bias); Seed = None }
        }
        |> Arb.fromGen

[<Property(Arbitrary = [| typeof<BaselineSettings> |], MaxTest = 200)>]
let ``baseline settings map to a valid Core config and back unchanged`` (settings: AdapterSettings) =
    let config = Adapter.toConfig settings
    config.Validate()
    Adapter.ofConfig config = settings

[<Property(MaxTest = 50)>]
let ``a setting of another method is refused, never ignored`` (PositiveInt value) =
    let refused (settings: AdapterSettings) =
        (Assert.Throws<GraloraException>(fun () -> (Adapter.toConfig settings).Validate())).ErrorId
    refused { LoRA.defaults with MoraType = Some 6 } = "NotForLoRA"
    && refused { GraLoRA.defaults with RasaK = Some value } = "NotForGraLoRA"
    && refused { MoRA.defaults with Alpha = Some(float value) } = "NotForMoRA"
    && refused { Full.defaults with Rank = value } = "NotForFull"

[<Property(Arbitrary = [| typeof<Settings> |], MaxTest = 200)>]
let ``settings map to a valid Core config and back unchanged`` (settings: AdapterSettings) =
    let config = Adapter.toConfig settings
    config.Validate()
    Adapter.ofConfig config = settings

[<Property(MaxTest = 100)>]
let ``a rank below 1 is refused with InvalidRank for both methods`` (rank: int) (lora: bool) =
    let rank = -(abs rank)   // 0 or negative
    let settings = { (if lora then LoRA.defaults else GraLoRA.defaults) with Rank = rank; K = (if lora then Auto else Fixed 1) }
    let error = Assert.Throws<GraloraException>(fun () -> (Adapter.toConfig settings).Validate())
    error.ErrorId = "InvalidRank"

[<Property(MaxTest = 100)>]
let ``a k that does not divide the rank is refused with RankNotDivisibleByK`` (PositiveInt rank) (PositiveInt k) =
    (rank % k <> 0) ==> lazy
        (let error = Assert.Throws<GraloraException>(fun () -> (Adapter.toConfig { GraLoRA.defaults with Rank = rank; K = Fixed k }).Validate())
         error.ErrorId = "RankNotDivisibleByK")

[<Property(MaxTest = 50)>]
let ``LoRA settings with any fixed k are refused with NotForLoRA`` (PositiveInt k) =
    let error = Assert.Throws<GraloraException>(fun () -> (Adapter.toConfig { LoRA.defaults with K = Fixed k }).Validate())
    error.ErrorId = "NotForLoRA"

[<Property(MaxTest = 100)>]
let ``a dropout outside 0 to 1 is refused with InvalidDropout`` (NormalFloat dropout) =
    (dropout < 0.0 || dropout >= 1.0) ==> lazy
        (let error = Assert.Throws<GraloraException>(fun () -> (Adapter.toConfig { GraLoRA.defaults with Dropout = dropout }).Validate())
         error.ErrorId = "InvalidDropout")
