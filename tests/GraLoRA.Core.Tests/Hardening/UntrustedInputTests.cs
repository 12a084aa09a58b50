using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using GraLoRA.Adapters;
using GraLoRA.Generation;
using GraLoRA.IO;
using GraLoRA.Models;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>Files from strangers: malformed safetensors, configs that point outside their folder, pickles, mistyped JSON.</summary>
    public sealed class UntrustedInputTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        /// <summary>A safetensors file from a header text and a data length (zero bytes), or an explicit header length.</summary>
        internal static byte[] Safetensors(string header, int dataBytes = 0, long? headerLength = null)
        {
            var json = Encoding.UTF8.GetBytes(header);
            var bytes = new byte[8 + json.Length + dataBytes];
            BitConverter.GetBytes(headerLength ?? json.Length).CopyTo(bytes, 0);
            json.CopyTo(bytes, 8);
            return bytes;
        }

        string WriteFile(string name, byte[] bytes)
        {
            string path = tmp.File(name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, bytes);
            return path;
        }

        public static TheoryData<string, string, int, long?, string> MalformedSafetensors => new()
        {
            // name, header, data bytes, explicit header length, expected message part
            { "absurd header length", "{}", 0, long.MaxValue / 2, "header length" },
            { "negative header length", "{}", 0, -8, "header length" },
            { "header beyond file", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 1_000_000, "header length" },
            { "header above 100 MB", "{}", 0, 200_000_000, "header length" },
            { "non-object header", "[1,2,3]", 0, null, "not a JSON object" },
            { "string header", "\"x\"", 0, null, "not a JSON object" },
            { "not JSON", "{\"a\":", 0, null, "not valid JSON" },
            { "offsets beyond data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, null, "outside the 4 data bytes" },
            { "negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, null, "data offsets" },
            { "reversed offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, null, "data offsets" },
            { "string offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}", 4, null, "data offsets" },
            { "overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, null, "overlap" },
            { "unknown dtype", "{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16, null, "unsupported dtype 'F128'" },
            { "dtype not a string", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, null, "no dtype" },
            { "shape/bytes mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, null, "needs 12" },
            { "negative dimension", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, null, "bad dimension" },
            { "string dimension", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, null, "bad dimension" },
            { "overflowing shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,4]}}", 4, null, "overflowing shape" },
            { "huge shape, few bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[100000,100000],\"data_offsets\":[0,4]}}", 4, null, "needs 40000000000" },
            { "duplicate tensor", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, null, "'a' appears twice" },
            { "duplicate field", "{\"a\":{\"dtype\":\"U8\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, null, "field 'dtype' twice" },
            { "duplicate metadata", "{\"__metadata__\":{\"format\":\"pt\"},\"__metadata__\":{\"format\":\"np\"}}", 0, null, "__metadata__ appears twice" },
            { "duplicate metadata key", "{\"__metadata__\":{\"format\":\"pt\",\"format\":\"np\"}}", 0, null, "'format' appears twice" },
            { "metadata not an object", "{\"__metadata__\":[1]}", 0, null, "__metadata__ is not an object" },
            { "metadata value not a string", "{\"__metadata__\":{\"n\":1}}", 0, null, "'n' is not a string" },
            { "entry not an object", "{\"a\":[1]}", 0, null, "'a' is not an object" },
            { "too deep", "{\"__metadata__\":{\"a\":" + new string('[', 20) + new string(']', 20) + "}}", 0, null, "not valid JSON" },
        };

        [Theory, MemberData(nameof(MalformedSafetensors))]
        public void MalformedSafetensorsAreRefusedWithAClearErrorAndNoLargeAllocation(string name, string header, int dataBytes, long? headerLength, string expected)
        {
            string path = WriteFile("bad.safetensors", Safetensors(header, dataBytes, headerLength));
            long before = GC.GetAllocatedBytesForCurrentThread();
            var ex = Assert.Throws<GraloraException>(() => GraLoRA.IO.Safetensors.Read(path));
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal("InvalidSafetensors", ex.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidData, ex.Kind);
            Assert.Contains(expected, ex.Message);
            Assert.Contains(path, ex.Message);
            // Nothing sized by the header's claims: a few KB of parsing at most, never the claimed gigabytes.
            Assert.True(allocated < 1 << 20, $"{name}: {allocated} bytes allocated");
        }

        [Fact]
        public void InvalidUtf8InTheHeaderIsRefused()
        {
            var bytes = Safetensors("{\"a\xFF\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
            // Replace the UTF-8 encoding of U+00FF with a lone 0xFF byte.
            var list = bytes.ToList();
            int at = list.IndexOf(0xC3);
            list.RemoveAt(at);
            list[at] = 0xFF;
            var raw = list.ToArray();
            BitConverter.GetBytes((long)(raw.Length - 9)).CopyTo(raw, 0);
            string path = WriteFile("utf8.safetensors", raw);
            var ex = Assert.Throws<GraloraException>(() => GraLoRA.IO.Safetensors.ReadHeader(path));
            Assert.Equal("InvalidSafetensors", ex.ErrorId);
        }

        [Fact]
        public void AValidFileStillReads()
        {
            string path = WriteFile("ok.safetensors", Safetensors("{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[2,2]}}", 2));
            var tensors = GraLoRA.IO.Safetensors.Read(path);
            Assert.Equal(new long[] { 2 }, tensors["a"].shape);
            Assert.Equal(new long[] { 0 }, tensors["e"].shape);
            foreach (var t in tensors.Values) t.Dispose();
        }

        // ---- pickles ----

        [Theory]
        [InlineData(new byte[] { 0x80, 0x02, 0x7D, 0x71 }, "model.bin")]          // pickle protocol 2 (legacy torch.save)
        [InlineData(new byte[] { 0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0 }, "model.pt")]  // torch.save zip archive
        public void PickleFilesAreRefusedNeverUnpickled(byte[] head, string name)
        {
            string path = WriteFile(name, head.Concat(new byte[64]).ToArray());
            var ex = Assert.Throws<GraloraException>(() => GraLoRA.IO.Safetensors.Read(path));
            Assert.Equal("PickleNotSupported", ex.ErrorId);
            Assert.Contains("arbitrary code", ex.Message);
            Assert.Contains("safe_serialization=True", ex.Message);
            Assert.Contains("convert.py", ex.Message);
        }

        [Theory]
        [InlineData(0x0280)]   // length bytes 80 02 …: a pickle's first two bytes, yet a valid safetensors file
        [InlineData(0x0480)]
        public void ASafetensorsFileWhoseLengthLooksLikeAPickleStillReads(int headerLength)
        {
            string json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
            string path = WriteFile("pickle-like.safetensors", Safetensors(json.PadRight(headerLength), 1));
            var tensors = GraLoRA.IO.Safetensors.Read(path);
            Assert.Equal(new long[] { 1 }, tensors["a"].shape);
            foreach (var t in tensors.Values) t.Dispose();
        }

        [Fact]
        public void AModelFolderWithOnlyPytorchModelBinIsRefusedWithTheConversionRecipe()
        {
            string folder = TinyModelFactory.Save(tmp.File("tiny"), new TinyModelOptions { Seed = 1 });
            File.Move(Path.Combine(folder, "model.safetensors"), Path.Combine(folder, "pytorch_model.bin"));
            var ex = Assert.Throws<GraloraException>(() => BaseModel.Load(folder));
            Assert.Equal("PickleNotSupported", ex.ErrorId);
            Assert.Contains("pytorch_model.bin", ex.Message);
            Assert.Contains("save_pretrained", ex.Message);
        }

        [Fact]
        public void AnAdapterFolderWithOnlyAdapterModelBinIsRefused()
        {
            string folder = Directory.CreateDirectory(tmp.File("adapter")).FullName;
            File.WriteAllText(Path.Combine(folder, "adapter_config.json"), "{\"peft_type\":\"LORA\",\"r\":4,\"target_modules\":[\"q_proj\"]}");
            File.WriteAllBytes(Path.Combine(folder, "adapter_model.bin"), new byte[] { 0x80, 0x02, 0x7D });
            using var model = BaseModel.Load(TinyModelFactory.Save(tmp.File("tiny"), new TinyModelOptions { Seed = 1 }));
            var ex = Assert.Throws<GraloraException>(() => model.LoadAdapter(folder, "x"));
            Assert.Equal("PickleNotSupported", ex.ErrorId);
            Assert.Contains("adapter_model.bin", ex.Message);
        }

        // ---- paths that leave their folder ----

        string ShardedFolder(string name)
        {
            string folder = TinyModelFactory.Save(tmp.File(name), new TinyModelOptions { Seed = 1 });
            File.Move(Path.Combine(folder, "model.safetensors"), Path.Combine(folder, "model-00001-of-00001.safetensors"));
            return folder;
        }

        static void WriteIndex(string folder, string shard) =>
            File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"),
                "{\"metadata\":{},\"weight_map\":{\"model.embed_tokens.weight\":" + System.Text.Json.JsonSerializer.Serialize(shard) + "}}");

        [Theory]
        [InlineData("../outside.safetensors", "'..'")]
        [InlineData("sub/../../outside.safetensors", "'..'")]
        [InlineData("/etc/passwd", "absolute path")]
        [InlineData("", "not a file name")]
        public void ShardIndexCannotPointOutsideTheFolder(string shard, string why)
        {
            string folder = ShardedFolder("m");
            WriteIndex(folder, shard);
            var ex = Assert.Throws<GraloraException>(() => CheckpointLoader.WeightFiles(folder));
            Assert.Equal("ShardOutsideFolder", ex.ErrorId);
            Assert.Contains(why, ex.Message);
        }

        [Fact]
        public void ShardIndexCannotEscapeThroughASymlink()
        {
            string folder = ShardedFolder("m");
            string elsewhere = ShardedFolder("elsewhere");
            // A shard name inside the folder that is a link to a file outside it, and a sub-folder that is a link outside.
            File.CreateSymbolicLink(Path.Combine(folder, "linked.safetensors"), Path.Combine(elsewhere, "model-00001-of-00001.safetensors"));
            Directory.CreateSymbolicLink(Path.Combine(folder, "sub"), elsewhere);
            foreach (var shard in new[] { "linked.safetensors", "sub/model-00001-of-00001.safetensors" })
            {
                WriteIndex(folder, shard);
                var ex = Assert.Throws<GraloraException>(() => CheckpointLoader.WeightFiles(folder));
                Assert.Equal("ShardOutsideFolder", ex.ErrorId);
                Assert.Contains("symbolic link", ex.Message);
            }
            // A link that stays inside the folder is fine.
            File.CreateSymbolicLink(Path.Combine(folder, "inside.safetensors"), "model-00001-of-00001.safetensors");
            WriteIndex(folder, "inside.safetensors");
            Assert.Single(CheckpointLoader.WeightFiles(folder));
        }

        [Fact]
        public void HubCacheSnapshotLinksIntoItsBlobsAreAccepted()
        {
            // models--org--name/snapshots/<commit>/model.safetensors → ../../blobs/<hash>, as huggingface_hub lays it out.
            string repo = tmp.File("models--org--name");
            string snapshot = Directory.CreateDirectory(Path.Combine(repo, "snapshots", "abc123")).FullName;
            string blobs = Directory.CreateDirectory(Path.Combine(repo, "blobs")).FullName;
            string source = TinyModelFactory.Save(tmp.File("src"), new TinyModelOptions { Seed = 1 });
            foreach (var file in Directory.GetFiles(source))
            {
                string blob = Path.Combine(blobs, Guid.NewGuid().ToString("N"));
                File.Copy(file, blob);
                File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
            }
            using var model = BaseModel.Load(snapshot);
            Assert.NotNull(model.Module);
        }

        [Fact]
        public void SingleWeightsFileOrConfigLinkedOutsideIsRefused()
        {
            string folder = TinyModelFactory.Save(tmp.File("m"), new TinyModelOptions { Seed = 1 });
            string elsewhere = TinyModelFactory.Save(tmp.File("elsewhere"), new TinyModelOptions { Seed = 1 });
            File.Delete(Path.Combine(folder, "model.safetensors"));
            File.CreateSymbolicLink(Path.Combine(folder, "model.safetensors"), Path.Combine(elsewhere, "model.safetensors"));
            Assert.Equal("WeightsOutsideFolder", Assert.Throws<GraloraException>(() => CheckpointLoader.WeightFiles(folder)).ErrorId);
            File.Delete(Path.Combine(folder, "config.json"));
            File.CreateSymbolicLink(Path.Combine(folder, "config.json"), Path.Combine(elsewhere, "config.json"));
            Assert.Equal("ConfigOutsideFolder", Assert.Throws<GraloraException>(() => BaseModel.Load(folder)).ErrorId);
        }

        [Fact]
        public void AdapterFilesLinkedOutsideTheirFolderAreRefused()
        {
            using var model = BaseModel.Load(TinyModelFactory.Save(tmp.File("tiny"), new TinyModelOptions { Seed = 1 }));
            model.AddAdapter("a", new AdapterConfig { Rank = 4, K = 2, TargetModules = new[] { "q_proj" } });
            string saved = model.SaveAdapter("a", tmp.File("saved"));
            string evil = Directory.CreateDirectory(tmp.File("evil")).FullName;
            File.Copy(Path.Combine(saved, "adapter_config.json"), Path.Combine(evil, "adapter_config.json"));
            File.CreateSymbolicLink(Path.Combine(evil, "adapter_model.safetensors"), Path.Combine(saved, "adapter_model.safetensors"));
            var ex = Assert.Throws<GraloraException>(() => model.LoadAdapter(evil, "b"));
            Assert.Equal("AdapterFileOutsideFolder", ex.ErrorId);
            Assert.DoesNotContain("b", model.Adapters.Names);

            string evil2 = Directory.CreateDirectory(tmp.File("evil2")).FullName;
            File.CreateSymbolicLink(Path.Combine(evil2, "adapter_config.json"), Path.Combine(saved, "adapter_config.json"));
            Assert.Equal("AdapterFileOutsideFolder", Assert.Throws<GraloraException>(() => PeftAdapterFormat.ReadConfig(evil2)).ErrorId);
        }

        // ---- mistyped JSON configs name the field ----

        public static TheoryData<string, string> BadAdapterConfigs => new()
        {
            { "[1,2]", "not an object" },
            { "{\"peft_type\": 3}", "peft_type" },
            { "{\"r\": 4}", "peft_type is missing" },
            { "{\"peft_type\":\"LORA\",\"r\":\"eight\"}", "r is not a whole number" },
            { "{\"peft_type\":\"LORA\",\"r\":4.5}", "r is not a whole number" },
            { "{\"peft_type\":\"LORA\",\"lora_alpha\":\"x\"}", "lora_alpha is not a number" },
            { "{\"peft_type\":\"GRALORA\",\"gralora_k\":[2]}", "gralora_k is not a whole number" },
            { "{\"peft_type\":\"LORA\",\"target_modules\":[\"q_proj\",7]}", "target_modules has a non-string entry" },
            { "{\"peft_type\":\"LORA\",\"target_modules\":7}", "target_modules is neither" },
            { "{\"peft_type\":\"LORA\",\"layers_to_transform\":[\"0\"]}", "layers_to_transform is not a whole number" },
            { "{\"peft_type\":\"LORA\",\"layers_to_transform\":{}}", "layers_to_transform is neither" },
            { "{\"peft_type\":\"LORA\",\"rank_pattern\":{\"q_proj\":\"4\"}}", "rank_pattern.q_proj is not a whole number" },
            { "{\"peft_type\":\"LORA\",\"rank_pattern\":[1]}", "rank_pattern is not an object" },
            { "{\"peft_type\":\"LORA\",\"bias\":false}", "bias is a boolean, not a string" },
            { "{\"peft_type\":\"LORA\",\"r\":4,\"r\":8}", "r appears twice" },
            { "{\"peft_type\":\"LORA\"", "not valid JSON" },
        };

        [Theory, MemberData(nameof(BadAdapterConfigs))]
        public void AdapterConfigWithWrongTypesNamesTheField(string json, string expected)
        {
            string folder = Directory.CreateDirectory(tmp.File("cfg")).FullName;
            File.WriteAllText(Path.Combine(folder, "adapter_config.json"), json);
            var ex = Assert.Throws<GraloraException>(() => PeftAdapterFormat.ReadConfig(folder));
            Assert.Equal("InvalidAdapterConfig", ex.ErrorId);
            Assert.Contains(expected, ex.Message);
        }

        const string ValidModelConfig = "{\"model_type\":\"llama\",\"vocab_size\":32,\"hidden_size\":64,\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4}";

        public static TheoryData<string, string> BadModelConfigs => new()
        {
            { "[]", "not an object" },
            { "{\"hidden_size\":\"64\"}", "'hidden_size' is not a whole number" },
            { "{\"vocab_size\":null}", "'vocab_size' is missing" },
            { "{\"model_type\":7}", "'model_type' is a number, not a string" },
            { "{\"rope_scaling\":{\"rope_type\":5}}", "'rope_scaling.rope_type' is a number, not a string" },
            { "{\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":\"8\"}}", "'rope_scaling.factor' is not a number" },
            { "{\"tie_word_embeddings\":\"yes\"}", "'tie_word_embeddings' is not true or false" },
            { "{\"eos_token_id\":[1,\"2\"]}", "'eos_token_id' is not a whole number" },
            { "{\"eos_token_id\":1.5}", "'eos_token_id' is not a whole number" },
            { "{\"bos_token_id\":\"1\"}", "'bos_token_id' is not a whole number" },
            { "{\"torch_dtype\":32}", "'torch_dtype' is a number, not a string" },
            { "{\"rms_norm_eps\":\"tiny\"}", "'rms_norm_eps' is not a number" },
            { "{\"num_attention_heads\":0}", "'num_attention_heads' is 0; it must be a positive whole number" },
            { "{\"num_hidden_layers\":-1}", "'num_hidden_layers' is -1" },
        };

        [Theory, MemberData(nameof(BadModelConfigs))]
        public void ModelConfigWithWrongTypesNamesTheField(string patch, string expected)
        {
            string path = tmp.File("config.json");
            string json = patch;
            if (patch.StartsWith('{'))
            {
                // The valid config with the patch's fields replacing its own.
                var node = System.Text.Json.Nodes.JsonNode.Parse(ValidModelConfig)!.AsObject();
                foreach (var (key, value) in System.Text.Json.Nodes.JsonNode.Parse(patch)!.AsObject().ToList()) node[key] = value?.DeepClone();
                json = node.ToJsonString();
            }
            File.WriteAllText(path, json);
            var ex = Assert.Throws<GraloraException>(() => DecoderConfig.Load(path));
            Assert.Equal("InvalidModelConfig", ex.ErrorId);
            Assert.Contains(expected, ex.Message);
        }

        [Fact]
        public void DuplicateModelConfigFieldsAreRefused()
        {
            string path = tmp.File("config.json");
            File.WriteAllText(path, ValidModelConfig.TrimEnd('}') + ",\"model_type\":\"qwen2\"}");
            var ex = Assert.Throws<GraloraException>(() => DecoderConfig.Load(path));
            Assert.Contains("'model_type' appears twice", ex.Message);
            File.WriteAllText(path, ValidModelConfig);
            Assert.Equal(64, DecoderConfig.Load(path).HiddenSize);
        }

        [Theory]
        [InlineData("{\"top_k\":\"50\"}", "'top_k' is not a number")]
        [InlineData("{\"top_k\":5.5}", "'top_k' is not a whole number")]
        [InlineData("{\"do_sample\":1}", "'do_sample' is not true or false")]
        [InlineData("{\"eos_token_id\":[\"2\"]}", "'eos_token_id' is not a whole number")]
        [InlineData("[]", "not an object")]
        public void GenerationConfigWithWrongTypesNamesTheField(string json, string expected)
        {
            string path = tmp.File("generation_config.json");
            File.WriteAllText(path, json);
            var config = new DecoderConfig { ModelType = "llama", VocabSize = 10, HiddenSize = 8, IntermediateSize = 8, NumLayers = 1, NumHeads = 2, NumKeyValueHeads = 2, HeadDim = 4 };
            var ex = Assert.Throws<GraloraException>(() => GenerationConfig.Load(path, config));
            Assert.Equal("InvalidGenerationConfig", ex.ErrorId);
            Assert.Contains(expected, ex.Message);
        }


        // ---- How deep the JSON readers of a model folder go (config, generation config, adapter config, shard index,
        // tokenizer.json, tokenizer_config.json): each refuses deeper nesting with its own error id, so a hostile file
        // cannot overflow a recursive walker. config-like files: 64 levels; tokenizer files: 256 in our reader, and the
        // Rust tokenizers library (serde_json) stops at 128 when it reads tokenizer.json itself.

        static string Nested(int depth, string inner = "1") => new string('[', depth) + inner + new string(']', depth);

        public static TheoryData<string, int, string> DeepJson() => new()
        {
            { "config.json", 65, "InvalidModelConfig" },
            { "generation_config.json", 65, "InvalidGenerationConfig" },
            { "adapter_config.json", 65, "InvalidAdapterConfig" },
            { "model.safetensors.index.json", 65, "InvalidShardIndex" },
            { "tokenizer_config.json", 257, "InvalidTokenizer" },
            { "tokenizer.json", 257, "InvalidTokenizer" },
            // Within our reader's 256 but past serde_json's 128: the native library refuses it, as a template error id too.
            { "tokenizer.json", 200, "InvalidTokenizer" },
            { "config.json (encoder)", 65, "InvalidModelConfig" },
        };

        [Theory]
        [MemberData(nameof(DeepJson))]
        public void JsonReadersRefuseDeepNestingWithTheirErrorIds(string file, int depth, string errorId)
        {
            string folder = Directory.CreateDirectory(tmp.File(file.Replace(' ', '_') + depth)).FullName;
            Text.ByteLevelTokenizerFactory.Write(folder, new Text.ByteLevelTokenizerOptions { ChatTemplate = TinyModelFactory.ChatTemplate });
            string deep = Nested(depth);
            Action read;
            switch (file)
            {
                case "config.json":
                    File.WriteAllText(Path.Combine(folder, file), "{\"model_type\": \"llama\", \"x\": " + deep + "}");
                    read = () => DecoderConfig.Load(Path.Combine(folder, file));
                    break;
                case "config.json (encoder)":
                    File.WriteAllText(Path.Combine(folder, "config.json"), "{\"model_type\": \"bert\", \"x\": " + deep + "}");
                    read = () => EncoderConfig.Load(Path.Combine(folder, "config.json"));
                    break;
                case "generation_config.json":
                    File.WriteAllText(Path.Combine(folder, file), "{\"x\": " + deep + "}");
                    read = () => GenerationConfig.Load(Path.Combine(folder, file), new DecoderConfig { VocabSize = 8, HiddenSize = 8, IntermediateSize = 8, NumLayers = 1, NumHeads = 2, NumKeyValueHeads = 2, HeadDim = 4 });
                    break;
                case "adapter_config.json":
                    File.WriteAllText(Path.Combine(folder, file), "{\"peft_type\": \"GRALORA\", \"x\": " + deep + "}");
                    read = () => PeftAdapterFormat.ReadConfig(folder);
                    break;
                case "model.safetensors.index.json":
                    File.WriteAllText(Path.Combine(folder, file), "{\"weight_map\": {}, \"x\": " + deep + "}");
                    read = () => CheckpointLoader.WeightFiles(folder);
                    break;
                case "tokenizer_config.json":
                    File.WriteAllText(Path.Combine(folder, file), "{\"x\": " + deep + "}");
                    read = () => Text.HfTokenizer.Load(folder).Dispose();
                    break;
                default:
                    var tokenizer = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(folder, file)))!.AsObject();
                    tokenizer["x"] = System.Text.Json.Nodes.JsonNode.Parse(deep, documentOptions: new System.Text.Json.JsonDocumentOptions { MaxDepth = 1000 });
                    File.WriteAllText(Path.Combine(folder, file), tokenizer.ToJsonString(new System.Text.Json.JsonSerializerOptions { MaxDepth = 1000 }));
                    read = () => Text.HfTokenizer.Load(folder).Dispose();
                    break;
            }
            var e = Assert.Throws<GraloraException>(read);
            Assert.Equal(errorId, e.ErrorId);
        }
    }
}
