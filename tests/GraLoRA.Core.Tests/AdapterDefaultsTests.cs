using GraLoRA.IO;

namespace GraLoRA.Tests
{
    /// <summary>
    /// PEFT's defaults live in <see cref="AdapterDefaults"/> only; every other way to a default (options records, a config
    /// without values, an adapter_config.json without fields, a model without targets) arrives at the same values.
    /// Expected values are PEFT's own (GraloraConfig: r 32, gralora_k 2, alpha 64; LoraConfig: r 8, lora_alpha 8;
    /// target_modules mapping: llama/qwen2 q_proj, v_proj, bert/roberta query, value).
    /// </summary>
    public sealed class AdapterDefaultsTests
    {
        [Fact]
        public void TheDefaultsArePefts()
        {
            Assert.Equal((32, 2, 64.0), (AdapterDefaults.GraloraRank, AdapterDefaults.GraloraK, AdapterDefaults.GraloraAlpha));
            Assert.Equal((8, 8.0), (AdapterDefaults.LoraRank, AdapterDefaults.LoraAlpha));
        }

        [Theory]
        [InlineData(AdapterMethod.GraLoRA, "GRALORA")]
        [InlineData(AdapterMethod.LoRA, "LORA")]
        public void EveryRouteToADefaultArrivesAtTheSameValues(AdapterMethod method, string peftType)
        {
            var fromConfig = new AdapterConfig { Method = method }.OptionsFor("model.layers.0.self_attn.q_proj");
            IAdapterOptions fromRecord = method == AdapterMethod.GraLoRA ? new GraloraOptions() : new LoraOptions();
            using var tmp = new TempDirectory();
            string folder = tmp.Path;
            File.WriteAllText(Path.Combine(folder, PeftAdapterFormat.ConfigFile), $"{{\"peft_type\": \"{peftType}\"}}");
            var fromFile = PeftAdapterFormat.ReadConfig(folder).OptionsFor("model.layers.0.self_attn.q_proj");
            foreach (var options in new[] { fromConfig, fromRecord, fromFile })
            {
                Assert.Equal(AdapterDefaults.Rank(method), options.Rank);
                Assert.Equal(AdapterDefaults.Alpha(method), options.Alpha);
                if (options is GraloraOptions g) Assert.Equal(AdapterDefaults.GraloraK, g.K);
            }
        }

        [Theory]
        [InlineData("llama", "q_proj,v_proj")]
        [InlineData("bert", "query,value")]
        [InlineData("roberta_seqcls", "query,value")]
        public void AModelWithoutTargetsGetsItsArchitecturesDefaultTargetsWrittenIntoTheConfig(string name, string targets)
        {
            using var model = BaseModel.Load(Path.Combine(TestEnvironment.Fixtures, "models", name));
            var adapted = model.AddAdapter("default", new AdapterConfig { Rank = 8 });
            Assert.Equal(targets.Split(','), adapted.Select(t => t.Split('.').Last()).Distinct().OrderBy(t => t));
            Assert.Equal(targets.Split(','), model.Adapters.Config("default").TargetModules);
            Assert.Equal(targets.Split(','), PeftAdapterFormat.ConfigJson(model.Adapters, "default")["target_modules"]!.AsArray().Select(t => (string)t!));
        }
    }
}
