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

[<Fact>]
let ``initFrom checks the folder, and cannot switch libtorch once it is loaded`` () =
    Runtime.init ()
    let missing = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "gralora-no-libtorch-" + string (System.Guid.NewGuid()))
    let bad = Assert.Throws<GraloraException>(fun () -> Runtime.initFrom missing)
    Assert.Equal("LibTorchPathInvalid", bad.ErrorId)
    Assert.Contains(missing, bad.Message)
    // A real libtorch folder, but not the one this process already uses.
    let dir = System.IO.Directory.CreateTempSubdirectory("gralora-libtorch-").FullName
    try
        let lib = System.IO.Path.Combine(dir, "lib")
        System.IO.Directory.CreateDirectory lib |> ignore
        for name in GraLoRA.Native.TorchNativeLoader.RequiredLibraries do System.IO.File.WriteAllText(System.IO.Path.Combine(lib, name), "")
        let ex = Assert.Throws<GraloraException>(fun () -> Runtime.initFrom lib)
        Assert.Equal("LibTorchAlreadyLoaded", ex.ErrorId)
        Assert.Contains("GRALORA_LIBTORCH", ex.Message)
    finally
        System.IO.Directory.Delete(dir, true)
