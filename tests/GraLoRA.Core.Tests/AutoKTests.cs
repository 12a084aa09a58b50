using System.Collections.Generic;
using System.Text.Json;
using GraLoRA.Diagnostics;
using GraLoRA.IO;

namespace GraLoRA.Tests
{
    /// <summary>
    /// k: null is PEFT's default (2), Auto is the paper's rule of thumb (r/k² ≈ 8: r 16–32 → k 2, r 64–128 → k 4, as the
    /// paper's table recommends), resolved by Core for each module's own rank, RankPattern included.
    /// </summary>
    public sealed class AutoKTests : IDisposable
    {
        readonly TempDirectory tmp = new();
        public void Dispose() => tmp.Dispose();

        static BaseModel Llama() => BaseModel.Load(Path.Combine(TestEnvironment.Fixtures, "models", "llama"));

        static Dictionary<string, GraloraOptions> Options(BaseModel model, string adapter) =>
            model.Adapters.Layers().ToDictionary(l => l.Name.Split('.').Last() + l.Name.Split('.')[2], l => ((GraloraLinear)l.Layer).Options(adapter));

        [Fact]
        public void AutoGivesEachModuleTheKOfItsOwnRankAndTheSavedAdapterKeepsIt()
        {
            using var model = Llama();
            model.AddAdapter("default", new AdapterConfig
            {
                Rank = 16, K = KChoice.Auto, TargetModules = new[] { "q_proj", "down_proj" }, RankPattern = new Dictionary<string, int> { ["down_proj"] = 64 },
            });
            var options = Options(model, "default");
            Assert.Equal((16, 2), (options["q_proj0"].Rank, options["q_proj0"].K));
            Assert.Equal((64, 4), (options["down_proj1"].Rank, options["down_proj1"].K));

            var stored = model.Adapters.Config("default");
            Assert.False(stored.K!.Value.IsAuto);                                      // stored as it is saved
            Assert.Equal(2, stored.EffectiveK);
            string folder = model.SaveAdapter("default", tmp.File("auto"));
            using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, PeftAdapterFormat.ConfigFile))))
            {
                Assert.Equal(2, json.RootElement.GetProperty("gralora_k").GetInt32());
                Assert.Equal(4, json.RootElement.GetProperty("k_pattern").GetProperty("down_proj").GetInt32());
            }
            using var other = Llama();
            other.LoadAdapter(folder, "loaded");
            Assert.Equal(options.ToDictionary(o => o.Key, o => (o.Value.Rank, o.Value.K)), Options(other, "loaded").ToDictionary(o => o.Key, o => (o.Value.Rank, o.Value.K)));
        }

        [Fact]
        public void AGivenKPatternWinsOverAuto()
        {
            using var model = Llama();
            model.AddAdapter("default", new AdapterConfig
            {
                Rank = 16, K = KChoice.Auto, TargetModules = new[] { "q_proj", "down_proj" },
                RankPattern = new Dictionary<string, int> { ["down_proj"] = 64 }, KPattern = new Dictionary<string, int> { ["down_proj"] = 8 },
            });
            Assert.Equal((64, 8), (Options(model, "default")["down_proj0"].Rank, Options(model, "default")["down_proj0"].K));
        }

        [Theory]
        [InlineData(64)]
        [InlineData(8)]
        public void NullKIsPeftsDefaultWhateverTheRank(int rank)
        {
            using var model = Llama();
            model.AddAdapter("default", new AdapterConfig { Rank = rank });
            Assert.All(Options(model, "default").Values, o => Assert.Equal(2, o.K));
        }

        [Fact]
        public void AutoWithoutPatternsIsTheRuleOfThumbAndLoRAHasNoK()
        {
            Assert.Equal(4, new AdapterConfig { Rank = 64, K = KChoice.Auto }.Resolved().K);
            var lora = new AdapterConfig { Method = AdapterMethod.LoRA, K = KChoice.Auto };
            Assert.Equal("NotForLoRA", Assert.Throws<GraloraException>(lora.Validate).ErrorId);
            Assert.True(new EntanglementOptions().K.IsAuto);                        // the diagnostics say Auto, not null
        }

        [Theory]
        [InlineData("Auto", null)]
        [InlineData(" auto ", null)]
        [InlineData("4", 4)]
        public void KChoiceParsesAutoOrAWholeNumber(string text, int? k) => Assert.Equal(k, KChoice.Parse(text).Value);

        [Fact]
        public void KChoiceNamesTextThatIsNeither()
        {
            var ex = Assert.Throws<GraloraException>(() => KChoice.Parse("many"));
            Assert.Equal("InvalidK", ex.ErrorId);
            Assert.Contains("'many'", ex.Message);
        }
    }
}
