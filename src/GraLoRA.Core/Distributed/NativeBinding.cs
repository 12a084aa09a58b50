using System;
using System.Runtime.InteropServices;
using GraLoRA.Native;
using TorchSharp;

namespace GraLoRA.Distributed
{
    /// <summary>
    /// A C library opened with dlopen(RTLD_NOW | RTLD_GLOBAL) and its functions bound as delegates. Global, because
    /// Open MPI's plug-ins (mca_*.so), opened by libmpi itself, resolve libmpi's symbols from the global scope.
    /// </summary>
    internal sealed class NativeBinding
    {
        const int RtldNow = 2, RtldGlobal = 0x100;

        [DllImport("libc.so.6", EntryPoint = "dlopen")]
        static extern IntPtr DlOpen(string? file, int mode);

        [DllImport("libc.so.6", EntryPoint = "dlerror")]
        static extern IntPtr DlError();

        NativeBinding(string file, IntPtr handle)
        {
            File = file;
            Handle = handle;
        }

        /// <summary>The name or path that loaded.</summary>
        public string File { get; }

        /// <summary>The dlopen handle.</summary>
        public IntPtr Handle { get; }

        /// <summary>Opens the first of <paramref name="candidates"/> that loads; <paramref name="errors"/> gets one line per failure.</summary>
        public static NativeBinding? TryOpen(System.Collections.Generic.IEnumerable<string> candidates, System.Collections.Generic.List<string> errors)
        {
            _ = DlError();
            foreach (string candidate in candidates)
            {
                IntPtr handle = DlOpen(candidate, RtldNow | RtldGlobal);
                if (handle != IntPtr.Zero) return new NativeBinding(candidate, handle);
                IntPtr message = DlError();
                errors.Add($"{candidate}: {(message == IntPtr.Zero ? "not loadable" : Marshal.PtrToStringUTF8(message))}");
            }
            return null;
        }

        /// <summary>The exported function <paramref name="name"/> as a delegate.</summary>
        public T Function<T>(string name) where T : Delegate =>
            Marshal.GetDelegateForFunctionPointer<T>(Symbol(name));

        /// <summary>The address of exported symbol <paramref name="name"/> (a function or a global).</summary>
        public IntPtr Symbol(string name) =>
            NativeLibrary.TryGetExport(Handle, name, out IntPtr address)
                ? address
                : throw new GraloraException("NativeSymbolMissing", GraloraErrorKind.NotAvailable,
                    $"'{File}' has no symbol '{name}': it is not the library (or version) GraLoRA binds.", name);
    }

    /// <summary>Raw memory of tensors, for collectives that read and write buffers in place.</summary>
    internal static class TensorMemory
    {
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        delegate IntPtr DataFn(IntPtr tensor);

        static DataFn? _data;

        /// <summary>The address of <paramref name="tensor"/>'s first element (a device address for CUDA tensors); the tensor must be contiguous.</summary>
        public static IntPtr DataPointer(torch.Tensor tensor)
        {
            if (!tensor.is_contiguous())
                throw new InvalidOperationException("collective buffers must be contiguous");
            if (_data is null)
            {
                TorchRuntime.EnsureInitialized();
                IntPtr glue = TorchNativeLoader.LoadedHandle("LibTorchSharp");
                IntPtr address = glue != IntPtr.Zero && NativeLibrary.TryGetExport(glue, "THSTensor_data", out var a) ? a
                    : NativeLibrary.GetExport(NativeLibrary.Load("LibTorchSharp", typeof(torch).Assembly, null), "THSTensor_data");
                _data = Marshal.GetDelegateForFunctionPointer<DataFn>(address);
            }
            IntPtr pointer = _data(tensor.Handle);
            if (pointer == IntPtr.Zero && tensor.numel() > 0) torch.CheckForErrors();
            return pointer;
        }
    }
}
