using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace GraLoRA.Data
{
    /// <summary>
    /// CSV as RFC 4180 describes it: a header row naming the fields, then one record per row; fields separated by
    /// commas (tabs for .tsv); a field in double quotes may hold separators, line breaks and quotes written twice
    /// (<c>""</c>). Line breaks may be CRLF or LF. Empty lines between records are skipped. Every value is a string.
    /// A record's position is the line it starts on (the header is line 1).
    /// </summary>
    internal static class CsvDatasetReader
    {
        public static IEnumerable<DataRecord> Read(string path, char separator)
        {
            using var reader = DatasetReader.OpenText(path);
            string[]? header = null;
            foreach (var (line, fields) in Rows(reader, path, separator))
            {
                if (header == null)
                {
                    if (fields.Count > 0 && fields[0].Length > 0 && fields[0][0] == '\uFEFF') fields[0] = fields[0].Substring(1);
                    header = CheckHeader(path, line, fields);
                    continue;
                }
                if (fields.Count != header.Length)
                    throw DataErrors.At(path, line, RecordPositionKind.Line,
                        $"{fields.Count} field{(fields.Count == 1 ? "" : "s")} where the header has {header.Length}; put fields that contain '{Show(separator)}', quotes or line breaks in double quotes (a quote inside one is written \"\").");
                var record = new Dictionary<string, object?>(header.Length, StringComparer.Ordinal);
                for (int i = 0; i < header.Length; i++) record[header[i]] = fields[i];
                yield return new DataRecord(record, path, line, RecordPositionKind.Line);
            }
        }

        static string Show(char separator) => separator == '\t' ? "\\t" : separator.ToString();

        static string[] CheckHeader(string path, long line, List<string> fields)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < fields.Count; i++)
            {
                if (fields[i].Length == 0)
                    throw DataErrors.At(path, line, RecordPositionKind.Line, $"header column {i + 1} has no name; the first row must name every column (e.g. text,label).");
                if (!seen.Add(fields[i]))
                    throw DataErrors.At(path, line, RecordPositionKind.Line, $"the header names column '{fields[i]}' twice; give every column its own name.");
            }
            return fields.ToArray();
        }

        /// <summary>The rows of the file as (line the row starts on, its fields), unquoted.</summary>
        internal static IEnumerable<(long Line, List<string> Fields)> Rows(TextReader reader, string path, char separator)
        {
            var fields = new List<string>();
            var field = new StringBuilder();
            long line = 1, rowLine = 1, quoteLine = 0;
            bool inQuotes = false, afterQuote = false, rowStarted = false;
            int c;
            while ((c = reader.Read()) != -1)
            {
                char ch = (char)c;
                if (inQuotes)
                {
                    if (ch == '"')
                    {
                        if (reader.Peek() == '"') { reader.Read(); field.Append('"'); }
                        else { inQuotes = false; afterQuote = true; }
                    }
                    else
                    {
                        field.Append(ch);
                        if (ch == '\r' && reader.Peek() == '\n') field.Append((char)reader.Read());
                        if (ch == '\r' || ch == '\n') line++;
                    }
                    continue;
                }
                if (ch == separator)
                {
                    fields.Add(field.ToString());
                    field.Clear();
                    afterQuote = false;
                    rowStarted = true;
                    continue;
                }
                if (ch == '\r' || ch == '\n')
                {
                    if (ch == '\r' && reader.Peek() == '\n') reader.Read();
                    if (rowStarted || field.Length > 0)
                    {
                        fields.Add(field.ToString());
                        yield return (rowLine, fields);
                        fields = new List<string>();
                    }
                    field.Clear();
                    afterQuote = false;
                    rowStarted = false;
                    line++;
                    rowLine = line;
                    continue;
                }
                if (afterQuote)
                    throw DataErrors.At(path, line, RecordPositionKind.Line,
                        $"text after the closing quote of a field; a quoted field must end at its closing quote, and a quote inside it is written twice (\"\").");
                if (ch == '"' && field.Length == 0)
                {
                    inQuotes = true;
                    rowStarted = true;
                    quoteLine = line;
                    continue;
                }
                field.Append(ch);
                rowStarted = true;
            }
            if (inQuotes)
                throw DataErrors.At(path, quoteLine, RecordPositionKind.Line, "a quoted field is never closed; add the closing double quote (a quote inside a field is written \"\").");
            if (rowStarted || field.Length > 0)
            {
                fields.Add(field.ToString());
                yield return (rowLine, fields);
            }
        }
    }
}
