using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Distributed
{
    /// <summary>
    /// Packs many tensors into a few flat buffers for the collectives (one call per bucket, not per tensor), as DDP's
    /// buckets do: consecutive tensors of one device share a bucket until it would pass the byte cap; a tensor larger
    /// than the cap gets a bucket of its own. Buckets are float32 (float64 when the tensors are), whatever the
    /// parameters' dtype, so bfloat16 adapters are summed without bfloat16 rounding at every addition.
    /// </summary>
    public static class GradientBuckets
    {
        /// <summary>The default cap: 25 MiB, torch DDP's bucket_cap_mb.</summary>
        public const long DefaultCapBytes = 25L << 20;

        /// <summary>
        /// Groups tensor indices 0 … n − 1 into buckets: consecutive, one device each, at most <paramref name="capBytes"/>
        /// of bucket dtype per bucket (or one tensor alone when it is larger).
        /// </summary>
        public static IReadOnlyList<IReadOnlyList<int>> Plan(IReadOnlyList<(long Elements, ScalarType BucketType, string Device)> tensors, long capBytes)
        {
            if (capBytes < 1) throw new ArgumentOutOfRangeException(nameof(capBytes), capBytes, "the bucket cap must be positive");
            var buckets = new List<IReadOnlyList<int>>();
            var current = new List<int>();
            long bytes = 0;
            for (int i = 0; i < tensors.Count; i++)
            {
                var (elements, type, device) = tensors[i];
                long size = elements * (type == ScalarType.Float64 ? 8 : 4);
                bool fits = current.Count == 0
                    || tensors[current[0]].Device == device && tensors[current[0]].BucketType == type && bytes + size <= capBytes;
                if (!fits)
                {
                    buckets.Add(current);
                    current = new List<int>();
                    bytes = 0;
                }
                current.Add(i);
                bytes += size;
            }
            if (current.Count > 0) buckets.Add(current);
            return buckets;
        }

        static ScalarType BucketType(Tensor t) => t.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

        static IReadOnlyList<IReadOnlyList<int>> PlanFor(IReadOnlyList<Tensor> tensors, long capBytes) =>
            Plan(tensors.Select(t => (t.numel(), BucketType(t), t.device.ToString())).ToList(), capBytes);

        /// <summary>
        /// Sums the gradients of <paramref name="parameters"/> over the ranks, in place (a parameter without a gradient
        /// — its rank had no rows this step — counts as zeros and gets the sum as its gradient).
        /// </summary>
        public static void AllReduceGradients(ICommunicator communicator, IReadOnlyList<Parameter> parameters, long capBytes, string what)
        {
            using var scope = NewDisposeScope();
            var grads = parameters.Select(p => p.grad ?? SetZeroGrad(p)).ToList();
            var plan = PlanFor(grads, capBytes);
            for (int b = 0; b < plan.Count; b++)
            {
                var members = plan[b];
                var flat = Flatten(members.Select(i => grads[i]), communicator.Device);        // [Σ numel]
                communicator.AllReduceSum(flat, plan.Count == 1 ? what : $"{what} (bucket {b + 1} of {plan.Count})");
                Unflatten(flat, members.Select(i => grads[i]));
            }
        }

        /// <summary>Overwrites <paramref name="tensors"/> on every rank with rank <paramref name="root"/>'s values (no autograd).</summary>
        public static void Broadcast(ICommunicator communicator, IReadOnlyList<Tensor> tensors, int root, long capBytes, string what)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var plan = PlanFor(tensors, capBytes);
            foreach (var members in plan)
            {
                var flat = Flatten(members.Select(i => tensors[i].detach()), communicator.Device);
                communicator.Broadcast(flat, root, what);
                Unflatten(flat, members.Select(i => tensors[i].detach()));
            }
        }

        static Tensor SetZeroGrad(Parameter p)
        {
            using var zero = zeros_like(p);
            p.grad = zero;          // the parameter keeps its own reference; this wrapper can go
            return p.grad!;
        }

        static Tensor Flatten(IEnumerable<Tensor> tensors, Device device)
        {
            var list = tensors.ToList();
            var type = BucketType(list[0]);
            return cat(list.Select(t => t.reshape(-1).to(type, device)).ToArray()).contiguous();   // [Σ numel]
        }

        static void Unflatten(Tensor flat, IEnumerable<Tensor> targets)
        {
            long offset = 0;
            foreach (var target in targets)
            {
                long n = target.numel();
                target.copy_(flat.narrow(0, offset, n).view(target.shape));      // dtype and device converted by copy_
                offset += n;
            }
        }
    }
}
