using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using GraLoRA.Models;
using GraLoRA.Quantization;
using Xunit;

namespace GraLoRA.Tests.Quantization
{
    /// <summary>
    /// Walks the "quantization_config fields" table of docs/quantization.md against the reader, as ConfigFieldAuditTests
    /// does for config.json: every field read is listed, every listed field is read, every refusal refuses.
    /// </summary>
    public class QuantizationConfigTests
    {
        sealed record Row(string Field, string Status, string RefusedWhen);

        static IReadOnlyList<Row> Table()
        {
            var lines = File.ReadAllLines(Path.Combine(TestEnvironment.RepoRoot, "docs", "quantization.md"));
            int start = Array.FindIndex(lines, l => l.Trim() == "### quantization_config fields");
            Assert.True(start >= 0, "docs/quantization.md lacks '### quantization_config fields'");
            return lines.Skip(start + 1).TakeWhile(l => !l.StartsWith("#", StringComparison.Ordinal))
                .Where(l => l.StartsWith("| ", StringComparison.Ordinal) && !l.StartsWith("| field", StringComparison.Ordinal) && !l.StartsWith("| ---", StringComparison.Ordinal))
                .Select(l => l.Split('|').Skip(1).Select(c => c.Trim()).ToArray())
                .Select(c => new Row(c[0], c[1], c[2])).ToList();
        }

        static JsonObject Block(string fixture = "llama_nf4") =>
            JsonNode.Parse(File.ReadAllText(Path.Combine(BnbCheckpointTests.Folder(fixture), "config.json")))!["quantization_config"]!.AsObject();

        static BnbQuantizationConfig Read(JsonObject block, out IReadOnlySet<string> read)
        {
            using var doc = JsonDocument.Parse(block.ToJsonString());
            var config = BnbQuantizationConfig.Read(doc.RootElement.Clone(), "config.json", out read);
            return config;
        }

        [Fact]
        public void EveryFieldReadIsListedAndEveryListedFieldIsRead()
        {
            var rows = Table();
            Assert.All(rows, r => Assert.Contains(r.Status, new[] { "implemented", "refused" }));
            Read(Block(), out var read);
            var listed = rows.Select(r => r.Field).ToHashSet();
            Assert.DoesNotContain(read, f => !listed.Contains(f));
            Assert.DoesNotContain(listed, f => !read.Contains(f));
        }

        // For each refusal of the table: an edit of the fixture's block that meets it, and the value the message shows.
        static readonly Dictionary<string, (Action<JsonObject> Edit, string Shown)> Offending = new()
        {
            ["quant_method"] = (b => b["quant_method"] = "awq", "awq"),
            ["load_in_4bit"] = (b => b["load_in_8bit"] = true, "true"),
            ["bnb_4bit_quant_type"] = (b => b["bnb_4bit_quant_type"] = "fp4", "fp4"),
            ["bnb_4bit_quant_storage"] = (b => b["bnb_4bit_quant_storage"] = "bfloat16", "bfloat16"),
            ["llm_int8_has_fp16_weight"] = (b => b["llm_int8_has_fp16_weight"] = true, "true"),
            ["llm_int8_enable_fp32_cpu_offload"] = (b => b["llm_int8_enable_fp32_cpu_offload"] = true, "true"),
        };

        public static TheoryData<string> RefusedFields() { var d = new TheoryData<string>(); foreach (var r in Table().Where(r => r.RefusedWhen != "—")) d.Add(r.Field); return d; }

        [Theory, MemberData(nameof(RefusedFields))]
        public void EachRefusalNamesFieldAndValue(string field)
        {
            Assert.True(Offending.ContainsKey(field), $"docs/quantization.md refuses {field}, but this test has no offending value for it");
            var block = Block();
            Offending[field].Edit(block);
            var ex = Assert.Throws<GraloraException>(() => Read(block, out _));
            Assert.Equal("UnsupportedConfig", ex.ErrorId);
            Assert.Contains($"'{field}'", ex.Message);
            Assert.Contains(Offending[field].Shown, ex.Message);
        }

        [Theory]
        [InlineData("gptq")]
        [InlineData("awq")]
        [InlineData("fp8")]
        [InlineData("hqq")]
        public void OtherQuantisationMethodsAreRefusedNamingGptqAwqAndFp8(string method)
        {
            var block = new JsonObject { ["quant_method"] = method, ["bits"] = 4 };
            var ex = Assert.Throws<GraloraException>(() => Read(block, out _));
            Assert.Equal("UnsupportedConfig", ex.ErrorId);
            foreach (var named in new[] { method, "GPTQ", "AWQ", "FP8" }) Assert.Contains(named, ex.Message);
        }

        [Fact]
        public void TheFixturesBlocksReadAsTransformersWroteThem()
        {
            var nf4 = Read(Block(), out _);
            Assert.Equal((QuantizationScheme.Nf4, TorchSharp.torch.ScalarType.Float32, false, 6.0), (nf4.Scheme, nf4.ComputeDType, nf4.DoubleQuant, nf4.Int8Threshold));
            Assert.True(Read(Block("llama_nf4_dq"), out _).DoubleQuant);
            Assert.Equal(QuantizationScheme.Int8, Read(Block("llama_int8"), out _).Scheme);
            var skipping = Block();
            skipping["llm_int8_skip_modules"] = new JsonArray("lm_head", "mlp.down_proj");
            skipping.Remove("quant_method");                                             // older configs: load_in_4bit says it
            skipping["bnb_4bit_compute_dtype"] = "bfloat16";
            var config = Read(skipping, out _);
            Assert.True(config.Skips("model.layers.1.mlp.down_proj"));
            Assert.False(config.Skips("model.layers.1.mlp.up_proj"));
            Assert.True(config.Skips("lm_head"));
            Assert.Equal(TorchSharp.torch.ScalarType.BFloat16, config.ComputeDType);
        }

        [Fact]
        public void WhatWeWriteReadsBackToTheSameSettings()
        {
            foreach (var options in new[] { new QuantizationOptions(), new QuantizationOptions { DoubleQuant = true }, new QuantizationOptions { Scheme = QuantizationScheme.Int8 } })
            {
                var config = Read(BnbQuantizationConfig.ToJson(options, TorchSharp.torch.ScalarType.BFloat16), out _);
                Assert.Equal((options.Scheme, options.DoubleQuant, TorchSharp.torch.ScalarType.BFloat16), (config.Scheme, config.DoubleQuant, config.ComputeDType));
            }
        }
    }
}
