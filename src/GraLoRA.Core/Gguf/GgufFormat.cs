using System;

namespace GraLoRA.Gguf
{
    /// <summary>Value types of GGUF metadata (gguf.h's gguf_type).</summary>
    public enum GgufValueType : uint
    {
        /// <summary>uint8.</summary>
        UInt8 = 0,
        /// <summary>int8.</summary>
        Int8 = 1,
        /// <summary>uint16.</summary>
        UInt16 = 2,
        /// <summary>int16.</summary>
        Int16 = 3,
        /// <summary>uint32.</summary>
        UInt32 = 4,
        /// <summary>int32.</summary>
        Int32 = 5,
        /// <summary>float32.</summary>
        Float32 = 6,
        /// <summary>bool (one byte).</summary>
        Bool = 7,
        /// <summary>UTF-8 string with a uint64 length.</summary>
        String = 8,
        /// <summary>Array: element type, uint64 count, elements.</summary>
        Array = 9,
        /// <summary>uint64.</summary>
        UInt64 = 10,
        /// <summary>int64.</summary>
        Int64 = 11,
        /// <summary>float64.</summary>
        Float64 = 12,
    }

    /// <summary>The tensor storage types this toolkit writes (ggml.h's ggml_type numbers).</summary>
    public enum GgmlType : uint
    {
        /// <summary>32-bit float.</summary>
        F32 = 0,
        /// <summary>IEEE half.</summary>
        F16 = 1,
        /// <summary>Blocks of 32 int8 values with one float16 scale (34 bytes per block).</summary>
        Q8_0 = 8,
        /// <summary>bfloat16.</summary>
        BF16 = 30,
    }

    /// <summary>Layout constants of GGUF version 3 and the size of each <see cref="GgmlType"/>.</summary>
    public static class GgufFormat
    {
        /// <summary>"GGUF" read as a little-endian uint32.</summary>
        public const uint Magic = 0x46554747;
        /// <summary>The version written.</summary>
        public const uint Version = 3;
        /// <summary>Default alignment of the tensor data (general.alignment when absent).</summary>
        public const int Alignment = 32;
        /// <summary>Values per Q8_0 block.</summary>
        public const int Q8BlockSize = 32;

        /// <summary>Bytes one row of <paramref name="count"/> values takes in <paramref name="type"/>.</summary>
        public static long RowBytes(GgmlType type, long count) => type switch
        {
            GgmlType.F32 => count * 4,
            GgmlType.F16 or GgmlType.BF16 => count * 2,
            GgmlType.Q8_0 => count % Q8BlockSize == 0 ? count / Q8BlockSize * (2 + Q8BlockSize)
                : throw new ArgumentException($"Q8_0 rows must hold a multiple of {Q8BlockSize} values, not {count}."),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a type this toolkit writes"),
        };

        /// <summary>llama.cpp's general.file_type (llama_ftype) for a model stored mostly in <paramref name="type"/>.</summary>
        public static uint FileType(GgmlType type) => type switch
        {
            GgmlType.F32 => 0,
            GgmlType.F16 => 1,
            GgmlType.Q8_0 => 7,
            GgmlType.BF16 => 32,
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a type this toolkit writes"),
        };

        /// <summary>Parses float32, float16, bfloat16 or q8_0 (the -DType names).</summary>
        public static GgmlType ParseType(string name) => name.ToLowerInvariant() switch
        {
            "float32" or "f32" => GgmlType.F32,
            "float16" or "f16" => GgmlType.F16,
            "bfloat16" or "bf16" => GgmlType.BF16,
            "q8_0" => GgmlType.Q8_0,
            _ => throw new GraloraException("InvalidGgufType", GraloraErrorKind.InvalidArgument,
                $"GGUF type '{name}' is not supported: use float32, float16, bfloat16 or q8_0.", name),
        };

        /// <summary>Rounds <paramref name="offset"/> up to a multiple of <paramref name="alignment"/>.</summary>
        public static long Align(long offset, int alignment = Alignment) => (offset + alignment - 1) / alignment * alignment;
    }
}
