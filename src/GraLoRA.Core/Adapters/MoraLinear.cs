using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// A linear layer with MoRA adapters, computing what the MoRA authors' PEFT fork (kongds/MoRA, peft-mora
    /// tuners/lora/layer.py) computes: one trained square matrix M [r̂, r̂] between a fixed compression of the input
    /// to r̂ features and a fixed decompression to the output. The input is extended cyclically to nb = ⌈in/r̂⌉ blocks
    /// of r̂ (its first nb·r̂ − in features repeated). Type 1 sums the blocks, applies M and repeats the result up to out;
    /// type 6 rotates block b by the angles b·θᵢ, θᵢ = 10000^(−2i/r̂), as RoPE does, applies M to every block and
    /// concatenates, cut (or repeated) to out. Scale 1. The fork stores M as lora_A.weight and again as lora_B.weight.
    /// </summary>
    public sealed class MoraLinear : AdapterLayerBase
    {
        readonly ParameterDict _square = new();                              // "name.weight" -> [r̂, r̂]
        readonly Dictionary<string, (Tensor Cos, Tensor Sin)> _rotations = new();   // type 6: name -> [nb, r̂] each

        /// <summary>Wraps <paramref name="baseLayer"/> (a Linear or a quantised layer) with no adapters yet.</summary>
        public MoraLinear(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(MoraLinear), baseLayer)
            => register_module("lora_A", _square);

        /// <summary>Wraps <paramref name="baseLayer"/> and adds one adapter.</summary>
        public MoraLinear(Linear baseLayer, string adapterName, MoraOptions options, ScalarType? dtype = null) : this(baseLayer)
            => AddAdapter(adapterName, options, dtype);

        /// <inheritdoc />
        public override AdapterMethod Method => AdapterMethod.MoRA;

        /// <summary>Settings of adapter <paramref name="name"/>.</summary>
        public MoraOptions Options(string name) => (MoraOptions)GetOptions(name);

        /// <summary>The square matrix M of adapter <paramref name="name"/> (the fork's lora_A.weight = lora_B.weight): [r̂, r̂].</summary>
        public Parameter Square(string name) => _square.TryGetValue(name + ".weight", out var p) ? p : throw UnknownAdapter(name);

        /// <summary>r̂ of adapter <paramref name="name"/> on this layer.</summary>
        public long SquareSize(string name) => Options(name).SquareSize(InFeatures, OutFeatures);

        /// <summary>The fork's keys: its lora_B is its lora_A, so the one matrix is saved under both names.</summary>
        public override IEnumerable<(string Key, Parameter Tensor)> AdapterStateDict(string adapter)
        {
            foreach (var t in base.AdapterStateDict(adapter)) yield return t;                     // lora_A.weight
            yield return ("lora_B.weight", Square(adapter));
        }

        /// <inheritdoc />
        protected override ScalarType AdapterDType(string name) => Square(name).dtype;

        /// <inheritdoc />
        protected override void CreateAdapterParameters(string name, IAdapterOptions options, ScalarType dtype, Device device)
        {
            long size = ((MoraOptions)options).SquareSize(InFeatures, OutFeatures);
            // The fork starts M at zero whatever init_lora_weights says; random (nn.Linear's bound) is for tests.
            var square = options.InitWeights
                ? zeros(new[] { size, size }, dtype: dtype, device: device)
                : empty(new[] { size, size }, dtype: dtype, device: device).uniform_(-KaimingBound(size), KaimingBound(size));
            _square.Add(name + ".weight", new Parameter(square));
        }

        /// <summary>Type 1: r̂ (every output repeats the one r̂-vector). Type 6: nb·r̂, one rotated copy of M per input block.</summary>
        protected override long StructuralRank(string name)
        {
            long r = SquareSize(name);
            return Options(name).MoraType == 1 ? r : (InFeatures + r - 1) / r * r;
        }

        /// <inheritdoc />
        protected override void RemoveAdapterParameters(string name)
        {
            RemoveParameter(_square, name + ".weight");
            if (_rotations.Remove(name, out var r)) { r.Cos.Dispose(); r.Sin.Dispose(); }
        }

        /// <summary>ΔW [out, in]: the matrix of the linear map the forward applies, read off by applying it to the identity.</summary>
        public override Tensor GetDeltaWeight(string name)
        {
            using var scope = NewDisposeScope();
            var m = Square(name);
            var work = DeltaComputeType(m);
            var identity = eye(InFeatures, dtype: work, device: m.device);                 // [in, in]: row i is eᵢ
            return Apply(name, identity, m.to(work)).t().to(m.dtype).MoveToOuterDisposeScope(); // [in, out]ᵀ
        }

        /// <inheritdoc />
        protected override Tensor AdapterForward(string name, Tensor x) => Apply(name, x, Square(name));

        // The fork's _apply_mora for types 1 and 6 (scale 1): x [M, in] → [M, out].
        Tensor Apply(string name, Tensor x, Tensor square)
        {
            long r = square.shape[0], rows = x.shape[0], blocks = (InFeatures + r - 1) / r, pad = blocks * r - InFeatures;
            var extended = pad > 0 ? cat(new[] { x, x.narrow(1, 0, pad) }, 1) : x;            // [M, nb·r̂]
            var chunks = extended.view(rows, blocks, r);                                         // [M, nb, r̂]
            Tensor output;
            if (Options(name).MoraType == 1)
            {
                var compressed = chunks.sum(1);                                                  // [M, r̂]
                output = compressed.mm(square.t());                                              // [M, r̂]
            }
            else
            {
                var (cos, sin) = Rotation(name, blocks, r, x);                                   // [nb, r̂] each
                var half = r / 2;
                var rotatedHalf = cat(new[] { chunks.narrow(2, half, half).neg(), chunks.narrow(2, 0, half) }, 2); // [M, nb, r̂]
                var rotated = chunks.mul(cos).add(rotatedHalf.mul(sin));                         // [M, nb, r̂]
                output = rotated.matmul(square.t()).reshape(rows, blocks * r);                   // [M, nb·r̂]
            }
            long width = output.shape[1];
            if (width >= OutFeatures) return output.narrow(1, 0, OutFeatures);                   // [M, out]
            long repeats = (OutFeatures + width - 1) / width;
            return output.repeat(1, repeats).narrow(1, 0, OutFeatures);                          // [M, out]
        }

        // Type 6's angles b·θᵢ for blocks b < nb, as the fork builds them: float32, then the input's dtype; kept per adapter.
        (Tensor Cos, Tensor Sin) Rotation(string name, long blocks, long r, Tensor like)
        {
            if (_rotations.TryGetValue(name, out var cached) && cached.Cos.device == like.device && cached.Cos.dtype == like.dtype
                && cached.Cos.shape[0] == blocks && cached.Cos.shape[1] == r)
                return cached;
            using var scope = NewDisposeScope();
            var exponents = arange(0, r, 2, dtype: ScalarType.Float32).div(r);                   // 2i/r̂ [r̂/2]
            var inverse = pow(10000.0f, exponents).reciprocal();                                 // θᵢ [r̂/2]
            var angles = outer(arange(blocks, dtype: ScalarType.Float32), inverse);             // b·θᵢ [nb, r̂/2]
            var both = cat(new[] { angles, angles }, 1);                                         // [nb, r̂]
            var cos = both.cos().to(like.dtype, like.device).DetachFromDisposeScope();
            var sin = both.sin().to(like.dtype, like.device).DetachFromDisposeScope();
            if (_rotations.Remove(name, out var stale)) { stale.Cos.Dispose(); stale.Sin.Dispose(); }
            _rotations[name] = (cos, sin);
            return (cos, sin);
        }
    }
}
