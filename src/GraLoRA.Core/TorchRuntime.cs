using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using GraLoRA.Native;
using TorchSharp;

namespace GraLoRA
{
    /// <summary>One compute device as the user names it.</summary>
    public sealed record TorchDeviceEntry(string Name, string Type, int Index, string Description);

    /// <summary>What <c>Get-TorchDevice</c> reports.</summary>
    /// <param name="Devices">cpu, then cuda:N for each visible CUDA device.</param>
    /// <param name="TorchBackend">The TorchSharp package this build references: cpu or cuda.</param>
    /// <param name="LibTorchVersion">The version of the libtorch in use (as its installation states it for an external one).</param>
    /// <param name="TorchSharpVersion">TorchSharp's version.</param>
    /// <param name="Threads">libtorch's intra-op threads.</param>
    /// <param name="InteropThreads">libtorch's inter-op threads.</param>
    /// <param name="CudaAvailable">True when CUDA devices can be used.</param>
    /// <param name="CudaDeviceCount">How many CUDA devices are visible.</param>
    /// <param name="CudaUnavailableReason">Why CUDA cannot be used, or null.</param>
    /// <param name="NativeLibrary">The libLibTorchSharp.so loaded.</param>
    /// <param name="NativeLibraryPatched">True when a copy of it in the cache folder was loaded.</param>
    /// <param name="SelfTestPassed">True when a small matrix product gave the right answer.</param>
    /// <param name="LibTorchSource">Where libtorch came from: nuget, GRALORA_LIBTORCH or option (TorchRuntime.UseLibTorchFrom, Get-TorchDevice -LibTorch).</param>
    /// <param name="LibTorchDirectory">The folder libtorch was loaded from.</param>
    /// <param name="LibTorchWarning">Why this libtorch may misbehave (a version other than TorchSharp's), or null.</param>
    public sealed record TorchDeviceInfo(
        IReadOnlyList<TorchDeviceEntry> Devices,
        string TorchBackend,
        string LibTorchVersion,
        string TorchSharpVersion,
        int Threads,
        int InteropThreads,
        bool CudaAvailable,
        int CudaDeviceCount,
        string? CudaUnavailableReason,
        string? NativeLibrary,
        bool NativeLibraryPatched,
        bool SelfTestPassed,
        string LibTorchSource = "nuget",
        string? LibTorchDirectory = null,
        string? LibTorchWarning = null);

    /// <summary>
    /// Entry point for everything that touches libtorch: makes the natives load (see
    /// <see cref="TorchNativeLoader"/>), and turns device names into devices with errors that
    /// say how to get CUDA.
    /// </summary>
    public static class TorchRuntime
    {
        static readonly object Gate = new();
        static bool _initialized;

        /// <summary>The backend this build references: "cpu" (TorchSharp-cpu) or "cuda" (TorchSharp-cuda-linux).</summary>
        public static string Backend { get; } =
            typeof(TorchRuntime).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "GraLoRA.TorchBackend")?.Value ?? "cpu";

        /// <summary>Loads the natives and initialises libtorch's CPU backend. Safe to call often.</summary>
        public static void EnsureInitialized()
        {
            if (_initialized) return;
            lock (Gate)
            {
                if (_initialized) return;
                TorchNativeLoader.EnsureLoaded();
                try
                {
                    torch.InitializeDeviceType(DeviceType.CPU);
                }
                catch (TypeInitializationException ex)
                {
                    throw new GraloraException("TorchInitializationFailed", GraloraErrorKind.NotAvailable,
                        "TorchSharp failed to initialise: " + (ex.InnerException?.Message ?? ex.Message) +
                        " On Debian 12 / Ubuntu 22.04 this usually means libLibTorchSharp.so still needs GLIBCXX_3.4.32: build through this repository (its build patches the library) or let GraLoRA load TorchSharp before any other code does.", null, ex);
                }
                _initialized = true;
            }
        }

        /// <summary>
        /// Loads libtorch from <paramref name="directory"/> (a PyTorch installation's torch/lib, CPU or CUDA) instead of
        /// the libtorch bundled with TorchSharp; the same as setting GRALORA_LIBTORCH. Call it before anything else that
        /// uses libtorch. See <see cref="TorchNativeLoader.UseLibTorchFrom"/>.
        /// </summary>
        public static void UseLibTorchFrom(string directory) => TorchNativeLoader.UseLibTorchFrom(directory);

        /// <summary>Why CUDA cannot be used in this process, or null when it can.</summary>
        public static string? CudaUnavailableReason()
        {
            EnsureInitialized();
            var report = TorchNativeLoader.EnsureLoaded();
            if (report.LibTorchOrigin != "nuget")
            {
                if (!report.LibTorchHasCuda)
                    return $"the libtorch loaded from '{report.LibTorchDirectory}' ({report.LibTorchOrigin}) has no usable CUDA (no libtorch_cuda.so, or it did not load{(report.Warning != null ? ": " + report.Warning : "")}); point {TorchNativeLoader.LibTorchVariable} at a CUDA build of PyTorch";
                if (!torch.cuda.is_available())
                    return $"the CUDA libtorch from '{report.LibTorchDirectory}' is loaded but sees no CUDA device (check the NVIDIA driver with nvidia-smi and CUDA_VISIBLE_DEVICES)";
                return null;
            }
            if (Backend != "cuda")
                return $"this build references TorchSharp-cpu (CPU libtorch); set {TorchNativeLoader.LibTorchVariable} to a CUDA PyTorch installation's torch/lib folder, or rebuild with 'dotnet build -p:TorchBackend=cuda' on a Linux machine with an NVIDIA driver to use CUDA";
            if (!torch.cuda.is_available())
                return "the CUDA build is loaded but libtorch sees no CUDA device (check the NVIDIA driver with nvidia-smi and CUDA_VISIBLE_DEVICES)";
            return null;
        }

        /// <summary>
        /// Turns "cpu", "cuda", "cuda:N" or "auto" into a device. CUDA that is not usable is an error
        /// naming the reason and the build switch; "auto" falls back to the CPU.
        /// </summary>
        public static torch.Device ResolveDevice(string? name)
        {
            EnsureInitialized();
            string spec = (name ?? "cpu").Trim().ToLowerInvariant();
            if (spec == "cuda:local") spec = Distributed.LaunchEnvironment.Current.CudaDevice;   // a data-parallel rank's own GPU
            if (spec == "cpu") return torch.CPU;
            if (spec == "auto") return CudaUnavailableReason() == null ? new torch.Device(DeviceType.CUDA, 0) : torch.CPU;
            if (spec == "cuda" || spec.StartsWith("cuda:", StringComparison.Ordinal))
            {
                int index = 0;
                if (spec.Length > 4 && !int.TryParse(spec.Substring(5), out index))
                    throw new GraloraException("InvalidDevice", GraloraErrorKind.InvalidArgument,
                        $"Device '{name}' has an unreadable index: use cuda or cuda:N with N a whole number.", name);
                string? reason = CudaUnavailableReason();
                if (reason != null)
                    throw new GraloraException("CudaNotAvailable", GraloraErrorKind.NotAvailable,
                        $"Device '{name}' was requested but CUDA is not usable: {reason}. Use -Device cpu to run on the CPU.", name);
                int count = (int)torch.cuda.device_count();
                if (index < 0 || index >= count)
                    throw new GraloraException("InvalidDevice", GraloraErrorKind.InvalidArgument,
                        $"Device '{name}' does not exist: {count} CUDA device(s) are visible (cuda:0 to cuda:{count - 1}).", name);
                return new torch.Device(DeviceType.CUDA, index);
            }
            throw new GraloraException("InvalidDevice", GraloraErrorKind.InvalidArgument,
                $"Device '{name}' is not recognised: use cpu, cuda, cuda:N, cuda:local (a launched rank's LOCAL_RANK) or auto.", name);
        }

        /// <summary>Devices, versions, threads and CUDA status of this process.</summary>
        public static TorchDeviceInfo GetDeviceInfo()
        {
            EnsureInitialized();
            var report = TorchNativeLoader.EnsureLoaded();
            string? reason = CudaUnavailableReason();
            int cudaCount = reason == null ? (int)torch.cuda.device_count() : 0;
            var devices = new List<TorchDeviceEntry>
            {
                new("cpu", "CPU", -1, $"{Environment.ProcessorCount} logical cores, {torch.get_num_threads()} torch threads"),
            };
            for (int i = 0; i < cudaCount; i++)
                devices.Add(new TorchDeviceEntry($"cuda:{i}", "CUDA", i, "CUDA device " + i));
            string torchSharpVersion = typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown";
            int plus = torchSharpVersion.IndexOf('+');
            if (plus > 0) torchSharpVersion = torchSharpVersion.Substring(0, plus);
            string libTorchVersion = report.LibTorchOrigin == "nuget" ? torch.__version__ : report.LibTorchFoundVersion ?? "unstated";
            return new TorchDeviceInfo(devices, Backend, libTorchVersion, torchSharpVersion,
                torch.get_num_threads(), torch.get_num_interop_threads(), reason == null, cudaCount, reason,
                report.LibTorchSharpLoaded, report.UsedPatchedCopy, SelfTest(), report.LibTorchOrigin, report.LibTorchDirectory, report.Warning);
        }

        // A real kernel call, so "devices listed" also means "tensors compute" in this host.
        static bool SelfTest()
        {
            using var scope = torch.NewDisposeScope();
            var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
            var product = a.matmul(a.t());               // [[5, 14], [14, 50]]
            return product.sum().item<float>() == 83f;
        }
    }
}
