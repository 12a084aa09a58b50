using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// A linear layer with RaSA adapters, computing what the RaSA authors' PEFT fork (zwhe99/RaSA, peft tuners/rasa)
    /// computes. Layer l keeps rasa_A [r − k, in], rasa_B [out, r − k] and rasa_mixing [r − k + k·L]; every layer of its
    /// module type also uses that type's shared pool (<see cref="RasaSharedPool"/>: shared_A [k·L, in], shared_B
    /// [out, k·L]) with its own mixing weights: output = base(x) + ((x·[A_l ; A_s]ᵀ) ⊙ mixing_l)·[B_l | B_s]ᵀ, so
    /// ΔW = [B_l | B_s]·diag(mixing_l)·[A_l ; A_s]. The authors' code has no merge; merging adds this ΔW.
    /// </summary>
    public sealed class RasaLinear : AdapterLayerBase
    {
        readonly ParameterDict _a = new();         // "name.weight" -> [r − k, in]
        readonly ParameterDict _b = new();         // "name.weight" -> [out, r − k]
        readonly ParameterDict _mixing = new();    // "name.weight" -> [r − k + k·L]
        readonly RasaSharedPool _pool;

        /// <summary>Wraps <paramref name="baseLayer"/> of module type <paramref name="moduleType"/>, whose shared ranks live in <paramref name="pool"/>.</summary>
        public RasaLinear(nn.Module<Tensor, Tensor> baseLayer, RasaSharedPool pool, string moduleType) : base(nameof(RasaLinear), baseLayer)
        {
            _pool = pool;
            ModuleType = moduleType;
            register_module("rasa_A", _a);
            register_module("rasa_B", _b);
            register_module("rasa_mixing", _mixing);
        }

        /// <inheritdoc />
        public override AdapterMethod Method => AdapterMethod.RaSA;

        /// <summary>The module type whose pool this layer uses (e.g. self_attn__q_proj).</summary>
        public string ModuleType { get; }

        /// <summary>Settings of adapter <paramref name="name"/>.</summary>
        public RasaOptions Options(string name) => (RasaOptions)GetOptions(name);

        /// <summary>rasa_A.weight: [r − k, in].</summary>
        public Parameter A(string name) => _a.TryGetValue(name + ".weight", out var p) ? p : throw UnknownAdapter(name);
        /// <summary>rasa_B.weight: [out, r − k].</summary>
        public Parameter B(string name) => _b.TryGetValue(name + ".weight", out var p) ? p : throw UnknownAdapter(name);
        /// <summary>rasa_mixing.weight: [r − k + k·L].</summary>
        public Parameter Mixing(string name) => _mixing.TryGetValue(name + ".weight", out var p) ? p : throw UnknownAdapter(name);

        /// <inheritdoc />
        protected override ScalarType AdapterDType(string name) => Mixing(name).dtype;

        /// <inheritdoc />
        protected override void CreateAdapterParameters(string name, IAdapterOptions options, ScalarType dtype, Device device)
        {
            var o = (RasaOptions)options;
            var shared = _pool.A(name, ModuleType);
            if (shared.shape[0] != o.SharedRank || shared.shape[1] != InFeatures || _pool.B(name, ModuleType).shape[0] != OutFeatures)
                throw new GraloraException("RasaPoolMismatch", GraloraErrorKind.InvalidArgument,
                    $"The RaSA pool of '{ModuleType}' is [{string.Join(", ", shared.shape)}] but this layer needs [{o.SharedRank}, {InFeatures}] (k·L by in_features) and out_features {OutFeatures}.", ModuleType);
            long own = o.PrivateRank;
            var a = empty(new[] { own, InFeatures }, dtype: dtype, device: device).uniform_(-KaimingBound(InFeatures), KaimingBound(InFeatures));
            var b = o.InitWeights || own == 0
                ? zeros(new[] { OutFeatures, own }, dtype: dtype, device: device)
                : empty(new[] { OutFeatures, own }, dtype: dtype, device: device).uniform_(-KaimingBound(own), KaimingBound(own));
            // The authors' start: (α/2)/(r − k) on the private entries, (α/2)/(k·L) on the shared ones.
            var mixing = cat(new[]
            {
                full(own, own > 0 ? 0.5 * o.Alpha / own : 0, dtype: dtype, device: device),
                full(o.SharedRank, 0.5 * o.Alpha / o.SharedRank, dtype: dtype, device: device),
            }, 0);                                                                          // [r − k + k·L]
            _a.Add(name + ".weight", new Parameter(a));
            _b.Add(name + ".weight", new Parameter(b));
            _mixing.Add(name + ".weight", new Parameter(mixing));
        }

        /// <summary>r − k + k·L: the private ranks plus the whole shared pool.</summary>
        protected override long StructuralRank(string name) => Options(name).PrivateRank + Options(name).SharedRank;

        /// <inheritdoc />
        protected override void RemoveAdapterParameters(string name)
        {
            RemoveParameter(_a, name + ".weight");
            RemoveParameter(_b, name + ".weight");
            RemoveParameter(_mixing, name + ".weight");
        }

        /// <summary>ΔW = [B_l | B_s]·diag(mixing_l)·[A_l ; A_s] [out, in] (scale 1): the matrix the forward applies.</summary>
        public override Tensor GetDeltaWeight(string name)
        {
            using var scope = NewDisposeScope();
            var (a, b) = Factors(name);                                                     // [r', in], [out, r']
            var dtype = a.dtype;
            var work = DeltaComputeType(a);
            var mixed = b.to(work).mul(Mixing(name).to(work));                              // B·diag(mixing) [out, r']
            return mixed.matmul(a.to(work)).to(dtype).MoveToOuterDisposeScope();            // [out, in]
        }

        /// <inheritdoc />
        protected override Tensor AdapterForward(string name, Tensor x)
        {
            var (a, b) = Factors(name);                                                     // [r', in], [out, r']
            return x.mm(a.t()).mul(Mixing(name)).mm(b.t());                                 // [M, r'] → [M, out]
        }

        // The private and shared factors side by side, r' = r − k + k·L: ([A_l ; A_s] [r', in], [B_l | B_s] [out, r']).
        (Tensor A, Tensor B) Factors(string name) =>
            (cat(new Tensor[] { A(name), _pool.A(name, ModuleType) }, 0), cat(new Tensor[] { B(name), _pool.B(name, ModuleType) }, 1));
    }
}
