using System.Collections.Generic;
using System.Text.Json;

namespace GraLoRA.Data
{
    /// <summary>JSON Lines: one JSON object per line, blank lines skipped, positions are 1-based line numbers.</summary>
    internal static class JsonlDatasetReader
    {
        public static IEnumerable<DataRecord> Read(string path)
        {
            using var reader = DatasetReader.OpenText(path);
            long lineNumber = 0;
            string? line;
            while ((line = reader.ReadLine()) != null)
            {
                lineNumber++;
                if (lineNumber == 1 && line.Length > 0 && line[0] == '\uFEFF') line = line.Substring(1);
                if (string.IsNullOrWhiteSpace(line)) continue;
                yield return new DataRecord(ParseLine(path, lineNumber, line), path, lineNumber, RecordPositionKind.Line);
            }
        }

        static Dictionary<string, object?> ParseLine(string path, long lineNumber, string line)
        {
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException ex)
            {
                throw DataErrors.At(path, lineNumber, RecordPositionKind.Line,
                    $"not valid JSON ({ex.Message}); each line of a .jsonl file must be one complete JSON object, e.g. {{\"text\": \"...\"}}.", ex);
            }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw DataErrors.At(path, lineNumber, RecordPositionKind.Line,
                        $"a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()} where an object was expected; each line must be one JSON object, e.g. {{\"text\": \"...\"}}.");
                return DataValues.ObjectFromUntrustedJson(doc.RootElement, path, lineNumber, RecordPositionKind.Line);
            }
        }
    }
}
