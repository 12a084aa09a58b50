using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// A linear layer with GraLoRA adapters, computing what PEFT's <c>tuners/gralora/layer.py</c>
    /// computes. W (out×in) is split into a k×k grid; with s = r/k, output block j sees input block n
    /// through <c>A[n][:, j·s:(j+1)·s]</c> and <c>B[j][n·s:(n+1)·s, :]</c>.
    /// Parameters (PEFT names): gralora_A [k, in/k, r], gralora_B [k, r, out/k]; hybrid adds
    /// gralora_A_general.weight [hybrid_r, in] and gralora_B_general.weight [out, hybrid_r].
    /// </summary>
    public sealed class GraloraLinear : AdapterLayerBase
    {
        readonly ParameterDict _a = new();         // name -> [k, in/k, r]
        readonly ParameterDict _b = new();         // name -> [k, r, out/k]
        readonly ParameterDict _aGeneral = new();  // "name.weight" -> [hybrid_r, in]
        readonly ParameterDict _bGeneral = new();  // "name.weight" -> [out, hybrid_r]

        /// <summary>Wraps <paramref name="baseLayer"/> (a Linear or a quantised layer) with no adapters yet.</summary>
        public GraloraLinear(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(GraloraLinear), baseLayer)
        {
            register_module("gralora_A", _a);
            register_module("gralora_B", _b);
            register_module("gralora_A_general", _aGeneral);
            register_module("gralora_B_general", _bGeneral);
        }

        /// <summary>Wraps <paramref name="baseLayer"/> and adds one adapter.</summary>
        public GraloraLinear(nn.Module<Tensor, Tensor> baseLayer, string adapterName, GraloraOptions options, ScalarType? dtype = null) : this(baseLayer)
            => AddAdapter(adapterName, options, dtype);

        /// <inheritdoc />
        public override AdapterMethod Method => AdapterMethod.GraLoRA;

        /// <summary>Settings of adapter <paramref name="name"/>.</summary>
        public GraloraOptions Options(string name) => (GraloraOptions)GetOptions(name);

        /// <summary>gralora_A of adapter <paramref name="name"/>: [k, in/k, r].</summary>
        public Parameter A(string name) => _a.TryGetValue(name, out var p) ? p : throw UnknownAdapter(name);
        /// <summary>gralora_B of adapter <paramref name="name"/>: [k, r, out/k].</summary>
        public Parameter B(string name) => _b.TryGetValue(name, out var p) ? p : throw UnknownAdapter(name);
        /// <summary>gralora_A_general.weight [hybrid_r, in], or null without a hybrid part.</summary>
        public Parameter? AGeneral(string name) => _aGeneral.TryGetValue(name + ".weight", out var p) ? p : null;
        /// <summary>gralora_B_general.weight [out, hybrid_r], or null without a hybrid part.</summary>
        public Parameter? BGeneral(string name) => _bGeneral.TryGetValue(name + ".weight", out var p) ? p : null;

        /// <inheritdoc />
        protected override ScalarType AdapterDType(string name) => A(name).dtype;

        /// <inheritdoc />
        protected override void CreateAdapterParameters(string name, IAdapterOptions options, ScalarType dtype, Device device)
        {
            var o = (GraloraOptions)options;
            long k = o.K, r = o.Rank, inBlock = InFeatures / k, outBlock = OutFeatures / k;
            var a = empty(new[] { k, inBlock, r }, dtype: dtype, device: device).uniform_(-KaimingBound(inBlock), KaimingBound(inBlock));
            var b = o.InitWeights
                ? zeros(new[] { k, r, outBlock }, dtype: dtype, device: device)
                : empty(new[] { k, r, outBlock }, dtype: dtype, device: device).uniform_(-KaimingBound(r), KaimingBound(r));
            _a.Add(name, new Parameter(a));
            _b.Add(name, new Parameter(b));
            if (o.HybridRank > 0)
            {
                long h = o.HybridRank;
                var ag = empty(new[] { h, InFeatures }, dtype: dtype, device: device).uniform_(-KaimingBound(InFeatures), KaimingBound(InFeatures));
                var bg = o.InitWeights
                    ? zeros(new[] { OutFeatures, h }, dtype: dtype, device: device)
                    : empty(new[] { OutFeatures, h }, dtype: dtype, device: device).uniform_(-KaimingBound(h), KaimingBound(h));
                _aGeneral.Add(name + ".weight", new Parameter(ag));
                _bGeneral.Add(name + ".weight", new Parameter(bg));
            }
        }

        /// <summary>k·r + hybrid r: each of the k output blocks sees rank r (the paper's rank bound).</summary>
        protected override long StructuralRank(string name) => (long)Options(name).K * Options(name).Rank + Options(name).HybridRank;

        /// <inheritdoc />
        protected override void RemoveAdapterParameters(string name)
        {
            RemoveParameter(_a, name);
            RemoveParameter(_b, name);
            RemoveParameter(_aGeneral, name + ".weight");
            RemoveParameter(_bGeneral, name + ".weight");
        }

        /// <inheritdoc />
        public override Tensor GetDeltaWeight(string name)
        {
            using var scope = NewDisposeScope();
            var o = Options(name);
            long k = o.K, r = o.Rank, s = r / k, inBlock = InFeatures / k, outBlock = OutFeatures / k;
            var a = A(name);
            var b = B(name);
            var dtype = a.dtype;
            var work = DeltaComputeType(a);
            // A[n][:, j-slice] as [k(j), k(n), in/k, s];  B[j][n-slice, :] as [k(j), k(n), s, out/k]
            var aBlocks = a.to(work).view(k, inBlock, k, s).permute(2, 0, 1, 3);
            var bBlocks = b.to(work).view(k, k, s, outBlock);
            var blocks = aBlocks.matmul(bBlocks);                               // [k(j), k(n), in/k, out/k] = ΔWᵀ blocks
            var delta = blocks.permute(0, 3, 1, 2).reshape(OutFeatures, InFeatures); // ΔW[j-rows, n-cols] = blockᵀ
            if (AGeneral(name) is { } ag && BGeneral(name) is { } bg)
                delta = delta.add(bg.to(work).matmul(ag.to(work)));
            return delta.mul(o.Scaling).to(dtype).MoveToOuterDisposeScope();
        }

        /// <summary>
        /// The k² blocks' own low-rank factors in W's orientation (unscaled): block (j, n) — output block j, input block n —
        /// contributes ΔW[j-rows, n-cols] = scaling · B[j, n] · A[j, n]. Returns (A [k(j), k(n), s, in/k],
        /// B [k(j), k(n), out/k, s]) with s = r/k, as views over <paramref name="a"/> (gralora_A [k, in/k, r]) and
        /// <paramref name="b"/> (gralora_B [k, r, out/k]). For diagnostics; the test ties it to <see cref="GetDeltaWeight"/>.
        /// </summary>
        public static (Tensor A, Tensor B) BlockFactors(Tensor a, Tensor b, long k)
        {
            long inBlock = a.shape[1], r = a.shape[2], s = r / k, outBlock = b.shape[2];
            var aBlocks = a.view(k, inBlock, k, s).permute(2, 0, 1, 3).transpose(2, 3);   // A[n][:, j-slice]ᵀ: [k(j), k(n), s, in/k]
            var bBlocks = b.view(k, k, s, outBlock).transpose(2, 3);                      // B[j][n-slice, :]ᵀ: [k(j), k(n), out/k, s]
            return (aBlocks, bBlocks);
        }

        /// <inheritdoc />
        protected override Tensor AdapterForward(string name, Tensor x) =>
            BlockOutputs(name, x).transpose(0, 1).reshape(x.shape[0], OutFeatures).mul(Options(name).Scaling);   // [M, out]

        /// <summary>
        /// Adds the k output blocks through a [M, k, out/k] view of the result: the blocks are read in place instead of
        /// first being copied into [M, out] order (a pass over an output-sized tensor).
        /// </summary>
        protected override Tensor AddAdapterOutput(Tensor result, string name, Tensor x)
        {
            var o = Options(name);
            long k = o.K, m = x.shape[0];
            var blocks = BlockOutputs(name, x).to(result.dtype).transpose(0, 1);                   // [M, k(j), out/k], strided
            return result.view(m, k, OutFeatures / k).add(blocks, alpha: o.Scaling).view(result.shape);
        }

        /// <summary>The unscaled update as its k output blocks [k(j), M, out/k] for x [M, in].</summary>
        Tensor BlockOutputs(string name, Tensor x)
        {
            var o = Options(name);
            long k = o.K, r = o.Rank, s = r / k, h = o.HybridRank, m = x.shape[0], inBlock = InFeatures / k, outBlock = OutFeatures / k;
            Tensor a = A(name);                                        // [k(n), in/k, r]
            Tensor b = B(name);                                        // [k(j), r, out/k]
            if (h > 0)
            {
                // Hybrid: ride along in the same two batched matmuls instead of two more passes over x and y.
                // A_general's columns for input block n join A[n]; B_general's rows for output block j join B[j].
                a = cat(new[] { a, AGeneral(name)!.t().reshape(k, inBlock, h) }, 2);                 // [k, in/k, r + h]
                b = cat(new[] { b, BGeneral(name)!.view(k, outBlock, h).transpose(1, 2) }, 1);    // [k, r + h, out/k]
            }
            // Every input block through its A: [k(n), M, r (+h)] — one batched matmul, no k²-block matrix.
            var t = x.view(m, k, inBlock).transpose(0, 1).bmm(a);
            // Regroup so output block j collects the s-slice j of every input block: [k(j), M, (n, s)].
            var u = (h > 0 ? t.narrow(2, 0, r) : t).view(k, m, k, s).transpose(0, 2).reshape(k, m, r);
            if (h > 0)
            {
                var general = t.narrow(2, r, h).sum(0, false);                                          // x·A_generalᵀ [M, h]
                u = cat(new[] { u, general.unsqueeze(0).expand(k, m, h) }, 2);                     // [k(j), M, r + h]
            }
            return u.bmm(b);                                                                        // [k(j), M, out/k]
        }
    }
}
