module GraLoRA.Scripting.Tests.RuntimeTests

open GraLoRA
open GraLoRA.Scripting
open TorchSharp
open Xunit

[<Fact>]
let ``init loads libtorch and tensors compute`` () =
    Runtime.init ()
    use x = torch.arange(4, dtype = torch.float32)
    Assert.Equal(14.0f, x.dot(x).item<float32> ())

[<Fact>]
let ``deviceInfo lists the cpu and agrees with cudaUnavailableReason`` () =
    let info = Runtime.deviceInfo ()
    Assert.Contains(info.Devices, fun d -> d.Name = "cpu")
    Assert.True info.SelfTestPassed
    Assert.Equal(Runtime.cudaUnavailableReason () |> Option.isNone, info.CudaAvailable)
    Assert.Equal(TorchRuntime.Backend, Runtime.backend ())

[<Fact>]
let ``device raises GraloraException naming the value for unknown names`` () =
    let ex = Assert.Throws<GraloraException>(fun () -> Runtime.device "npu" |> ignore)
    Assert.Equal("InvalidDevice", ex.ErrorId)
    Assert.Contains("'npu'", ex.Message)

[<Fact>]
let ``device cuda either resolves or says why not`` () =
    match Runtime.cudaUnavailableReason () with
    | None -> Assert.Equal(DeviceType.CUDA, (Runtime.device "cuda").``type``)
    | Some reason ->
        let ex = Assert.Throws<GraloraException>(fun () -> Runtime.device "cuda" |> ignore)
        Assert.Equal("CudaNotAvailable", ex.ErrorId)
        Assert.Contains(reason, ex.Message)
