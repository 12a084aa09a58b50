using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Gguf
{
    /// <summary>
    /// Writes a decoder as a GGUF v3 model file for llama.cpp (what convert_hf_to_gguf.py produces): the architecture's
    /// hyperparameter keys, the tokenizer, and every weight under llama.cpp's name, in float32, float16, bfloat16 or q8_0
    /// (1-D tensors such as norms and biases stay float32, and q8_0 falls back to float16 for rows that are not a multiple
    /// of 32, as the converter does).
    /// </summary>
    public static class GgufModelWriter
    {
        /// <summary>gguf-py's GGML_QUANT_VERSION, written as general.quantization_version.</summary>
        public const uint QuantizationVersion = 2;

        /// <summary>
        /// Writes <paramref name="weights"/> (transformers' key names, as <see cref="Adapters.AdapterHost.MergedWeights"/>
        /// yields them, produced one at a time) of a <paramref name="config"/> model to <paramref name="path"/>.
        /// </summary>
        public static void Write(string path, DecoderConfig config, IReadOnlyList<TensorSource> weights, HfTokenizer tokenizer,
                                 string name, GgmlType type, bool overwrite = false)
        {
            var arch = GgufArchitectures.For(config.ModelType);
            arch.CheckConfig(config);
            string target = CheckOutput(path, overwrite);
            var writer = new GgufWriter();
            writer.Add("general.architecture", arch.Name);
            writer.Add("general.type", "model");
            writer.Add("general.name", name);
            AddHyperparameters(writer, arch, config);
            writer.Add("general.file_type", GgufFormat.FileType(type));
            writer.Add("general.quantization_version", QuantizationVersion);
            GgufTokenizer.AddTo(writer, tokenizer, config.VocabSize);

            foreach (var source in weights)
            {
                var (ggufName, module) = arch.TensorName(source.Name);
                long heads = module switch { "q_proj" => config.NumHeads, "k_proj" => config.NumKeyValueHeads, _ => 0 };
                // The writer disposes what these create (a merged weight included) once the tensor is written.
                var get = source.Get;
                Func<Tensor> values = heads > 0 && arch.InterleavedRope ? () => InterleaveRopeRows(get(), heads) : get;
                writer.AddTensor(ggufName, source.Shape, StorageType(source.Shape, type), values);
            }
            if (config.RopeScaling is not null)
            {
                var factors = RopeFrequencyFactors(config);
                writer.AddTensor("rope_freqs.weight", factors.shape, GgmlType.F32, () => factors);
            }
            writer.Write(target);
        }

        /// <summary>The hyperparameter keys llama.cpp reads for a Llama-family architecture.</summary>
        static void AddHyperparameters(GgufWriter w, GgufArchitecture arch, DecoderConfig c)
        {
            string a = arch.Name;
            w.Add($"{a}.vocab_size", (uint)c.VocabSize);
            w.Add($"{a}.context_length", (uint)ContextLength(c));
            w.Add($"{a}.embedding_length", (uint)c.HiddenSize);
            w.Add($"{a}.block_count", (uint)c.NumLayers);
            w.Add($"{a}.feed_forward_length", (uint)c.IntermediateSize);
            w.Add($"{a}.attention.head_count", (uint)c.NumHeads);
            w.Add($"{a}.attention.head_count_kv", (uint)c.NumKeyValueHeads);
            w.Add($"{a}.attention.key_length", (uint)c.HeadDim);
            w.Add($"{a}.attention.value_length", (uint)c.HeadDim);
            w.Add($"{a}.attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
            w.Add($"{a}.rope.freq_base", (float)c.RopeTheta);
            w.Add($"{a}.rope.dimension_count", (uint)(c.HeadDim * c.PartialRotaryFactor));
        }

        /// <summary>
        /// The context length written: llama.cpp's llama/qwen2/qwen3 architectures attend to every earlier token, so a
        /// model with sliding-window layers is declared with the window as its context, where both compute the same.
        /// </summary>
        public static int ContextLength(DecoderConfig c)
        {
            int context = c.MaxPositionEmbeddings;
            for (int layer = 0; layer < c.NumLayers; layer++)
                if (c.WindowOf(layer) is { } window) context = Math.Min(context, window);
            return context;
        }

        /// <summary>The GGUF type a tensor of <paramref name="shape"/> is stored in when the model's type is <paramref name="type"/>.</summary>
        public static GgmlType StorageType(long[] shape, GgmlType type) =>
            shape.Length <= 1 ? GgmlType.F32
            : type == GgmlType.Q8_0 && shape[^1] % GgufFormat.Q8BlockSize != 0 ? GgmlType.F16
            : type;

        /// <summary>
        /// Reorders the rows of each of <paramref name="heads"/> heads from transformers' halves (x₀…x_{d/2-1} | x_{d/2}…)
        /// to llama.cpp's interleaved pairs (x₀, x_{d/2}, x₁, …), so its pairwise rotation matches rotate_half. Works
        /// on a weight [heads·d, in], a bias [heads·d] and a LoRA B [heads·d, r].
        /// </summary>
        public static Tensor InterleaveRopeRows(Tensor rows, long heads)
        {
            var shape = rows.shape;
            long d = shape[0] / heads;
            var split = new[] { heads, 2, d / 2 }.Concat(shape.Skip(1)).ToArray();
            return rows.reshape(split).transpose(1, 2).reshape(shape);      // [heads, d/2, 2, …] → rows (h, i, half)
        }

        /// <summary>
        /// llama.cpp's rope_freqs for llama3 rope scaling: per rotated pair, the factor its base frequency is divided by
        /// (the base inverse frequency over the scaled one of <see cref="RotaryEmbedding"/>).
        /// </summary>
        static Tensor RopeFrequencyFactors(DecoderConfig config)
        {
            var scaled = new RotaryEmbedding(config).InvFreq;
            var plain = new RotaryEmbedding(config with { RopeScaling = null }).InvFreq;
            return (plain / scaled).to(ScalarType.Float32);                     // [rotary_dim / 2]
        }

        /// <summary>The full path of a GGUF file to write, refusing an existing non-empty one unless <paramref name="overwrite"/> (<see cref="IO.OutputTarget"/>).</summary>
        internal static string CheckOutput(string path, bool overwrite)
        {
            string target = Path.GetFullPath(path);
            IO.OutputTarget.CheckFile(target, overwrite);
            string? parent = Path.GetDirectoryName(target);
            if (parent is not null) Directory.CreateDirectory(parent);
            return target;
        }
    }
}
