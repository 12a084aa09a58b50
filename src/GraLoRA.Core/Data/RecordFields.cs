using System.Collections.Generic;
using GraLoRA.Text;

namespace GraLoRA.Data
{
    /// <summary>Reads typed fields out of records, failing with the record's location and what the format needs.</summary>
    internal static class RecordFields
    {
        /// <summary>What each format needs, for "field missing" messages.</summary>
        public static string Needs(DatasetFormat format) => format switch
        {
            DatasetFormat.Text => "text records need text",
            DatasetFormat.Alpaca => "alpaca records need instruction and output, input is optional",
            DatasetFormat.PromptCompletion => "prompt/completion records need prompt and completion",
            DatasetFormat.Chat => "chat records need messages, a list of {role, content}",
            DatasetFormat.Tokenized => "tokenized records need input_ids, a list of token ids; labels and attention_mask are optional",
            _ => "classification records need text and label",
        };

        /// <summary>A required text field; numbers and booleans are written as text.</summary>
        public static string Text(DataRecord record, string name, DatasetFormat format) =>
            OptionalText(record, name) ?? throw DataErrors.Record(record,
                $"field '{name}' is missing ({Needs(format)}); the record has {DatasetFormatDetector.Describe(record.Fields.Keys)}.", "DatasetFieldMissing");

        /// <summary>An optional text field: null when absent or null.</summary>
        public static string? OptionalText(DataRecord record, string name) => record[name] switch
        {
            null => null,
            string s => s,
            IReadOnlyList<object?> => throw DataErrors.Record(record, $"field '{name}' is a list where text was expected."),
            IReadOnlyDictionary<string, object?> => throw DataErrors.Record(record, $"field '{name}' is an object where text was expected."),
            bool b => b ? "true" : "false",
            object v => DataRecord.FormatValue(v),
        };

        /// <summary>A list of chat messages: each an object with a text <c>role</c> and a <c>content</c> (other keys are passed to the template).</summary>
        public static List<ChatMessage> Messages(DataRecord record, string name, DatasetFormat format)
        {
            object? value = record[name];
            if (value == null)
                throw DataErrors.Record(record, $"field '{name}' is missing ({Needs(format)}); the record has {DatasetFormatDetector.Describe(record.Fields.Keys)}.", "DatasetFieldMissing");
            if (value is not IReadOnlyList<object?> list)
                throw DataErrors.Record(record, $"field '{name}' must be a list of messages like [{{\"role\": \"user\", \"content\": \"...\"}}], not {Kind(value)}.");
            var messages = new List<ChatMessage>(list.Count);
            for (int i = 0; i < list.Count; i++)
            {
                if (list[i] is not IReadOnlyDictionary<string, object?> m)
                    throw DataErrors.Record(record, $"{name}[{i}] must be an object like {{\"role\": \"user\", \"content\": \"...\"}}, not {Kind(list[i])}.");
                if (!m.TryGetValue("role", out object? role) || role is not string)
                    throw DataErrors.Record(record, $"{name}[{i}] has no text 'role' (use system, user or assistant).", "DatasetFieldMissing");
                if (!m.ContainsKey("content"))
                    throw DataErrors.Record(record, $"{name}[{i}] has no 'content'.", "DatasetFieldMissing");
                // Text stays the message's content; a list of content parts (or an object) goes to the template as is.
                object? raw = m["content"];
                bool structured = raw is IReadOnlyList<object?> or IReadOnlyDictionary<string, object?>;
                string? content = raw switch
                {
                    null => null,
                    string s => s,
                    bool b => b ? "true" : "false",
                    _ when structured => null,
                    _ => DataRecord.FormatValue(raw),
                };
                Dictionary<string, object?>? extra = null;
                foreach (var (key, v) in m)
                    if (key != "role" && (key != "content" || structured))
                        (extra ??= new Dictionary<string, object?>())[key] = v;
                messages.Add(new ChatMessage((string)role!, content, extra));
            }
            if (messages.Count == 0)
                throw DataErrors.Record(record, $"field '{name}' is an empty list: a conversation needs at least one message.");
            return messages;
        }

        internal static string Kind(object? value) => value switch
        {
            null => "null",
            string => "text",
            IReadOnlyList<object?> => "a list",
            IReadOnlyDictionary<string, object?> => "an object",
            _ => "a " + value.GetType().Name,
        };
    }
}
