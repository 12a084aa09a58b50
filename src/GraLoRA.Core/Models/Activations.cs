using System;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>The activation functions implemented, by transformers' ACT2FN names.</summary>
    internal static class Activations
    {
        /// <summary>act(x) for <paramref name="name"/> (silu/swish, relu, gelu exact, gelu_new/gelu_pytorch_tanh: the tanh approximation).</summary>
        public static Tensor Apply(string name, Tensor x) => name switch
        {
            "silu" or "swish" => nn.functional.silu(x),
            "relu" => nn.functional.relu(x),
            "gelu_new" or "gelu_pytorch_tanh" => 0.5 * x * (1.0 + tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x.pow(3)))),
            "gelu" => nn.functional.gelu(x),                 // exact (erf) GELU
            _ => throw new InvalidOperationException("activation " + name),
        };
    }
}
