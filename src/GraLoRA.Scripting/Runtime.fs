namespace GraLoRA.Scripting

open GraLoRA

/// Loading libtorch and choosing devices. Every other module of this library calls
/// `Runtime.init` first, so scripts rarely need to.
[<RequireQualifiedAccess>]
module Runtime =

    /// Loads TorchSharp's natives (making a patched copy on GCC 12 systems such as Debian 12)
    /// and initialises libtorch. Idempotent; call it before touching TorchSharp directly.
    let init () : unit = TorchRuntime.EnsureInitialized()

    /// The backend this build was made for: "cpu" or "cuda" (`dotnet build -p:TorchBackend=cuda`).
    let backend () : string = TorchRuntime.Backend

    /// Turns "cpu", "cuda", "cuda:N" or "auto" into a device; unusable CUDA raises a
    /// `GraloraException` that names the reason and the build switch.
    let device (name: string) : TorchSharp.torch.Device = TorchRuntime.ResolveDevice name

    /// Devices, libtorch and TorchSharp versions, threads and CUDA status.
    let deviceInfo () : TorchDeviceInfo = TorchRuntime.GetDeviceInfo()

    /// Why CUDA cannot be used here, or `None` when it can.
    let cudaUnavailableReason () : string option = TorchRuntime.CudaUnavailableReason() |> Option.ofObj
