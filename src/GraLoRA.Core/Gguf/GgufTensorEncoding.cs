using System;
using System.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Gguf
{
    /// <summary>Turns tensors into the bytes of a <see cref="GgmlType"/>, and back (for reading files in tests and checks).</summary>
    public static class GgufTensorEncoding
    {
        const int ChunkValues = 1 << 20;

        /// <summary>Writes <paramref name="value"/> (any device and dtype, row-major) as <paramref name="type"/>.</summary>
        public static void Write(BinaryWriter output, Tensor value, GgmlType type)
        {
            output.Flush();
            var stream = output.BaseStream;
            var flat = value.detach().reshape(-1);
            if (type != GgmlType.Q8_0)
            {
                var stored = type switch { GgmlType.F32 => ScalarType.Float32, GgmlType.F16 => ScalarType.Float16, _ => ScalarType.BFloat16 };
                using var cpu = flat.to(stored, CPU).contiguous();
                if (cpu.numel() > 0) cpu.WriteBytesToStream(stream, 1 << 20);
                return;
            }
            // Q8_0 as llama.cpp's reference quantizer: per block of 32, d = max|x| / 127 stored as float16, q = round(x / d)
            // (halves away from zero), the reciprocal taken from the float32 d.
            long count = flat.numel();
            var block = new byte[2 + GgufFormat.Q8BlockSize];
            for (long start = 0; start < count; start += ChunkValues)
            {
                long n = Math.Min(ChunkValues, count - start);
                using var chunk = flat.narrow(0, start, n).to(ScalarType.Float32, CPU).contiguous();
                float[] values = chunk.data<float>().ToArray();
                for (int b = 0; b < values.Length; b += GgufFormat.Q8BlockSize)
                {
                    float amax = 0;
                    for (int i = 0; i < GgufFormat.Q8BlockSize; i++) amax = Math.Max(amax, Math.Abs(values[b + i]));
                    float d = amax / 127f;
                    float id = d != 0 ? 1f / d : 0f;
                    BitConverter.TryWriteBytes(block.AsSpan(0, 2), (Half)d);
                    for (int i = 0; i < GgufFormat.Q8BlockSize; i++)
                        block[2 + i] = unchecked((byte)(sbyte)MathF.Round(values[b + i] * id, MidpointRounding.AwayFromZero));
                    stream.Write(block);
                }
            }
        }

        /// <summary>Decodes <paramref name="count"/> values of <paramref name="type"/> from <paramref name="bytes"/> into float32.</summary>
        public static float[] Decode(ReadOnlySpan<byte> bytes, GgmlType type, long count)
        {
            var result = new float[count];
            switch (type)
            {
                case GgmlType.F32:
                    for (long i = 0; i < count; i++) result[i] = BitConverter.ToSingle(bytes.Slice((int)(i * 4), 4));
                    break;
                case GgmlType.F16:
                    for (long i = 0; i < count; i++) result[i] = (float)BitConverter.ToHalf(bytes.Slice((int)(i * 2), 2));
                    break;
                case GgmlType.BF16:
                    for (long i = 0; i < count; i++) result[i] = BitConverter.Int32BitsToSingle(BitConverter.ToUInt16(bytes.Slice((int)(i * 2), 2)) << 16);
                    break;
                case GgmlType.Q8_0:
                    int blockBytes = 2 + GgufFormat.Q8BlockSize;
                    for (long b = 0; b < count / GgufFormat.Q8BlockSize; b++)
                    {
                        var block = bytes.Slice((int)(b * blockBytes), blockBytes);
                        float d = (float)BitConverter.ToHalf(block[..2]);
                        for (int i = 0; i < GgufFormat.Q8BlockSize; i++) result[b * GgufFormat.Q8BlockSize + i] = d * (sbyte)block[2 + i];
                    }
                    break;
                default: throw new ArgumentOutOfRangeException(nameof(type), type, "not a type this toolkit reads");
            }
            return result;
        }
    }
}
