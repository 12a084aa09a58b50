using System;
using static TorchSharp.torch;

namespace GraLoRA.Distributed
{
    /// <summary>
    /// The collectives data-parallel training needs, over an existing engine (MPI on CPUs, NCCL on GPUs). Every call is
    /// collective: each rank makes the same calls in the same order, with buffers of the same size and dtype. A call
    /// that does not complete within the timeout throws <see cref="GraloraException"/> DistributedTimeout naming
    /// <c>what</c>; after that (or any failure) the communicator is broken and further calls throw at once.
    /// </summary>
    public interface ICommunicator : IDisposable
    {
        /// <summary>This process's rank, 0 … <see cref="Size"/> − 1.</summary>
        int Rank { get; }

        /// <summary>The number of ranks.</summary>
        int Size { get; }

        /// <summary>The engine and its version, e.g. "MPI (Open MPI v4.1.4)" or "NCCL 2.21.5".</summary>
        string Engine { get; }

        /// <summary>Where this engine's buffers live: the CPU (MPI) or this rank's CUDA device (NCCL).</summary>
        Device Device { get; }

        /// <summary>Sums <paramref name="buffer"/> (contiguous float32 or float64 on <see cref="Device"/>) over the ranks, in place.</summary>
        void AllReduceSum(Tensor buffer, string what);

        /// <summary>Overwrites <paramref name="buffer"/> on every rank with rank <paramref name="root"/>'s.</summary>
        void Broadcast(Tensor buffer, int root, string what);

        /// <summary>Every rank's <paramref name="local"/> (contiguous, same size everywhere) concatenated in rank order: [Size × local.numel()], same dtype.</summary>
        Tensor AllGather(Tensor local, string what);
    }

    /// <summary>The errors every communicator raises the same way.</summary>
    internal static class CollectiveErrors
    {
        /// <summary>A collective that did not complete on every rank within the timeout.</summary>
        public static GraloraException Timeout(int rank, int size, TimeSpan timeout, string what) =>
            new("DistributedTimeout", GraloraErrorKind.NotAvailable,
                $"Rank {rank} of {size} waited {timeout.TotalSeconds:0.#} s for {what}, and not every rank took part: another rank has died, hangs, "
                + "or runs different settings. The job stops; no checkpoint is half-written (the last complete one stays for -Resume). "
                + "GRALORA_DIST_TIMEOUT (seconds) sets this limit.", what);
    }
}
