using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading;
using GraLoRA.Text.Jinja;

namespace GraLoRA.Text
{
    /// <summary>One chat turn.</summary>
    /// <param name="Role">"system", "user", "assistant", "tool", ...</param>
    /// <param name="Content">The text; null for, e.g., an assistant turn that only calls tools.</param>
    /// <param name="Extra">
    /// More fields the template may read, e.g. "tool_calls", "tool_call_id", "reasoning_content". They come after
    /// role and content in the message dict; an entry named "content" replaces <paramref name="Content"/>
    /// (for a list of content parts).
    /// </param>
    public sealed record ChatMessage(string Role, string? Content, IReadOnlyDictionary<string, object?>? Extra = null);

    /// <summary>What <see cref="ChatTemplate.Render(string, IReadOnlyList{ChatMessage}, ChatTemplateOptions?, System.Threading.CancellationToken)"/> passes to the template besides the messages.</summary>
    public sealed class ChatTemplateOptions
    {
        /// <summary>End with the header of an assistant turn, so generation continues as the assistant.</summary>
        public bool AddGenerationPrompt { get; init; }

        /// <summary>The tokenizer's bos_token (tokenizer_config.json), or null.</summary>
        public string? BosToken { get; init; }

        /// <summary>The tokenizer's eos_token, or null.</summary>
        public string? EosToken { get; init; }

        /// <summary>Tool (function) definitions as JSON-like values, e.g. {"type": "function", "function": {...}}; null when none.</summary>
        public IReadOnlyList<object?>? Tools { get; init; }

        /// <summary>The time strftime_now() formats (Llama 3's "Today Date"); null means the local time at rendering.</summary>
        public DateTime? Now { get; init; }

        /// <summary>More template variables, e.g. enable_thinking=false for Qwen3 or date_string for Llama 3.</summary>
        public IReadOnlyDictionary<string, object?>? ExtraVariables { get; init; }

        /// <summary>What parsing and rendering may cost (nesting, steps, characters); null means <see cref="JinjaLimits.Default"/>.</summary>
        public JinjaLimits? Limits { get; init; }
    }

    /// <summary>Renders conversations with a model's Jinja chat template, as transformers' apply_chat_template does.</summary>
    public static class ChatTemplate
    {
        /// <summary>Parses <paramref name="template"/> (within <see cref="ChatTemplateOptions.Limits"/>) and renders <paramref name="messages"/> with it.</summary>
        /// <exception cref="GraloraException">
        /// TemplateSyntaxError, TemplateRaisedException (e.g. roles that do not alternate), TemplateRenderError;
        /// ChatTemplateTooDeep and ChatTemplateBudgetExceeded for templates past <see cref="JinjaLimits"/> (hostile or broken ones).
        /// </exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled while rendering.</exception>
        public static string Render(string template, IReadOnlyList<ChatMessage> messages, ChatTemplateOptions? options = null, CancellationToken cancellation = default) =>
            Render(JinjaTemplate.Parse(template, options?.Limits), messages, options, cancellation);

        /// <summary>Renders <paramref name="messages"/> with an already parsed template (parse once, render many), within the limits it was parsed with.</summary>
        /// <exception cref="GraloraException">TemplateRaisedException (e.g. roles that do not alternate), TemplateRenderError, ChatTemplateTooDeep, ChatTemplateBudgetExceeded.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled while rendering.</exception>
        public static string Render(JinjaTemplate template, IReadOnlyList<ChatMessage> messages, ChatTemplateOptions? options = null, CancellationToken cancellation = default)
        {
            ArgumentNullException.ThrowIfNull(template);
            return template.Render(BuildContext(messages, options ?? new ChatTemplateOptions()), cancellation);
        }

        /// <summary>The variables transformers passes: messages, tools, add_generation_prompt, bos_token, eos_token, strftime_now, then the extras.</summary>
        static Dictionary<string, object?> BuildContext(IReadOnlyList<ChatMessage> messages, ChatTemplateOptions options)
        {
            ArgumentNullException.ThrowIfNull(messages);
            var list = new List<object?>(messages.Count);
            foreach (var m in messages)
            {
                if (m == null)
                    throw new GraloraException("ChatMessageNull", GraloraErrorKind.InvalidArgument, "The message list contains a null message.");
                var dict = new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content };
                foreach (var (key, value) in m.Extra ?? new Dictionary<string, object?>())
                    dict[key] = value;
                list.Add(dict);
            }
            DateTime now = options.Now ?? DateTime.Now;
            var context = new Dictionary<string, object?>
            {
                ["messages"] = list,
                ["tools"] = options.Tools,
                ["add_generation_prompt"] = options.AddGenerationPrompt,
                ["bos_token"] = options.BosToken,
                ["eos_token"] = options.EosToken,
                ["strftime_now"] = (Func<IReadOnlyList<object?>, object?>)(args =>
                    Strftime(now, args.Count > 0 && args[0] is string format ? format : throw new ArgumentException("strftime_now needs a format string"))),
            };
            foreach (var (key, value) in options.ExtraVariables ?? new Dictionary<string, object?>())
                context[key] = value;
            return context;
        }

        /// <summary>
        /// The chat template in a tokenizer_config.json: its "chat_template" is either the template text or a list of
        /// {"name", "template"} objects, from which <paramref name="name"/> (default "default") is picked.
        /// </summary>
        /// <returns>The template text, or null when the config has no chat_template.</returns>
        /// <exception cref="GraloraException">ChatTemplateNotFound when the named template is not there (the message lists the names); InvalidChatTemplate when the field has another shape.</exception>
        public static string? FromTokenizerConfig(JsonElement configRoot, string? name = null)
        {
            if (configRoot.ValueKind != JsonValueKind.Object || !configRoot.TryGetProperty("chat_template", out JsonElement field)
                || field.ValueKind == JsonValueKind.Null)
                return null;
            string wanted = name ?? "default";
            switch (field.ValueKind)
            {
                case JsonValueKind.String:
                    if (wanted != "default")
                        throw new GraloraException("ChatTemplateNotFound", GraloraErrorKind.NotFound,
                            $"No chat template named '{wanted}': this tokenizer config has a single (default) chat template.", wanted);
                    return field.GetString();
                case JsonValueKind.Array:
                    var names = new List<string>();
                    foreach (JsonElement entry in field.EnumerateArray())
                    {
                        if (entry.ValueKind != JsonValueKind.Object
                            || !entry.TryGetProperty("name", out JsonElement n) || n.ValueKind != JsonValueKind.String
                            || !entry.TryGetProperty("template", out JsonElement t) || t.ValueKind != JsonValueKind.String)
                            throw InvalidShape();
                        if (n.GetString() == wanted)
                            return t.GetString();
                        names.Add(n.GetString()!);
                    }
                    throw new GraloraException("ChatTemplateNotFound", GraloraErrorKind.NotFound,
                        $"No chat template named '{wanted}' in the tokenizer config; it has: {string.Join(", ", names.Select(x => "'" + x + "'"))}."
                        + (name == null ? " Pass one of these names." : ""), wanted);
                default:
                    throw InvalidShape();
            }

            static GraloraException InvalidShape() => new("InvalidChatTemplate", GraloraErrorKind.InvalidData,
                "The tokenizer config's chat_template must be a string or a list of {\"name\": ..., \"template\": ...} objects.");
        }

        /// <summary>Python's strftime for the directives chat templates use, in the invariant (C locale) names.</summary>
        internal static string Strftime(DateTime t, string format)
        {
            var c = CultureInfo.InvariantCulture;
            var sb = new StringBuilder();
            for (int i = 0; i < format.Length; i++)
            {
                if (format[i] != '%' || i + 1 >= format.Length)
                {
                    sb.Append(format[i]);
                    continue;
                }
                char d = format[++i];
                // glibc's "%-d": no padding.
                bool noPad = d == '-' && i + 1 < format.Length;
                if (noPad)
                    d = format[++i];
                string Pad(int value) => noPad ? value.ToString(c) : value.ToString("00", c);
                sb.Append(d switch
                {
                    'Y' => t.Year.ToString(c),
                    'y' => Pad(t.Year % 100),
                    'm' => Pad(t.Month),
                    'd' => Pad(t.Day),
                    'e' => t.Day.ToString(c).PadLeft(2),
                    'H' => Pad(t.Hour),
                    'I' => Pad(t.Hour % 12 == 0 ? 12 : t.Hour % 12),
                    'M' => Pad(t.Minute),
                    'S' => Pad(t.Second),
                    'p' => t.Hour < 12 ? "AM" : "PM",
                    'b' => t.ToString("MMM", c),
                    'B' => t.ToString("MMMM", c),
                    'a' => t.ToString("ddd", c),
                    'A' => t.ToString("dddd", c),
                    'j' => noPad ? t.DayOfYear.ToString(c) : t.DayOfYear.ToString("000", c),
                    '%' => "%",
                    _ => "%" + (noPad ? "-" : "") + d,
                });
            }
            return sb.ToString();
        }
    }
}
