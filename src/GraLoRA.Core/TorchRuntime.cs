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
        bool SelfTestPassed);

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

        /// <summary>Why CUDA cannot be used in this process, or null when it can.</summary>
        public static string? CudaUnavailableReason()
        {
            EnsureInitialized();
            if (Backend != "cuda")
                return "this build references TorchSharp-cpu (CPU libtorch); rebuild with 'dotnet build -p:TorchBackend=cuda' on a Linux machine with an NVIDIA driver to use CUDA";
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
                $"Device '{name}' is not recognised: use cpu, cuda, cuda:N or auto.", name);
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
            return new TorchDeviceInfo(devices, Backend, torch.__version__, torchSharpVersion,
                torch.get_num_threads(), torch.get_num_interop_threads(), reason == null, cudaCount, reason,
                report.LibTorchSharpLoaded, report.UsedPatchedCopy, SelfTest());
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
