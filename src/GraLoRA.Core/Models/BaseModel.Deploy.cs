using System;
using GraLoRA.Adapters;
using GraLoRA.Gguf;

namespace GraLoRA.Models
{
    public sealed partial class BaseModel
    {
        /// <summary>
        /// Writes the model as one GGUF v3 file for llama.cpp, Ollama and LM Studio: active adapters merged in (W + ΔW, one
        /// tensor at a time), llama.cpp's tensor names and hyperparameter keys, and the tokenizer (needed: llama.cpp reads
        /// the vocabulary from the file). <paramref name="dtype"/>: float32, float16, bfloat16 or q8_0 (default: float32,
        /// or float16/bfloat16 when the model is). Refuses architectures and settings llama.cpp cannot run, by name.
        /// Returns the full path.
        /// </summary>
        public string ExportGguf(string path, string? dtype = null, bool overwrite = false)
        {
            if (_decoder is null)
                throw new GraloraException("GgufUnsupportedArchitecture", GraloraErrorKind.InvalidArgument,
                    $"Model '{Name}' is a {Architecture} encoder; GGUF export writes decoders ({string.Join(", ", GgufArchitectures.SupportedModelTypes)}).", Architecture);
            var arch = GgufArchitectures.For(Config.ModelType);
            arch.CheckConfig(Config);
            var tokenizer = Tokenizer ?? throw new GraloraException("GgufNeedsTokenizer", GraloraErrorKind.InvalidOperation,
                $"Model '{Name}' has no tokenizer (tokenizer.json), and llama.cpp reads the vocabulary from the GGUF file: load a model folder with its tokenizer.", Name);
            var type = GgufFormat.ParseType(dtype ?? ModelDType.Name(Transformer.DType));
            var weights = Adapters.MergedWeights(key => Config.TieWordEmbeddings && key == "lm_head.weight");
            GgufModelWriter.Write(path, Config, weights, tokenizer, Name, type, overwrite);
            return System.IO.Path.GetFullPath(path);
        }
    
        /// <summary>
        /// Rewrites GraLoRA adapter <paramref name="adapter"/> as LoRA factors, layer by layer: exact (rank k·r + hybrid_r)
        /// or truncated by <paramref name="options"/>. The model is not changed. Dispose the result when done.
        /// </summary>
        public LoraConversion ConvertToLora(string adapter, LoraConversionOptions? options = null) =>
            LoraConversion.FromAdapter(Adapters, adapter, options ?? new LoraConversionOptions());

        /// <summary>
        /// Converts GraLoRA adapter <paramref name="adapter"/> (see <see cref="ConvertToLora(string, LoraConversionOptions)"/>)
        /// and writes it to <paramref name="path"/> (see <see cref="SaveLora"/>): what ConvertTo-LoRAAdapter does.
        /// </summary>
        public LoraConversionResult ConvertToLora(string adapter, string path, LoraConversionOptions? options = null, bool gguf = false, bool overwrite = false)
        {
            using var conversion = ConvertToLora(adapter, options);
            string written = SaveLora(conversion, path, gguf, overwrite);
            return new LoraConversionResult(written, gguf ? "gguf" : "peft", adapter, conversion.DefaultRank, conversion.MaxRelativeError, conversion.Layers);
        }

        /// <summary>
        /// Writes <paramref name="conversion"/> as a PEFT LoRA adapter folder (<paramref name="gguf"/> false; vLLM, TGI,
        /// PEFT and this module load it) or as a GGUF LoRA adapter file for llama.cpp and Ollama. Returns the full path.
        /// </summary>
        public string SaveLora(LoraConversion conversion, string path, bool gguf = false, bool overwrite = false)
        {
            if (!gguf) return conversion.SavePeft(Adapters, path, overwrite);
            if (_decoder is null)
                throw new GraloraException("GgufUnsupportedArchitecture", GraloraErrorKind.InvalidArgument,
                    $"Model '{Name}' is a {Architecture} encoder; GGUF adapters are written for decoders ({string.Join(", ", GgufArchitectures.SupportedModelTypes)}).", Architecture);
            GgufLoraWriter.Write(path, Config, conversion, overwrite);
            return System.IO.Path.GetFullPath(path);
        }
    }
}
