using System;
using System.Diagnostics;
using System.Threading;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Distributed
{
    /// <summary>
    /// MPI_COMM_WORLD of an Open MPI job (mpirun, or srun with PMIx) as an <see cref="ICommunicator"/> over CPU tensors.
    /// MPI lives once per process: initialised on first use (MPI_THREAD_SERIALIZED) and finalised when the process
    /// exits — or, when a run failed or was still going (an exception took it down), MPI_Abort is called instead, so
    /// the launcher stops every other rank at once rather than leaving them waiting. Collectives are started
    /// non-blocking and polled with MPI_Test against the timeout.
    /// </summary>
    public sealed class MpiCommunicator : ICommunicator
    {
        static readonly object Gate = new();
        static MpiCommunicator? _world;

        readonly MpiNative _mpi;
        string? _broken;
        int _runsInFlight;

        MpiCommunicator(MpiNative mpi, int rank, int size, TimeSpan timeout)
        {
            _mpi = mpi;
            Rank = rank;
            Size = size;
            Timeout = timeout;
            Engine = $"MPI ({mpi.LibraryVersion()})";
        }

        /// <inheritdoc />
        public int Rank { get; }
        /// <inheritdoc />
        public int Size { get; }
        /// <inheritdoc />
        public string Engine { get; }
        /// <inheritdoc />
        public Device Device => CPU;
        /// <summary>How long a collective may wait for the other ranks (GRALORA_DIST_TIMEOUT, default 10 minutes).</summary>
        public TimeSpan Timeout { get; set; }

        /// <summary>The default collective timeout: ten minutes, as torch.distributed's.</summary>
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);

        /// <summary>This process's MPI_COMM_WORLD, initialising MPI on first use.</summary>
        public static MpiCommunicator World()
        {
            lock (Gate)
            {
                if (_world is not null) return _world;
                var mpi = MpiNative.Load();
                MpiNative.KeepRuntimeSignalHandlers();
                Check(mpi, mpi.Finalized(out int finalized), "MPI_Finalized");
                if (finalized != 0)
                    throw new GraloraException("MpiFinalized", GraloraErrorKind.InvalidOperation,
                        "MPI was already finalised in this process and cannot start again: run the next training in a new process.");
                Check(mpi, mpi.Initialized(out int initialized), "MPI_Initialized");
                if (initialized == 0)
                {
                    Check(mpi, mpi.InitThread(IntPtr.Zero, IntPtr.Zero, MpiNative.ThreadSerialized, out int provided), "MPI_Init_thread");
                    if (provided < MpiNative.ThreadSerialized)
                        throw new GraloraException("MpiThreadLevel", GraloraErrorKind.NotAvailable,
                            $"{mpi.File} offers thread level {provided}; GraLoRA needs MPI_THREAD_SERIALIZED (2) or more (its exit handler runs on another thread): use an Open MPI built with thread support (Debian's is).");
                    AppDomain.CurrentDomain.ProcessExit += (_, _) => _world?.Shutdown();
                }
                // Errors come back as codes (turned into GraloraException) instead of aborting the job from inside a call.
                Check(mpi, mpi.CommSetErrhandler(mpi.CommWorld, mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
                Check(mpi, mpi.CommRank(mpi.CommWorld, out int rank), "MPI_Comm_rank");
                Check(mpi, mpi.CommSize(mpi.CommWorld, out int size), "MPI_Comm_size");
                _world = new MpiCommunicator(mpi, rank, size, LaunchEnvironment.Timeout(DefaultTimeout));
                return _world;
            }
        }

        /// <summary>Marks a training run as going (MPI_Abort instead of MPI_Finalize if the process exits before <see cref="RunFinished"/>).</summary>
        internal void RunStarted() => Interlocked.Increment(ref _runsInFlight);

        /// <summary>Marks a run as finished normally.</summary>
        internal void RunFinished() => Interlocked.Decrement(ref _runsInFlight);

        /// <summary>At process exit: finalise after clean runs, abort (which stops every rank) after a failure or an interrupted run.</summary>
        void Shutdown()
        {
            if (_mpi.Finalized(out int finalized) != MpiNative.Success || finalized != 0) return;
            if (_broken is not null || Volatile.Read(ref _runsInFlight) > 0)
            {
                Console.Error.WriteLine($"rank {Rank}: stopping the MPI job ({_broken ?? "the training run on this rank ended with an error"}).");
                Console.Error.Flush();
                _mpi.Abort(_mpi.CommWorld, 1);
            }
            else _mpi.Finalize();
        }

        /// <inheritdoc />
        public void AllReduceSum(Tensor buffer, string what)
        {
            var type = DataType(buffer, floatOnly: true);
            ForEachChunk(buffer, (pointer, count) =>
            {
                Started(_mpi.Iallreduce(MpiNative.InPlace, pointer, count, type, _mpi.Sum, _mpi.CommWorld, out IntPtr request), what);
                return request;
            }, what);
        }

        /// <inheritdoc />
        public void Broadcast(Tensor buffer, int root, string what)
        {
            var type = DataType(buffer, floatOnly: false);
            ForEachChunk(buffer, (pointer, count) =>
            {
                Started(_mpi.Ibcast(pointer, count, type, root, _mpi.CommWorld, out IntPtr request), what);
                return request;
            }, what);
        }

        /// <inheritdoc />
        public Tensor AllGather(Tensor local, string what)
        {
            var type = DataType(local, floatOnly: false);
            long n = local.numel();
            if (n * Size > int.MaxValue) throw new ArgumentException($"{what}: {n} elements per rank is too many to gather at once");
            var result = empty(new[] { n * Size }, local.dtype);
            Ensure(what);
            Started(_mpi.Iallgather(TensorMemory.DataPointer(local), (int)n, type, TensorMemory.DataPointer(result), (int)n, type, _mpi.CommWorld, out IntPtr request), what);
            Wait(request, what);
            return result;
        }

        /// <summary>Stops the whole job now (MPI_Abort): every rank exits with <paramref name="code"/>.</summary>
        public void Abort(int code) => _mpi.Abort(_mpi.CommWorld, code);

        /// <inheritdoc />
        public void Dispose() { }   // MPI outlives any one use: finalised at process exit

        // MPI counts are ints: longer buffers go in pieces.
        void ForEachChunk(Tensor buffer, Func<IntPtr, int, IntPtr> start, string what)
        {
            Ensure(what);
            if (buffer.device_type != DeviceType.CPU) throw new ArgumentException($"{what}: MPI buffers must be on the CPU, not {buffer.device}");
            IntPtr pointer = TensorMemory.DataPointer(buffer);
            long total = buffer.numel(), itemSize = buffer.ElementSize;
            for (long offset = 0; offset < total; offset += int.MaxValue)
            {
                int count = (int)Math.Min(int.MaxValue, total - offset);
                Wait(start(pointer + (nint)(offset * itemSize), count), what);
            }
        }

        IntPtr DataType(Tensor buffer, bool floatOnly) => buffer.dtype switch
        {
            ScalarType.Float32 => _mpi.Float,
            ScalarType.Float64 => _mpi.Double,
            ScalarType.Byte or ScalarType.Int8 when !floatOnly => _mpi.Byte,
            _ => throw new ArgumentException($"MPI collectives here take float32 or float64{(floatOnly ? "" : " or bytes")}, not {buffer.dtype}"),
        };

        void Ensure(string what)
        {
            if (_broken is not null)
                throw new GraloraException("DistributedFailed", GraloraErrorKind.InvalidOperation,
                    $"Rank {Rank} cannot run {what}: the MPI job already failed ({_broken}). Start the job again; it resumes from the last complete checkpoint.");
        }

        void Started(int code, string what)
        {
            if (code != MpiNative.Success) throw Failed(code, what);
        }

        // Polls until the request completes or the timeout passes: spins briefly (small reductions finish in
        // microseconds), then yields, then sleeps a millisecond at a time.
        void Wait(IntPtr request, string what)
        {
            var clock = Stopwatch.StartNew();
            for (int polls = 0; ; polls++)
            {
                int code = _mpi.Test(ref request, out int done, IntPtr.Zero);
                if (code != MpiNative.Success) throw Failed(code, what);
                if (done != 0) return;
                if (clock.Elapsed > Timeout)
                {
                    _broken = $"{what} timed out after {Timeout.TotalSeconds:0.#} s";
                    throw CollectiveErrors.Timeout(Rank, Size, Timeout, what);
                }
                if (polls < 1000) Thread.SpinWait(50);
                else if (polls < 5000) Thread.Yield();
                else Thread.Sleep(1);
            }
        }

        GraloraException Failed(int code, string what)
        {
            _broken = $"{what} failed: {_mpi.ErrorString(code)}";
            return new GraloraException("DistributedFailed", GraloraErrorKind.NotAvailable,
                $"Rank {Rank} of {Size}: {what} failed in MPI ({_mpi.ErrorString(code)}); a rank has probably died. The job stops; the last complete checkpoint stays for -Resume.", what);
        }

        static void Check(MpiNative mpi, int code, string call)
        {
            if (code != MpiNative.Success)
                throw new GraloraException("MpiInitFailed", GraloraErrorKind.NotAvailable, $"{call} failed: {mpi.ErrorString(code)} ({mpi.File}).", call);
        }
    }
}
