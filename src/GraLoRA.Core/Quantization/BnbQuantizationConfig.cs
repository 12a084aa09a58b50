using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using GraLoRA.Models;
using static TorchSharp.torch;

namespace GraLoRA.Quantization
{
    /// <summary>
    /// The quantization_config block of a checkpoint saved quantised by transformers with bitsandbytes
    /// (BitsAndBytesConfig.to_dict), read field by field: what is implemented is used, what is not is refused
    /// (UnsupportedConfig naming the field and value). docs/quantization.md lists every field; a test walks that table.
    /// </summary>
    public sealed record BnbQuantizationConfig
    {
        /// <summary>nf4 (load_in_4bit) or int8 (load_in_8bit).</summary>
        public QuantizationScheme Scheme { get; init; }
        /// <summary>bnb_4bit_compute_dtype: the dtype quantised layers compute in (transformers' default float32).</summary>
        public ScalarType ComputeDType { get; init; } = ScalarType.Float32;
        /// <summary>bnb_4bit_use_double_quant as written (the tensors' own quant state decides, as in bitsandbytes).</summary>
        public bool DoubleQuant { get; init; }
        /// <summary>llm_int8_skip_modules: modules left unquantised (null: transformers' default, the output head only).</summary>
        public IReadOnlyList<string>? SkipModules { get; init; }
        /// <summary>llm_int8_threshold as written (8-bit only; see docs/quantization.md for what it means here).</summary>
        public double Int8Threshold { get; init; } = 6.0;

        /// <summary>quant_method values of other quantisation libraries (refused by name).</summary>
        static readonly string[] OtherMethods =
        {
            "gptq", "awq", "fp8", "compressed-tensors", "aqlm", "quanto", "eetq", "hqq", "torchao", "bitnet", "fbgemm_fp8",
            "higgs", "vptq", "spqr", "quark", "mxfp4", "auto-round", "gguf",
        };

        /// <summary>
        /// Whether module <paramref name="fullName"/> stays unquantised: as transformers, when any skip entry occurs in its
        /// dotted name; the output head is never quantised here.
        /// </summary>
        public bool Skips(string fullName) =>
            fullName == DecoderForCausalLM.OutputHeadName || (SkipModules?.Any(s => fullName.Contains(s, StringComparison.Ordinal)) ?? false);

        /// <summary>Reads the block at <paramref name="value"/> of config <paramref name="path"/>; <paramref name="fieldsRead"/> collects the fields consulted.</summary>
        internal static BnbQuantizationConfig Read(JsonElement value, string path, out IReadOnlySet<string> fieldsRead)
        {
            var f = new ConfigFields(value, path + " quantization_config");
            fieldsRead = f.Read;
            if (value.ValueKind != JsonValueKind.Object) throw f.Bad("quantization_config", "is not an object");
            string? method = f.String("quant_method");
            bool four = f.Flag("load_in_4bit", false) | f.Flag("_load_in_4bit", false);     // | : both names are read
            bool eight = f.Flag("load_in_8bit", false) | f.Flag("_load_in_8bit", false);
            if (method is not null && method != "bitsandbytes")
                throw f.Unsupported("quant_method", $"'{method}'",
                    (OtherMethods.Contains(method.ToLowerInvariant()) ? "" : "an unknown quantisation method; ") + "bitsandbytes nf4 and int8 are implemented. " + QuantizationOptions.NotImplemented);
            if (four == eight)
                throw f.Unsupported("load_in_4bit", four ? "true together with load_in_8bit" : "false as is load_in_8bit",
                    "a bitsandbytes checkpoint is 4-bit or 8-bit: exactly one of load_in_4bit and load_in_8bit is true");
            string quantType = f.String("bnb_4bit_quant_type") ?? "nf4";
            if (quantType != "nf4")
                throw f.Unsupported("bnb_4bit_quant_type", $"'{quantType}'", "only nf4 is implemented. " + QuantizationOptions.NotImplemented);
            string storage = f.String("bnb_4bit_quant_storage") ?? "uint8";
            if (storage != "uint8")
                throw f.Unsupported("bnb_4bit_quant_storage", $"'{storage}'", "4-bit weights packed in uint8 are implemented");
            f.RefuseUnless("llm_int8_has_fp16_weight", ConfigFields.IsFalse, "int8 weights stored quantised (false) are implemented; fp16 main weights are not");
            f.RefuseUnless("llm_int8_enable_fp32_cpu_offload", ConfigFields.IsFalse, "offloading modules to the CPU in float32 is not implemented (false)");
            string? compute = f.String("bnb_4bit_compute_dtype");
            return new BnbQuantizationConfig
            {
                Scheme = four ? QuantizationScheme.Nf4 : QuantizationScheme.Int8,
                ComputeDType = compute is null ? ScalarType.Float32 : ModelDType.Parse(compute, "quantization_config.bnb_4bit_compute_dtype"),
                DoubleQuant = f.Flag("bnb_4bit_use_double_quant", false),
                SkipModules = f.Strings("llm_int8_skip_modules"),
                Int8Threshold = f.Num("llm_int8_threshold", 6.0),
            };
        }

        /// <summary>The block as transformers writes it for a checkpoint quantised with <paramref name="options"/> computing in <paramref name="computeDType"/>.</summary>
        public static JsonObject ToJson(QuantizationOptions options, ScalarType computeDType)
        {
            bool four = options.Scheme == QuantizationScheme.Nf4;
            return new JsonObject
            {
                ["_load_in_4bit"] = four,
                ["_load_in_8bit"] = !four,
                ["bnb_4bit_compute_dtype"] = ModelDType.Name(computeDType),
                ["bnb_4bit_quant_storage"] = "uint8",
                ["bnb_4bit_quant_type"] = "nf4",
                ["bnb_4bit_use_double_quant"] = options.DoubleQuant,
                ["llm_int8_enable_fp32_cpu_offload"] = false,
                ["llm_int8_has_fp16_weight"] = false,
                ["llm_int8_skip_modules"] = null,
                ["llm_int8_threshold"] = 6.0,
                ["load_in_4bit"] = four,
                ["load_in_8bit"] = !four,
                ["quant_method"] = "bitsandbytes",
            };
        }
    }
}
