using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using GraLoRA.Native;

namespace GraLoRA.Distributed
{
    /// <summary>ncclUniqueId: 128 opaque bytes (NCCL_UNIQUE_ID_BYTES) that rank 0 creates and every rank passes to ncclCommInitRank.</summary>
    [StructLayout(LayoutKind.Sequential, Size = Bytes)]
    public struct NcclUniqueId
    {
        /// <summary>NCCL_UNIQUE_ID_BYTES.</summary>
        public const int Bytes = 128;
        long _0, _1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15;

        /// <summary>The id as bytes.</summary>
        public byte[] ToBytes()
        {
            var bytes = new byte[Bytes];
            MemoryMarshal.Write(bytes, in this);
            return bytes;
        }

        /// <summary>An id from its 128 bytes.</summary>
        public static NcclUniqueId FromBytes(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length != Bytes) throw new ArgumentException($"an NCCL unique id has {Bytes} bytes, not {bytes.Length}");
            return MemoryMarshal.Read<NcclUniqueId>(bytes);
        }
    }

    /// <summary>
    /// NCCL's C API (nccl.h, NCCL 2.x), bound at run time from libnccl.so.2 — the library every CUDA build of PyTorch
    /// ships (pip: site-packages/nvidia/nccl/lib). Also the one CUDA runtime call NCCL needs first, cudaSetDevice
    /// (from the libcudart libtorch already loaded).
    /// </summary>
    internal sealed class NcclNative
    {
        public const int Success = 0;
        // ncclDataType_t and ncclRedOp_t values from nccl.h.
        public const int Uint8 = 1, Float32 = 7, Float64 = 8, Sum = 0;

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int GetVersionFn(out int version);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int GetUniqueIdFn(out NcclUniqueId id);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int CommInitRankFn(out IntPtr comm, int ranks, NcclUniqueId id, int rank);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int AllReduceFn(IntPtr send, IntPtr receive, nuint count, int type, int op, IntPtr comm, IntPtr stream);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int BroadcastFn(IntPtr send, IntPtr receive, nuint count, int type, int root, IntPtr comm, IntPtr stream);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int AllGatherFn(IntPtr send, IntPtr receive, nuint sendCount, int type, IntPtr comm, IntPtr stream);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int CommFn(IntPtr comm);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int AsyncErrorFn(IntPtr comm, out int error);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate IntPtr ErrorStringFn(int result);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int SetDeviceFn(int device);

        public GetVersionFn GetVersion = null!;
        public GetUniqueIdFn GetUniqueId = null!;
        public CommInitRankFn CommInitRank = null!;
        public AllReduceFn AllReduce = null!;
        public BroadcastFn Broadcast = null!;
        public AllGatherFn AllGather = null!;
        public CommFn CommDestroy = null!, CommAbort = null!;
        public AsyncErrorFn CommGetAsyncError = null!;
        ErrorStringFn _errorString = null!;

        /// <summary>The file that loaded.</summary>
        public string File { get; private set; } = "";

        /// <summary>Where libnccl.so.2 is looked for, in order: GRALORA_NCCL, the loader's search path (LD_LIBRARY_PATH, ldconfig), then beside the libtorch in use (pip's site-packages/nvidia/nccl/lib).</summary>
        public static IReadOnlyList<string> Candidates()
        {
            var list = new List<string>();
            if (Environment.GetEnvironmentVariable("GRALORA_NCCL") is { Length: > 0 } configured) list.Add(configured);
            list.Add("libnccl.so.2");
            foreach (string? libtorch in new[] { Environment.GetEnvironmentVariable("GRALORA_LIBTORCH"), TorchNativeLoader.EnsureLoaded().LibTorchDirectory })
            {
                if (string.IsNullOrEmpty(libtorch)) continue;
                // torch/lib → site-packages/nvidia/nccl/lib/libnccl.so.2
                string? site = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(libtorch).TrimEnd('/')));
                if (site is not null) list.Add(Path.Combine(site, "nvidia", "nccl", "lib", "libnccl.so.2"));
                list.Add(Path.Combine(libtorch, "libnccl.so.2"));
            }
            return list.Distinct().ToList();
        }

        /// <summary>Loads NCCL, or throws NcclNotFound naming every place tried and how to fix it.</summary>
        public static NcclNative Load()
        {
            var errors = new List<string>();
            var binding = NativeBinding.TryOpen(Candidates(), errors)
                ?? throw new GraloraException("NcclNotFound", GraloraErrorKind.NotAvailable,
                    "NCCL (libnccl.so.2) could not be loaded, so GPU ranks cannot all-reduce. Tried: " + string.Join("; ", errors)
                    + ". NCCL comes with every CUDA build of PyTorch (pip: site-packages/nvidia/nccl/lib): point GRALORA_LIBTORCH at that PyTorch's torch/lib, "
                    + "or GRALORA_NCCL at libnccl.so.2, or add its folder to LD_LIBRARY_PATH. CPU ranks use MPI instead.", "libnccl.so.2");
            var native = new NcclNative { File = binding.File };
            native.GetVersion = binding.Function<GetVersionFn>("ncclGetVersion");
            native.GetUniqueId = binding.Function<GetUniqueIdFn>("ncclGetUniqueId");
            native.CommInitRank = binding.Function<CommInitRankFn>("ncclCommInitRank");
            native.AllReduce = binding.Function<AllReduceFn>("ncclAllReduce");
            native.Broadcast = binding.Function<BroadcastFn>("ncclBroadcast");
            native.AllGather = binding.Function<AllGatherFn>("ncclAllGather");
            native.CommDestroy = binding.Function<CommFn>("ncclCommDestroy");
            native.CommAbort = binding.Function<CommFn>("ncclCommAbort");
            native.CommGetAsyncError = binding.Function<AsyncErrorFn>("ncclCommGetAsyncError");
            native._errorString = binding.Function<ErrorStringFn>("ncclGetErrorString");
            return native;
        }

        /// <summary>"2.21.5" from ncclGetVersion's code (major × 10000 + minor × 100 + patch since 2.9).</summary>
        public string Version()
        {
            if (GetVersion(out int code) != Success) return "?";
            return code >= 10000 ? $"{code / 10000}.{code / 100 % 100}.{code % 100}" : $"{code / 1000}.{code / 100 % 10}.{code % 100}";
        }

        /// <summary>NCCL's message for <paramref name="result"/>.</summary>
        public string ErrorString(int result) => Marshal.PtrToStringUTF8(_errorString(result)) ?? $"NCCL error {result}";

        /// <summary>cudaSetDevice from the CUDA runtime libtorch loaded (ncclCommInitRank binds the communicator to the current device).</summary>
        public static void SetCudaDevice(int device)
        {
            var errors = new List<string>();
            var cudart = NativeBinding.TryOpen(new[] { "libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0", "libcudart.so" }, errors)
                ?? throw new GraloraException("CudaRuntimeNotFound", GraloraErrorKind.NotAvailable,
                    "The CUDA runtime (libcudart) is not loadable, so the NCCL communicator cannot pick its GPU: " + string.Join("; ", errors), "libcudart");
            int code = cudart.Function<SetDeviceFn>("cudaSetDevice")(device);
            if (code != 0)
                throw new GraloraException("CudaDeviceUnavailable", GraloraErrorKind.NotAvailable, $"cudaSetDevice({device}) failed with CUDA error {code}: is cuda:{device} visible to this rank?", device);
        }
    }
}
