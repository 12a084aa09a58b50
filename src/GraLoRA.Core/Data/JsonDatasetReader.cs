using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace GraLoRA.Data
{
    /// <summary>
    /// A JSON file: a top-level array of objects, or an object whose "data" or "train" property is such an array
    /// (positions are 0-based array indices). The whole file is parsed at once.
    /// </summary>
    internal static class JsonDatasetReader
    {
        public static IEnumerable<DataRecord> Read(string path)
        {
            string text;
            using (var reader = DatasetReader.OpenText(path)) text = reader.ReadToEnd();
            if (text.Length > 0 && text[0] == '\uFEFF') text = text.Substring(1);
            if (string.IsNullOrWhiteSpace(text)) yield break;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip }); }
            catch (JsonException ex)
            {
                long line = (ex.LineNumber ?? 0) + 1;
                throw DataErrors.At(path, line, RecordPositionKind.Line, $"not valid JSON ({ex.Message}); fix the file or save it as JSON Lines (.jsonl).", ex);
            }
            using (doc)
            {
                JsonElement items = FindArray(path, doc.RootElement);
                long index = 0;
                foreach (JsonElement item in items.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.Object)
                        throw DataErrors.At(path, index, RecordPositionKind.Index,
                            $"a JSON {item.ValueKind.ToString().ToLowerInvariant()} where an object was expected; the array must hold one object per record.");
                    yield return new DataRecord(DataValues.ObjectFromUntrustedJson(item, path, index, RecordPositionKind.Index), path, index, RecordPositionKind.Index);
                    index++;
                }
            }
        }

        static JsonElement FindArray(string path, JsonElement root)
        {
            if (root.ValueKind == JsonValueKind.Array) return root;
            if (root.ValueKind == JsonValueKind.Object)
                foreach (string name in new[] { "data", "train" })
                    if (root.TryGetProperty(name, out JsonElement a) && a.ValueKind == JsonValueKind.Array) return a;
            throw DataErrors.Unreadable(path,
                $"the top level is a JSON {root.ValueKind.ToString().ToLowerInvariant()}; expected an array of records, or an object with a \"data\" or \"train\" array");
        }
    }
}
