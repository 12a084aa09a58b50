using System.Linq;
using GraLoRA.Models;

namespace GraLoRA.PowerShell
{
    /// <summary>What Get-BaseModel outputs: a snapshot of a model's description.</summary>
    public sealed class BaseModelInfo
    {
        /// <summary>The model's name (its folder or Hub repository name).</summary>
        public string Name { get; init; } = "";
        /// <summary>The folder it was loaded from.</summary>
        public string Path { get; init; } = "";
        /// <summary>The Hugging Face model_type (llama, mistral, qwen2, qwen3).</summary>
        public string Architecture { get; init; } = "";
        /// <summary>Parameters, counting each shared tensor once (adapters and heads included).</summary>
        public long Parameters { get; init; }
        /// <summary>float32, bfloat16 or float16.</summary>
        public string DType { get; init; } = "";
        /// <summary>The device the weights are on (cpu, cuda:0…).</summary>
        public string Device { get; init; } = "";
        /// <summary>nf4 or int8 when the decoder layers' linear weights are held quantised (DType is then their compute dtype), else null.</summary>
        public string? Quantization { get; init; }
        /// <summary>Tokens in the tokenizer's vocabulary, or null when the model has no tokenizer.</summary>
        public int? TokenizerVocabSize { get; init; }
        /// <summary>The model's adapters, in the order they were added.</summary>
        public string[] Adapters { get; init; } = System.Array.Empty<string>();
        /// <summary>The active adapters.</summary>
        public string[] ActiveAdapters { get; init; } = System.Array.Empty<string>();
        /// <summary>Whether the adapters are disabled (Set-GraLoRAAdapter -Disable).</summary>
        public bool AdaptersDisabled { get; init; }
        /// <summary>Labels of the classification head (0 without one).</summary>
        public int ClassificationLabels { get; init; }
        /// <summary>The model described (for piping on to the -Model cmdlets).</summary>
        public BaseModel Model { get; init; } = null!;

        internal static BaseModelInfo Of(BaseModel model) => new()
        {
            Name = model.Name, Path = model.Path, Architecture = model.Architecture, Parameters = model.ParameterCount,
            DType = model.DType, Device = model.Device, TokenizerVocabSize = model.Tokenizer?.VocabSize,
            Quantization = model.Quantization is { } scheme ? GraLoRA.Quantization.QuantizationOptions.Name(scheme) : null,
            Adapters = model.Adapters.Names.ToArray(), ActiveAdapters = model.Adapters.Active.ToArray(),
            AdaptersDisabled = model.Adapters.Disabled, ClassificationLabels = model.Transformer.ClassificationLabels, Model = model,
        };

        /// <inheritdoc />
        public override string ToString() => $"{Name} ({Architecture}, {DType}, {Device})";
    }
}
