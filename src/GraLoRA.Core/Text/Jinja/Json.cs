using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace GraLoRA.Text.Jinja
{
    /// <summary>
    /// The tojson filter as transformers defines it: Python's json.dumps with ensure_ascii=False and the keys
    /// in insertion order unless sort_keys is set; with an indent the item separator loses its space.
    /// Arguments in transformers' order: tojson(ensure_ascii=False, indent=None, separators=None, sort_keys=False).
    /// </summary>
    internal static class Json
    {
        public sealed record Options(string? Indent, string ItemSeparator, string KeySeparator, bool SortKeys, bool EnsureAscii);

        public static string Serialize(object? value, CallArguments args)
        {
            string? indent = args.Get(1, "indent") switch
            {
                null or Undefined => null,
                long n => new string(' ', (int)Math.Clamp(n, 0, 64)),
                string s => s,
                var other => throw new RenderException($"tojson indent must be an integer or a string, not '{Values.TypeName(other)}'"),
            };
            string itemSeparator = indent == null ? ", " : ",", keySeparator = ": ";
            if (args.Get(2, "separators") is JinjaList { Items: [string item, string key] })
                (itemSeparator, keySeparator) = (item, key);
            bool sortKeys = Values.IsTrue(args.Get(3, "sort_keys", false));
            bool ensureAscii = Values.IsTrue(args.Get(0, "ensure_ascii", false));
            var sb = new BudgetedText(RenderBudget.Current);
            Write(sb, value, new Options(indent, itemSeparator, keySeparator, sortKeys, ensureAscii), 0);
            return sb.ToString();
        }

        /// <summary>A StringBuilder that charges every append to the rendering's budget before making it.</summary>
        sealed class BudgetedText
        {
            readonly StringBuilder _sb = new();
            readonly RenderBudget _budget;
            public BudgetedText(RenderBudget budget) => _budget = budget;
            public RenderBudget Budget => _budget;

            public BudgetedText Append(string? s)
            {
                if (s != null)
                {
                    _budget.Text(s.Length);
                    _sb.Append(s);
                }
                return this;
            }

            public BudgetedText Append(char c)
            {
                _budget.Text(1);
                _sb.Append(c);
                return this;
            }

            public override string ToString() => _sb.ToString();
        }

        static void Write(BudgetedText sb, object? value, Options o, int depth)
        {
            switch (value)
            {
                case null:
                    sb.Append("null");
                    break;
                case Undefined:
                    // Python's json.dumps has no value for Jinja's Undefined.
                    throw new RenderException("Object of type Undefined is not JSON serializable");
                case bool b:
                    sb.Append(b ? "true" : "false");
                    break;
                case long l:
                    sb.Append(l.ToString(CultureInfo.InvariantCulture));
                    break;
                case double d:
                    sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : Values.FormatFloat(d));
                    break;
                case string s:
                    WriteString(sb, s, o.EnsureAscii);
                    break;
                case JinjaList list:
                    sb.Budget.CheckValueDepth(depth);
                    WriteContainer(sb, '[', ']', list.Items, o, depth, (item, d) => Write(sb, item, o, d));
                    break;
                case JinjaDict dict:
                    sb.Budget.CheckValueDepth(depth);
                    IEnumerable<KeyValuePair<string, object?>> pairs = o.SortKeys ? dict.OrderBy(p => p.Key, StringComparer.Ordinal) : dict;
                    WriteContainer(sb, '{', '}', pairs.ToList(), o, depth, (pair, d) =>
                    {
                        WriteString(sb, pair.Key, o.EnsureAscii);
                        sb.Append(o.KeySeparator);
                        Write(sb, pair.Value, o, d);
                    });
                    break;
                default:
                    throw new RenderException($"Object of type {Values.TypeName(value)} is not JSON serializable");
            }
        }

        static void WriteContainer<T>(BudgetedText sb, char open, char close, IReadOnlyList<T> items, Options o, int depth, Action<T, int> writeItem)
        {
            sb.Append(open);
            if (items.Count == 0)
            {
                sb.Append(close);
                return;
            }
            string? inner = o.Indent == null ? null : "\n" + string.Concat(Enumerable.Repeat(o.Indent, depth + 1));
            for (int i = 0; i < items.Count; i++)
            {
                if (i > 0)
                    sb.Append(o.ItemSeparator);
                sb.Append(inner);
                writeItem(items[i], depth + 1);
            }
            if (o.Indent != null)
                sb.Append('\n').Append(string.Concat(Enumerable.Repeat(o.Indent, depth)));
            sb.Append(close);
        }

        static void WriteString(BudgetedText text, string s, bool ensureAscii)
        {
            // Escapes at most sextuple a character; built apart, then charged and appended at once.
            var sb = new StringBuilder(s.Length + 2);
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    default:
                        if (c < 0x20 || (ensureAscii && c > 0x7e))
                            sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else
                            sb.Append(c);
                        break;
                }
            }
            sb.Append('"');
            text.Append(sb.ToString());
        }
    }
}
