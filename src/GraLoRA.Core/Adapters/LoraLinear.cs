using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GraLoRA.Adapters
{
    /// <summary>
    /// A linear layer with plain LoRA adapters (the baseline), as PEFT's LoRA: lora_A.weight [r, in],
    /// lora_B.weight [out, r], ΔW = B·A·scaling with scaling alpha/r (rsLoRA: alpha/√r). <see cref="DoraLinear"/> extends it.
    /// </summary>
    public class LoraLinear : AdapterLayerBase
    {
        /// <summary>PEFT's module name of the A factors (its checkpoint key is &lt;module&gt;.lora_A.weight).</summary>
        public const string AModuleName = "lora_A";
        /// <summary>PEFT's module name of the B factors (&lt;module&gt;.lora_B.weight).</summary>
        public const string BModuleName = "lora_B";
        // PEFT's lora_A/lora_B hold an nn.Linear per adapter, so each factor is registered as <container>.<adapter>.weight.
        const string FactorParameter = "weight";

        /// <summary>
        /// The keys, relative to the module, under which A and B are saved (<see cref="IAdapterTensors.AdapterStateDict"/>,
        /// PEFT's lora_A.weight and lora_B.weight), derived from how the factors are registered: for writers of LoRA
        /// factors that come from elsewhere (<see cref="LoraConversion"/>).
        /// </summary>
        public static (string A, string B) FactorKeys { get; } =
            (PeftKeys.LayerKey(AModuleName + "." + Entry(AdapterConfig.DefaultName), AdapterConfig.DefaultName),
             PeftKeys.LayerKey(BModuleName + "." + Entry(AdapterConfig.DefaultName), AdapterConfig.DefaultName));

        static string Entry(string adapter) => adapter + "." + FactorParameter;

        readonly ParameterDict _a = new();   // Entry(name) -> [r, in]
        readonly ParameterDict _b = new();   // Entry(name) -> [out, r]

        /// <summary>Wraps <paramref name="baseLayer"/> (a Linear or a quantised layer) with no adapters yet.</summary>
        public LoraLinear(nn.Module<Tensor, Tensor> baseLayer) : this(nameof(LoraLinear), baseLayer) { }

        /// <summary>For variants (DoRA): registers lora_A and lora_B under module name <paramref name="name"/>.</summary>
        protected LoraLinear(string name, nn.Module<Tensor, Tensor> baseLayer) : base(name, baseLayer)
        {
            register_module(AModuleName, _a);
            register_module(BModuleName, _b);
        }

        /// <summary>Wraps <paramref name="baseLayer"/> and adds one adapter.</summary>
        public LoraLinear(nn.Module<Tensor, Tensor> baseLayer, string adapterName, LoraOptions options, ScalarType? dtype = null) : this(baseLayer)
            => AddAdapter(adapterName, options, dtype);

        /// <inheritdoc />
        public override AdapterMethod Method => AdapterMethod.LoRA;

        /// <summary>Settings of adapter <paramref name="name"/>.</summary>
        public LoraOptions Options(string name) => (LoraOptions)GetOptions(name);

        /// <summary>lora_A.weight of adapter <paramref name="name"/>: [r, in].</summary>
        public Parameter A(string name) => _a.TryGetValue(Entry(name), out var p) ? p : throw UnknownAdapter(name);
        /// <summary>lora_B.weight of adapter <paramref name="name"/>: [out, r].</summary>
        public Parameter B(string name) => _b.TryGetValue(Entry(name), out var p) ? p : throw UnknownAdapter(name);

        /// <inheritdoc />
        protected override ScalarType AdapterDType(string name) => A(name).dtype;

        /// <inheritdoc />
        protected override void CreateAdapterParameters(string name, IAdapterOptions options, ScalarType dtype, Device device)
        {
            long r = options.Rank;
            var a = empty(new[] { r, InFeatures }, dtype: dtype, device: device).uniform_(-KaimingBound(InFeatures), KaimingBound(InFeatures));
            var b = options.InitWeights
                ? zeros(new[] { OutFeatures, r }, dtype: dtype, device: device)
                : empty(new[] { OutFeatures, r }, dtype: dtype, device: device).uniform_(-KaimingBound(r), KaimingBound(r));
            _a.Add(Entry(name), new Parameter(a));
            _b.Add(Entry(name), new Parameter(b));
        }

        /// <inheritdoc />
        protected override void RemoveAdapterParameters(string name)
        {
            RemoveParameter(_a, Entry(name));
            RemoveParameter(_b, Entry(name));
        }

        /// <inheritdoc />
        public override Tensor GetDeltaWeight(string name)
        {
            using var scope = NewDisposeScope();
            var a = A(name);
            var work = DeltaComputeType(a);
            return B(name).to(work).matmul(a.to(work)).mul(Options(name).Scaling).to(a.dtype).MoveToOuterDisposeScope();
        }

        /// <inheritdoc />
        // Scaled at rank width ([M, r]), not at the output's: one output-sized pass less per layer forward.
        protected override Tensor AdapterForward(string name, Tensor x) => x.mm(A(name).t()).mul(Options(name).Scaling).mm(B(name).t());   // [M, out]
    }
}
