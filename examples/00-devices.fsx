// Checks the toolkit from F#: loads the built Scripting assembly, reports devices and
// does a tensor operation. Run after './build.sh build':  dotnet fsi examples/00-devices.fsx
#r "../src/GraLoRA.Scripting/bin/Release/net8.0/TorchSharp.dll"
#r "../src/GraLoRA.Scripting/bin/Release/net8.0/GraLoRA.Core.dll"
#r "../src/GraLoRA.Scripting/bin/Release/net8.0/GraLoRA.Scripting.dll"

open GraLoRA.Scripting
open TorchSharp

Runtime.init ()
let info = Runtime.deviceInfo ()
printfn "devices: %s" (info.Devices |> Seq.map (fun d -> d.Name) |> String.concat ", ")
printfn "libtorch %s, TorchSharp %s, backend %s, %d threads" info.LibTorchVersion info.TorchSharpVersion info.TorchBackend info.Threads
printfn "CUDA: %s" (Runtime.cudaUnavailableReason () |> Option.defaultValue "available")

let a = torch.arange(6, dtype = torch.float32).reshape(2L, 3L)
let gram = a.matmul(a.t())
printfn "a·aᵀ = %A" (gram.data<float32>().ToArray())
if gram.sum().item<float32>() <> 83.0f then failwith "tensor check failed"
printfn "tensor check: ok"
