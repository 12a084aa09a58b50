using System;
using System.Linq;

namespace GraLoRA.Quantization
{
    /// <summary>How the frozen linear weights of a base model are held.</summary>
    public enum QuantizationScheme
    {
        /// <summary>4-bit NormalFloat (QLoRA), blockwise absmax: bitsandbytes' Linear4bit with quant_type nf4.</summary>
        Nf4,
        /// <summary>8-bit integers with one absmax per output row (LLM.int8's weight format): bitsandbytes' Linear8bitLt.</summary>
        Int8,
    }

    /// <summary>How to quantise a model's linear weights while loading it (the defaults are declared here once).</summary>
    public sealed record QuantizationOptions
    {
        /// <summary>bitsandbytes' NF4 block size (quantize_4bit's default).</summary>
        public const int DefaultBlockSize = 64;
        /// <summary>Block size of the double-quantised absmax values (bitsandbytes' quantize_4bit with compress_statistics).</summary>
        public const int NestedBlockSize = 256;
        /// <summary>The block sizes bitsandbytes accepts for 4-bit weights.</summary>
        public static readonly int[] ValidBlockSizes = { 32, 64, 128, 256, 512, 1024, 2048, 4096 };

        /// <summary>nf4 or int8.</summary>
        public QuantizationScheme Scheme { get; init; } = QuantizationScheme.Nf4;
        /// <summary>NF4 only: also quantise the per-block absmax values to 8 bits in blocks of 256 (bnb_4bit_use_double_quant).</summary>
        public bool DoubleQuant { get; init; }
        /// <summary>NF4 only: values per absmax block.</summary>
        public int BlockSize { get; init; } = DefaultBlockSize;

        /// <summary>Checks the combination: double quantisation and block sizes belong to NF4.</summary>
        public void Validate()
        {
            if (Scheme == QuantizationScheme.Int8 && (DoubleQuant || BlockSize != DefaultBlockSize))
                throw new GraloraException("InvalidQuantization", GraloraErrorKind.InvalidArgument,
                    "Int8 quantisation keeps one absmax per output row: double quantisation and block sizes apply to nf4 only.", Scheme);
            if (!ValidBlockSizes.Contains(BlockSize))
                throw new GraloraException("InvalidQuantization", GraloraErrorKind.InvalidArgument,
                    $"NF4 block size {BlockSize} is not one bitsandbytes supports ({string.Join(", ", ValidBlockSizes)}).", BlockSize);
        }

        /// <summary>
        /// The options a -Quantize / -DoubleQuant pair asks for: null when <paramref name="scheme"/> is null (double
        /// quantisation without a scheme is refused), else the parsed scheme (see <see cref="ParseScheme"/>).
        /// </summary>
        public static QuantizationOptions? From(string? scheme, bool doubleQuant)
        {
            if (scheme is null)
                return doubleQuant ? throw new GraloraException("InvalidQuantization", GraloraErrorKind.InvalidArgument, "-DoubleQuant (DoubleQuant) applies to NF4 quantisation: add -Quantize nf4.") : null;
            return new QuantizationOptions { Scheme = ParseScheme(scheme), DoubleQuant = doubleQuant };
        }

        /// <summary>Parses nf4 / int8 (any case); anything else names the choices and the schemes that are not implemented.</summary>
        public static QuantizationScheme ParseScheme(string name) => name.Trim().ToLowerInvariant() switch
        {
            "nf4" => QuantizationScheme.Nf4,
            "int8" => QuantizationScheme.Int8,
            _ => throw new GraloraException("UnsupportedQuantization", GraloraErrorKind.InvalidArgument,
                $"Quantisation '{name}' is not implemented: use nf4 or int8 (bitsandbytes' schemes). {NotImplemented}", name),
        };

        /// <summary>The sentence every refusal of an unimplemented scheme ends with.</summary>
        internal const string NotImplemented =
            "GPTQ, AWQ, FP8, fp4 and the other quantisation methods are not implemented: load the full-precision checkpoint and quantise it while loading (-Quantize nf4|int8).";

        /// <summary>The scheme's lower-case name (nf4, int8).</summary>
        public static string Name(QuantizationScheme scheme) => scheme switch
        {
            QuantizationScheme.Nf4 => "nf4",
            QuantizationScheme.Int8 => "int8",
            _ => throw new ArgumentOutOfRangeException(nameof(scheme)),
        };
    }
}
