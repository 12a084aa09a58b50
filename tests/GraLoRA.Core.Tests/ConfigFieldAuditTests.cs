using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using GraLoRA.Models;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Walks the audit table of docs/models.md ("Config fields per model type") against the loaders, so a config field
    /// cannot be forgotten: whatever the loaders read is listed, whatever is listed as implemented or refused is read,
    /// and every refusal condition is refused with UnsupportedConfig naming the field and its value.
    /// </summary>
    public class ConfigFieldAuditTests
    {
        static readonly string[] Decoders = { "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3" };
        static readonly string[] Encoders = { "bert", "roberta" };

        internal sealed record Row(string Field, string ModelType, string Status, string RefusedWhen);

        static IReadOnlyList<Row> Table()
        {
            var lines = File.ReadAllLines(Path.Combine(TestEnvironment.RepoRoot, "docs", "models.md"));
            int start = Array.FindIndex(lines, l => l.Trim() == "## Config fields per model type");
            Assert.True(start >= 0, "docs/models.md lacks the section '## Config fields per model type'");
            var rows = new List<Row>();
            foreach (var line in lines.Skip(start + 1).TakeWhile(l => !l.StartsWith("#", StringComparison.Ordinal)))   // the table, up to the next heading
            {
                if (!line.StartsWith("| ", StringComparison.Ordinal) || line.StartsWith("| field", StringComparison.Ordinal) || line.StartsWith("| ---", StringComparison.Ordinal)) continue;
                var cells = line.Split('|').Skip(1).Select(c => c.Trim()).ToArray();
                Assert.True(cells.Length >= 5, "malformed audit row: " + line);
                Assert.Contains(cells[2], new[] { "implemented", "irrelevant", "refused" });
                foreach (var group in cells[1].Split(',').Select(t => t.Trim()))
                    foreach (var type in group switch { "decoders" => Decoders, "encoders" => Encoders, _ => new[] { group } })
                        rows.Add(new Row(cells[0], type, cells[2], cells[3]));
            }
            return rows;
        }

        /// <summary>A config.json of each model type, from the shared and local fixtures.</summary>
        static string ConfigOf(string type) => type switch
        {
            "llama" or "mistral" or "qwen2" or "bert" or "roberta" => Path.Combine(TestEnvironment.Fixtures, "models", type, "config.json"),
            "qwen3" => Path.Combine(DecoderFamilyParityTests.Folder("qwen3_layer_types"), "config.json"),
            "phi3" => Path.Combine(DecoderFamilyParityTests.Folder("phi3_longrope"), "config.json"),
            _ => Path.Combine(DecoderFamilyParityTests.Folder(type), "config.json"),
        };

        static IReadOnlySet<string> FieldsRead(string path, string type)
        {
            IReadOnlySet<string> read;
            if (Encoders.Contains(type)) EncoderConfig.Load(path, out read);
            else DecoderConfigReader.Load(path, out read);
            return read;
        }

        public static TheoryData<string> Types() { var d = new TheoryData<string>(); foreach (var t in Decoders.Concat(Encoders)) d.Add(t); return d; }

        [Theory, MemberData(nameof(Types))]
        public void EveryFieldTheLoaderReadsIsInTheTableAndEveryListedFieldIsRead(string type)
        {
            var rows = Table().Where(r => r.ModelType == type).ToList();
            Assert.NotEmpty(rows);
            var read = FieldsRead(ConfigOf(type), type);
            var listed = rows.Select(r => r.Field).ToHashSet();
            void None(IEnumerable<string> fields, string problem)
            {
                var list = fields.ToList();
                Assert.True(list.Count == 0, $"{type}: {problem}: {string.Join(", ", list)}");
            }
            None(read.Where(f => !listed.Contains(f)), "read by the loader but missing from docs/models.md");
            None(rows.Where(r => r.Status != "irrelevant").Select(r => r.Field).Where(f => !read.Contains(f)), "listed as implemented or refused but never read");
            None(rows.Where(r => r.Status == "irrelevant").Select(r => r.Field).Where(read.Contains), "listed as irrelevant but read");
        }

        /// <summary>For each refused condition of the table: a value that meets it.</summary>
        static readonly Dictionary<string, Func<JsonObject, JsonNode>> Offending = new()
        {
            ["hidden_act"] = _ => "gelu_fast",
            ["hidden_activation"] = _ => "gelu_fast",
            ["rope_scaling"] = _ => new JsonObject { ["rope_type"] = "mrope", ["factor"] = 2.0 },
            ["rope_parameters"] = _ => new JsonObject { ["rope_type"] = "default", ["rope_theta"] = 10000.0 },
            ["partial_rotary_factor"] = _ => 0.5,
            ["layer_types"] = c => new JsonArray(Enumerable.Range(0, (int)c["num_hidden_layers"]!).Select(_ => (JsonNode?)"chunked_attention").ToArray()),
            ["use_bidirectional_attention"] = _ => true,
            ["attention_dropout"] = _ => 0.1,
            ["resid_pdrop"] = _ => 0.1,
            ["embd_pdrop"] = _ => 0.1,
            ["position_embedding_type"] = _ => "relative_key",
            ["is_decoder"] = _ => true,
            ["add_cross_attention"] = _ => true,
            ["problem_type"] = _ => "multi_label_classification",
            ["quantization_config"] = _ => new JsonObject { ["quant_method"] = "gptq", ["bits"] = 4 },
        };

        public static TheoryData<string, string> RefusedRows()
        {
            var data = new TheoryData<string, string>();
            foreach (var r in Table().Where(r => r.RefusedWhen != "—")) data.Add(r.Field, r.ModelType);
            return data;
        }

        [Theory, MemberData(nameof(RefusedRows))]
        public void EachRefusalConditionIsRefusedNamingFieldAndValue(string field, string type)
        {
            Assert.True(Offending.ContainsKey(field), $"the audit refuses {field} for {type}, but this test has no offending value for it");
            var config = JsonNode.Parse(File.ReadAllText(ConfigOf(type)))!.AsObject();
            var value = Offending[field](config);
            config[field] = value.DeepClone();
            using var dir = new TempDirectory();
            File.WriteAllText(dir.File("config.json"), config.ToJsonString());
            var ex = Assert.Throws<GraloraException>(() => FieldsRead(dir.File("config.json"), type));
            Assert.Equal("UnsupportedConfig", ex.ErrorId);
            Assert.Contains(field == "quantization_config" ? "quantization_config" : $"'{field}'", ex.Message);   // the block's own field is named inside it
            string shown = value is JsonValue v && v.TryGetValue<string>(out var s) ? s : value.ToJsonString();
            Assert.Contains(field switch { "rope_scaling" => "mrope", "layer_types" => "chunked_attention", "quantization_config" => "gptq", _ => shown }, ex.Message);
            Assert.Contains("implement", ex.Message);
        }

        [Theory, MemberData(nameof(Types))]
        public void UnknownFieldsAreIgnoredAsTransformersIgnoresThem(string type)
        {
            var config = JsonNode.Parse(File.ReadAllText(ConfigOf(type)))!.AsObject();
            config["some_future_field"] = 42;
            using var dir = new TempDirectory();
            File.WriteAllText(dir.File("config.json"), config.ToJsonString());
            Assert.DoesNotContain("some_future_field", FieldsRead(dir.File("config.json"), type));
        }

        [Fact]
        public void DefaultsOfAbsentFieldsFollowEachConfigClass()
        {
            // Values of transformers' config classes when the field is absent (a null switches the feature off).
            DecoderConfig Load(string type, Action<JsonObject> edit)
            {
                var config = JsonNode.Parse(File.ReadAllText(ConfigOf(type)))!.AsObject();
                edit(config);
                using var dir = new TempDirectory();
                File.WriteAllText(dir.File("config.json"), config.ToJsonString());
                return DecoderConfig.Load(dir.File("config.json"));
            }
            Assert.Equal(4096, Load("mistral", c => c.Remove("sliding_window")).SlidingWindow);
            Assert.Null(Load("mistral", c => c["sliding_window"] = null).SlidingWindow);
            var gemma2 = Load("gemma2", c => { c.Remove("attn_logit_softcapping"); c.Remove("final_logit_softcapping"); c.Remove("head_dim"); });
            Assert.Equal((50.0, 30.0, 256), (gemma2.AttnLogitSoftcapping, gemma2.FinalLogitSoftcapping, gemma2.HeadDim));
            Assert.Null(Load("gemma2", c => c["attn_logit_softcapping"] = null).AttnLogitSoftcapping);
            Assert.Equal(128, Load("qwen3", c => c.Remove("head_dim")).HeadDim);
            Assert.Null(Load("qwen2", c => c["use_sliding_window"] = false).WindowOf(2));
            Assert.Equal(1e-5, Load("phi3", c => c.Remove("rms_norm_eps")).RmsNormEps);
            Assert.True(Load("gemma3_text", c => c.Remove("tie_word_embeddings")).TieWordEmbeddings);
            Assert.Equal("gelu_pytorch_tanh", Load("gemma3_text", c => c.Remove("hidden_activation")).HiddenAct);
        }
    }
}
