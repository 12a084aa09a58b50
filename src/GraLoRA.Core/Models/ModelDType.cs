using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace GraLoRA.Models
{
    /// <summary>The floating dtypes models load and run in, by their Hugging Face names (one place for the mapping).</summary>
    public static class ModelDType
    {
        static readonly Dictionary<string, ScalarType> Names = new(StringComparer.OrdinalIgnoreCase)
        {
            ["float32"] = ScalarType.Float32, ["fp32"] = ScalarType.Float32, ["float"] = ScalarType.Float32,
            ["bfloat16"] = ScalarType.BFloat16, ["bf16"] = ScalarType.BFloat16,
            ["float16"] = ScalarType.Float16, ["fp16"] = ScalarType.Float16, ["half"] = ScalarType.Float16,
        };

        /// <summary>Names accepted by <see cref="Parse"/>, canonical first.</summary>
        public static IReadOnlyList<string> Supported { get; } = new[] { "float32", "bfloat16", "float16" };

        /// <summary>Parses float32 / bfloat16 / float16 (and the usual short names); anything else names the choices.</summary>
        public static ScalarType Parse(string name, string what = "dtype") =>
            Names.TryGetValue(name.Trim(), out var t) ? t
                : throw new GraloraException("UnsupportedDType", GraloraErrorKind.InvalidArgument,
                    $"{what} '{name}' is not supported: use one of {string.Join(", ", Supported)}.", name);

        /// <summary>The Hugging Face name (torch_dtype value) of <paramref name="type"/>.</summary>
        public static string Name(ScalarType type) => type switch
        {
            ScalarType.Float32 => "float32",
            ScalarType.BFloat16 => "bfloat16",
            ScalarType.Float16 => "float16",
            ScalarType.Float64 => "float64",
            _ => throw new GraloraException("UnsupportedDType", GraloraErrorKind.InvalidArgument,
                $"dtype {type} is not a model dtype: use one of {string.Join(", ", Supported)}.", type),
        };

        /// <summary>
        /// Fails clearly when <paramref name="device"/> cannot run matrix products in <paramref name="type"/> (for
        /// example half precision on an old GPU), by trying one small product there.
        /// </summary>
        public static void EnsureSupported(ScalarType type, Device device)
        {
            try
            {
                using var scope = NewDisposeScope();
                var a = ones(4, 4, dtype: type, device: device);
                _ = a.matmul(a).sum().to(ScalarType.Float32).item<float>();
            }
            catch (Exception ex) when (ex is not GraloraException)
            {
                throw new GraloraException("DTypeNotSupportedOnDevice", GraloraErrorKind.NotAvailable,
                    $"dtype {Name(type)} does not run on device '{device}' ({ex.Message.Split('\n').First()}): use -DType float32, or another device.", type, ex);
            }
        }
    }
}
