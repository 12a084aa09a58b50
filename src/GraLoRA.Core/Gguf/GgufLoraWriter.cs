using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Models;

namespace GraLoRA.Gguf
{
    /// <summary>
    /// Writes a converted adapter as a GGUF LoRA adapter (convert_lora_to_gguf.py's layout), the file llama.cpp's --lora
    /// and Ollama's ADAPTER take: general.type "adapter", adapter.type "lora", adapter.lora.alpha, and per adapted weight
    /// &lt;llama.cpp tensor&gt;.lora_a [r, in] and .lora_b [out, r] in float32.
    /// </summary>
    public static class GgufLoraWriter
    {
        /// <summary>
        /// Writes <paramref name="conversion"/> for a <paramref name="config"/> base model to <paramref name="path"/>.
        /// llama.cpp scales each layer by alpha / (that layer's rank) with one alpha for the file: alpha is the largest
        /// rank and every other layer's B carries the factor rank/alpha, so each layer's ΔW comes out exactly.
        /// </summary>
        public static void Write(string path, DecoderConfig config, LoraConversion conversion, bool overwrite = false)
        {
            var arch = GgufArchitectures.For(config.ModelType);
            arch.CheckConfig(config);
            var source = conversion.Source;
            if (source.ModulesToSave is { Count: > 0 } || source.Bias != "none")
                throw new GraloraException("GgufUnsupportedAdapter", GraloraErrorKind.InvalidArgument,
                    $"Adapter '{conversion.AdapterName}' also trains {(source.ModulesToSave is { Count: > 0 } m ? "modules to save (" + string.Join(", ", m) + ")" : "biases (bias " + source.Bias + ")")}, which a GGUF LoRA adapter cannot carry: export the merged model instead (Export-BaseModel -Format gguf).", conversion.AdapterName);
            string target = GgufModelWriter.CheckOutput(path, overwrite);
            int alpha = conversion.Layers.Max(l => l.Rank);
            var writer = new GgufWriter();
            writer.Add("general.architecture", arch.Name);
            writer.Add("general.type", "adapter");
            writer.Add("general.name", conversion.AdapterName);
            writer.Add("adapter.type", "lora");
            writer.Add("adapter.lora.alpha", (float)alpha);
            foreach (var layer in conversion.Layers)
            {
                var (baseName, module) = arch.TensorName(layer.Module + ".weight");
                var (a, b) = conversion.Factors(layer.Module);
                long heads = module switch { "q_proj" => config.NumHeads, "k_proj" => config.NumKeyValueHeads, _ => 0 };
                double fold = (double)layer.Rank / alpha;
                writer.AddTensor(baseName + ".lora_a", a.shape, GgmlType.F32, () => a.alias());
                writer.AddTensor(baseName + ".lora_b", b.shape, GgmlType.F32, () =>
                {
                    var scaled = b.mul(fold);
                    return heads > 0 && arch.InterleavedRope ? GgufModelWriter.InterleaveRopeRows(scaled, heads) : scaled;
                });
            }
            writer.Write(target);
        }
    }
}
