using System;
using System.Threading;
using System.Threading.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Distributed
{
    /// <summary>
    /// An NCCL communicator over this rank's CUDA device, as an <see cref="ICommunicator"/>. Collectives run on the
    /// CUDA default stream (libtorch's, so they are ordered with the surrounding tensor work) and are waited for with a
    /// watchdog: past the timeout it calls ncclCommAbort, which makes the stuck kernels return, and the call throws
    /// DistributedTimeout. One GPU hosts one rank (NCCL refuses two ranks on one device).
    /// </summary>
    public sealed class NcclCommunicator : ICommunicator
    {
        readonly NcclNative _nccl;
        IntPtr _comm;
        string? _broken;

        NcclCommunicator(NcclNative nccl, IntPtr comm, int rank, int size, Device device, TimeSpan timeout)
        {
            _nccl = nccl;
            _comm = comm;
            Rank = rank;
            Size = size;
            Device = device;
            Timeout = timeout;
            Engine = "NCCL " + nccl.Version();
        }

        /// <inheritdoc />
        public int Rank { get; }
        /// <inheritdoc />
        public int Size { get; }
        /// <inheritdoc />
        public string Engine { get; }
        /// <inheritdoc />
        public Device Device { get; }
        /// <summary>How long a collective may wait for the other ranks.</summary>
        public TimeSpan Timeout { get; set; }

        /// <summary>The NCCL version this process can load (loads libnccl.so.2; throws NcclNotFound when it cannot).</summary>
        public static string LibraryVersion() => NcclNative.Load().Version();

        /// <summary>A new unique id (rank 0 makes it; every rank must receive the same one, see <see cref="NcclBootstrap"/>).</summary>
        public static NcclUniqueId NewUniqueId()
        {
            var nccl = NcclNative.Load();
            int code = nccl.GetUniqueId(out var id);
            if (code != NcclNative.Success) throw Error(nccl, code, "ncclGetUniqueId");
            return id;
        }

        /// <summary>
        /// Joins the communicator of <paramref name="size"/> ranks named by <paramref name="id"/> as <paramref name="rank"/>,
        /// on <paramref name="device"/> (a CUDA device). Blocks until every rank has joined, at most <paramref name="timeout"/>.
        /// </summary>
        public static NcclCommunicator Create(NcclUniqueId id, int rank, int size, Device device, TimeSpan timeout)
        {
            if (device.type != DeviceType.CUDA)
                throw new GraloraException("NcclNeedsCuda", GraloraErrorKind.InvalidArgument, $"NCCL runs on CUDA devices, not {device}: CPU ranks use MPI.", device.ToString());
            var nccl = NcclNative.Load();
            int index = Math.Max(0, (int)device.index);
            NcclNative.SetCudaDevice(index);
            var init = Task.Run(() =>
            {
                NcclNative.SetCudaDevice(index);     // the current device is per thread
                int code = nccl.CommInitRank(out IntPtr comm, size, id, rank);
                return (code, comm);
            });
            if (!init.Wait(timeout))
                throw new GraloraException("DistributedTimeout", GraloraErrorKind.NotAvailable,
                    $"Rank {rank} of {size} waited {timeout.TotalSeconds:0.#} s for every rank to join the NCCL communicator: a rank did not start, or got another unique id (a stale id file?). GRALORA_DIST_TIMEOUT sets this limit.", rank);
            var (result, handle) = init.Result;
            if (result != NcclNative.Success) throw Error(nccl, result, $"ncclCommInitRank (rank {rank} of {size} on {device})");
            return new NcclCommunicator(nccl, handle, rank, size, new Device(DeviceType.CUDA, index), timeout);
        }

        /// <inheritdoc />
        public void AllReduceSum(Tensor buffer, string what)
        {
            int type = DataType(buffer, floatOnly: true);
            IntPtr pointer = Pointer(buffer, what);
            Run(what, () => _nccl.AllReduce(pointer, pointer, (nuint)buffer.numel(), type, NcclNative.Sum, _comm, IntPtr.Zero));
        }

        /// <inheritdoc />
        public void Broadcast(Tensor buffer, int root, string what)
        {
            int type = DataType(buffer, floatOnly: false);
            IntPtr pointer = Pointer(buffer, what);
            Run(what, () => _nccl.Broadcast(pointer, pointer, (nuint)buffer.numel(), type, root, _comm, IntPtr.Zero));
        }

        /// <inheritdoc />
        public Tensor AllGather(Tensor local, string what)
        {
            int type = DataType(local, floatOnly: false);
            var result = empty(new[] { local.numel() * Size }, local.dtype, Device);
            IntPtr send = Pointer(local, what), receive = Pointer(result, what);
            Run(what, () => _nccl.AllGather(send, receive, (nuint)local.numel(), type, _comm, IntPtr.Zero));
            return result;
        }

        /// <inheritdoc />
        public void Dispose()
        {
            if (_comm == IntPtr.Zero) return;
            if (_broken is null) _nccl.CommDestroy(_comm);
            else _nccl.CommAbort(_comm);
            _comm = IntPtr.Zero;
        }

        IntPtr Pointer(Tensor buffer, string what)
        {
            if (_broken is not null || _comm == IntPtr.Zero)
                throw new GraloraException("DistributedFailed", GraloraErrorKind.InvalidOperation,
                    $"Rank {Rank} cannot run {what}: the NCCL communicator {(_comm == IntPtr.Zero ? "is closed" : "already failed (" + _broken + ")")}.");
            if (buffer.device_type != DeviceType.CUDA || buffer.device_index != Device.index)
                throw new ArgumentException($"{what}: NCCL buffers must be on {Device}, not {buffer.device}");
            return TensorMemory.DataPointer(buffer);
        }

        // Enqueues on the default stream, then waits for the device with a watchdog that aborts the communicator when
        // the wait passes the timeout (the abort makes NCCL's kernels return, so the wait ends).
        void Run(string what, Func<int> enqueue)
        {
            int code = enqueue();
            if (code != NcclNative.Success) throw Broken(code, what);
            int finished = 0;
            IntPtr comm = _comm;
            using (new Timer(_ =>
            {
                if (Interlocked.CompareExchange(ref finished, 1, 0) == 0) _nccl.CommAbort(comm);
            }, null, Timeout, System.Threading.Timeout.InfiniteTimeSpan))
            {
                cuda.synchronize(Device);
                // The watchdog won the race: it aborted (or is aborting) the communicator.
                if (Interlocked.CompareExchange(ref finished, 1, 0) != 0)
                {
                    _broken = $"{what} timed out after {Timeout.TotalSeconds:0.#} s";
                    _comm = IntPtr.Zero;     // aborted: nothing left to destroy
                    throw CollectiveErrors.Timeout(Rank, Size, Timeout, what);
                }
            }
            if (_nccl.CommGetAsyncError(_comm, out int asyncError) == NcclNative.Success && asyncError != NcclNative.Success) throw Broken(asyncError, what);
        }

        static int DataType(Tensor buffer, bool floatOnly) => buffer.dtype switch
        {
            ScalarType.Float32 => NcclNative.Float32,
            ScalarType.Float64 => NcclNative.Float64,
            ScalarType.Byte when !floatOnly => NcclNative.Uint8,
            _ => throw new ArgumentException($"NCCL collectives here take float32 or float64{(floatOnly ? "" : " or bytes")}, not {buffer.dtype}"),
        };

        GraloraException Broken(int code, string what)
        {
            _broken = $"{what} failed: {_nccl.ErrorString(code)}";
            return Error(_nccl, code, $"{what} (rank {Rank} of {Size})");
        }

        static GraloraException Error(NcclNative nccl, int code, string call) =>
            new("DistributedFailed", GraloraErrorKind.NotAvailable, $"NCCL: {call} failed: {nccl.ErrorString(code)} (error {code}, {nccl.File}).", call);
    }
}
