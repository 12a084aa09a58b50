using System;
using System.IO;
using System.Linq;
using GraLoRA.Models;
using GraLoRA.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>Model folders for the llama.cpp checks, and the error measure they report.</summary>
    internal static class GgufFixtures
    {
        public static string Folder(string relative) => Path.Combine(TestEnvironment.Fixtures, relative);

        /// <summary>
        /// A copy of shared/fixtures/models/<paramref name="arch"/> (transformers' tiny checkpoint) with a byte-level
        /// tokenizer of exactly its 256 tokens and no special tokens, so it can be exported to GGUF.
        /// </summary>
        public static string ReferenceModelWithTokenizer(TempDirectory dir, string arch)
        {
            string folder = dir.File(arch);
            Directory.CreateDirectory(folder);
            foreach (var file in new[] { "config.json", "model.safetensors", "generation_config.json" })
                if (File.Exists(Path.Combine(Folder("models/" + arch), file)))
                    File.Copy(Path.Combine(Folder("models/" + arch), file), Path.Combine(folder, file));
            ByteLevelTokenizerFactory.Write(folder, new ByteLevelTokenizerOptions
            {
                SpecialTokens = Array.Empty<string>(), BosToken = null, EosToken = null, PadToken = null, AddBosToken = false,
            });
            return folder;
        }

        /// <summary>max |got − want| / max |want| over every position and vocabulary entry.</summary>
        public static double RelativeError(float[][] got, Tensor want)
        {
            var expected = want.to(ScalarType.Float32).cpu();
            double diff = 0, scale = 0;
            for (int p = 0; p < got.Length; p++)
            {
                var row = expected[p].data<float>().ToArray();
                if (row.Length != got[p].Length) throw new InvalidOperationException($"position {p}: {got[p].Length} logits, expected {row.Length}");
                for (int v = 0; v < row.Length; v++)
                {
                    diff = Math.Max(diff, Math.Abs(got[p][v] - row[v]));
                    scale = Math.Max(scale, Math.Abs(row[v]));
                }
            }
            return diff / scale;
        }

        public static int[] Row(Tensor ids, int row) => ids[row].data<long>().ToArray().Select(v => (int)v).ToArray();
    }
}
