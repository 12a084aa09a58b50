using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace GraLoRA.Distributed
{
    /// <summary>
    /// Open MPI's C API (libmpi.so.40, Open MPI 3.x–5.x) bound at run time. Open MPI's handles (MPI_Comm, MPI_Datatype,
    /// MPI_Op, MPI_Request) are pointers; MPI_COMM_WORLD, MPI_FLOAT, … are the addresses of the library's predefined
    /// globals (ompi_mpi_comm_world, ompi_mpi_float, …), as mpi.h's OMPI_PREDEFINED_GLOBAL defines them. MPICH-family
    /// libraries (libmpi.so.12, integer handles) have another ABI and are refused by name.
    /// </summary>
    internal sealed class MpiNative
    {
        public const int Success = 0;
        public const int ThreadSerialized = 2;                 // MPI_THREAD_SERIALIZED
        public static readonly IntPtr InPlace = new(1);        // MPI_IN_PLACE is (void *) 1 in Open MPI
        const int MaxString = 256;                             // MPI_MAX_LIBRARY_VERSION_STRING, MPI_MAX_ERROR_STRING

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int FlagFn(out int flag);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int InitThreadFn(IntPtr argc, IntPtr argv, int required, out int provided);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int FinalizeFn();
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int AbortFn(IntPtr comm, int code);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int CommIntFn(IntPtr comm, out int value);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int SetErrhandlerFn(IntPtr comm, IntPtr handler);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int IallreduceFn(IntPtr send, IntPtr receive, int count, IntPtr type, IntPtr op, IntPtr comm, out IntPtr request);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int IbcastFn(IntPtr buffer, int count, IntPtr type, int root, IntPtr comm, out IntPtr request);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int IallgatherFn(IntPtr send, int sendCount, IntPtr sendType, IntPtr receive, int receiveCount, IntPtr receiveType, IntPtr comm, out IntPtr request);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int TestFn(ref IntPtr request, out int flag, IntPtr status);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int StringFn(byte[] text, out int length);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] public delegate int ErrorStringFn(int code, byte[] text, out int length);

        public FlagFn Initialized = null!, Finalized = null!;
        public InitThreadFn InitThread = null!;
        public FinalizeFn Finalize = null!;
        public AbortFn Abort = null!;
        public CommIntFn CommRank = null!, CommSize = null!;
        public SetErrhandlerFn CommSetErrhandler = null!;
        public IallreduceFn Iallreduce = null!;
        public IbcastFn Ibcast = null!;
        public IallgatherFn Iallgather = null!;
        public TestFn Test = null!;
        StringFn _libraryVersion = null!;
        ErrorStringFn _errorString = null!;

        public IntPtr CommWorld, Float, Double, Byte, Sum, ErrorsReturn;

        /// <summary>The file that loaded.</summary>
        public string File { get; private set; } = "";

        /// <summary>Loads Open MPI: GRALORA_MPI_LIBRARY when set, else libmpi.so.40 from the loader's search path.</summary>
        public static MpiNative Load()
        {
            var candidates = new List<string>();
            if (Environment.GetEnvironmentVariable("GRALORA_MPI_LIBRARY") is { Length: > 0 } configured) candidates.Add(configured);
            candidates.Add("libmpi.so.40");
            var errors = new List<string>();
            var binding = NativeBinding.TryOpen(candidates, errors)
                ?? throw new GraloraException("MpiNotFound", GraloraErrorKind.NotAvailable,
                    "Open MPI's library could not be loaded (" + string.Join("; ", errors) + "). Install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin; "
                    + "Slurm clusters: module load openmpi), or point GRALORA_MPI_LIBRARY at its libmpi.so.40.", "libmpi.so.40");
            var native = new MpiNative { File = binding.File };
            try
            {
                native.Bind(binding);
            }
            catch (GraloraException ex) when (ex.ErrorId == "NativeSymbolMissing")
            {
                throw new GraloraException("MpiNotSupported", GraloraErrorKind.NotAvailable,
                    $"'{binding.File}' is not Open MPI ({ex.Message}); GraLoRA binds Open MPI's ABI (libmpi.so.40): MPICH and Intel MPI are not supported.", binding.File, ex);
            }
            return native;
        }

        void Bind(NativeBinding lib)
        {
            Initialized = lib.Function<FlagFn>("MPI_Initialized");
            Finalized = lib.Function<FlagFn>("MPI_Finalized");
            InitThread = lib.Function<InitThreadFn>("MPI_Init_thread");
            Finalize = lib.Function<FinalizeFn>("MPI_Finalize");
            Abort = lib.Function<AbortFn>("MPI_Abort");
            CommRank = lib.Function<CommIntFn>("MPI_Comm_rank");
            CommSize = lib.Function<CommIntFn>("MPI_Comm_size");
            CommSetErrhandler = lib.Function<SetErrhandlerFn>("MPI_Comm_set_errhandler");
            Iallreduce = lib.Function<IallreduceFn>("MPI_Iallreduce");
            Ibcast = lib.Function<IbcastFn>("MPI_Ibcast");
            Iallgather = lib.Function<IallgatherFn>("MPI_Iallgather");
            Test = lib.Function<TestFn>("MPI_Test");
            _libraryVersion = lib.Function<StringFn>("MPI_Get_library_version");
            _errorString = lib.Function<ErrorStringFn>("MPI_Error_string");
            CommWorld = lib.Symbol("ompi_mpi_comm_world");
            Float = lib.Symbol("ompi_mpi_float");
            Double = lib.Symbol("ompi_mpi_double");
            Byte = lib.Symbol("ompi_mpi_byte");
            Sum = lib.Symbol("ompi_mpi_op_sum");
            ErrorsReturn = lib.Symbol("ompi_mpi_errors_return");
        }

        /// <summary>The library's own version line, e.g. "Open MPI v4.1.4, package: Debian OpenMPI, …" (first part only).</summary>
        public string LibraryVersion()
        {
            var buffer = new byte[MaxString];
            return _libraryVersion(buffer, out int length) == Success ? Encoding.UTF8.GetString(buffer, 0, Math.Clamp(length, 0, MaxString)).Split(',')[0].Trim() : "Open MPI";
        }

        /// <summary>The message of MPI error <paramref name="code"/>.</summary>
        public string ErrorString(int code)
        {
            var buffer = new byte[MaxString];
            return _errorString(code, buffer, out int length) == Success ? Encoding.UTF8.GetString(buffer, 0, Math.Clamp(length, 0, MaxString)).TrimEnd('\0') : $"MPI error {code}";
        }

        [DllImport("libc.so.6", EntryPoint = "setenv")]
        static extern int SetEnv(string name, string value, int overwrite);

        /// <summary>
        /// Keeps Open MPI from installing its own SIGSEGV/SIGBUS/SIGFPE/SIGABRT handlers, which would take over the
        /// signals .NET turns into NullReferenceException and friends (a user's OMPI_MCA_opal_signal wins). The native
        /// environment, not .NET's copy: Open MPI reads it with getenv.
        /// </summary>
        public static void KeepRuntimeSignalHandlers() => SetEnv("OMPI_MCA_opal_signal", "", 0);
    }
}
