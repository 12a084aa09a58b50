namespace GraLoRA.Scripting

open System
open System.IO
open System.Reflection
open System.Runtime.InteropServices
open GraLoRA

/// Loading libtorch and choosing devices. Every other module of this library calls
/// `Runtime.init` first, so scripts rarely need to.
[<RequireQualifiedAccess>]
module Runtime =

    // `dotnet fsi` ignores the deps.json that maps the native tokenizer (runtimes/<rid>/native/libhf_tokenizers.so),
    // so a script referencing bin/…/GraLoRA.Scripting.dll could not load a tokenizer: resolve it beside the assembly.
    let private tokenizerResolver =
        lazy
            (let rid =
                let os =
                    if RuntimeInformation.IsOSPlatform OSPlatform.Windows then "win"
                    elif RuntimeInformation.IsOSPlatform OSPlatform.OSX then "osx"
                    else "linux"
                os + "-" + RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()
             let folder = Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native")
             let beside = Path.Combine(Path.GetDirectoryName(typeof<TorchRuntime>.Assembly.Location) |> Option.ofObj |> Option.defaultValue ".", "runtimes", rid, "native")
             let resolve (name: string) (_: Assembly) (_: Nullable<DllImportSearchPath>) : nativeint =
                 if not (name.Contains "hf_tokenizers") then IntPtr.Zero
                 else
                     [ beside; folder ]
                     |> List.collect (fun dir -> if Directory.Exists dir then List.ofArray (Directory.GetFiles(dir, "*hf_tokenizers*")) else [])
                     |> List.tryPick (fun file -> match NativeLibrary.TryLoad file with | true, handle -> Some handle | _ -> None)
                     |> Option.defaultValue IntPtr.Zero
             try
                 let tokenizers = Assembly.Load "Tokenizers.DotNet"
                 NativeLibrary.SetDllImportResolver(tokenizers, DllImportResolver resolve)
             with _ -> ())   // not shipped, or a resolver is already set: keep the default lookup

    /// Loads TorchSharp's natives (making a patched copy on GCC 12 systems such as Debian 12), initialises libtorch
    /// and lets scripts find the native tokenizer beside this assembly. Idempotent; call it before touching TorchSharp directly.
    let init () : unit =
        tokenizerResolver.Force()
        TorchRuntime.EnsureInitialized()

    /// Loads libtorch from a PyTorch installation's torch/lib folder (CPU or CUDA) instead of the libtorch bundled with
    /// TorchSharp, then initialises as `init` does; the same as setting GRALORA_LIBTORCH. Call it first: once libtorch is
    /// loaded only the folder already in use is accepted (else a `GraloraException` "LibTorchAlreadyLoaded").
    let initFrom (libTorchFolder: string) : unit =
        TorchRuntime.UseLibTorchFrom libTorchFolder
        init ()

    /// The backend this build was made for: "cpu" or "cuda" (`dotnet build -p:TorchBackend=cuda`).
    let backend () : string = TorchRuntime.Backend

    /// Turns "cpu", "cuda", "cuda:N" or "auto" into a device; unusable CUDA raises a
    /// `GraloraException` that names the reason and the build switch.
    let device (name: string) : TorchSharp.torch.Device = TorchRuntime.ResolveDevice name

    /// Devices, libtorch and TorchSharp versions, threads and CUDA status.
    let deviceInfo () : TorchDeviceInfo = TorchRuntime.GetDeviceInfo()

    /// Why CUDA cannot be used here, or `None` when it can.
    let cudaUnavailableReason () : string option = TorchRuntime.CudaUnavailableReason() |> Option.ofObj
