using System;
using System.Globalization;
using System.Linq;
using System.Text;

namespace GraLoRA.Text.Jinja
{
    // Python's str() and repr() of template values. Printing walks containers, so it counts their depth and charges
    // the text it builds to the rendering's budget before appending it.
    internal static partial class Values
    {
        /// <summary>Python's str(): what {{ value }} prints. Undefined prints nothing.</summary>
        public static string Str(object? value) => value switch
        {
            string s => s,
            Undefined => "",
            _ => Repr(value),
        };

        /// <summary>Python's repr(), used inside printed lists and dicts.</summary>
        public static string Repr(object? value)
        {
            if (value is not (JinjaList or JinjaDict or JinjaNamespace))
                return ScalarRepr(value);
            var sb = new StringBuilder();
            WriteRepr(sb, value, 0, RenderBudget.Current);
            return sb.ToString();
        }

        static string ScalarRepr(object? value) => value switch
        {
            null => "None",
            Undefined => "Undefined",
            bool b => b ? "True" : "False",
            long l => l.ToString(CultureInfo.InvariantCulture),
            double d => FormatFloat(d),
            string s => ReprString(s),
            JinjaCallable c => c.Display,
            _ => value.ToString() ?? "",
        };

        static void WriteRepr(StringBuilder sb, object? value, int depth, RenderBudget budget)
        {
            void Append(string text)
            {
                budget.Text(text.Length);
                sb.Append(text);
            }

            switch (value)
            {
                case JinjaList l:
                    budget.CheckValueDepth(depth);
                    Append(l.IsTuple ? "(" : "[");
                    for (int i = 0; i < l.Items.Count; i++)
                    {
                        if (i > 0)
                            Append(", ");
                        WriteRepr(sb, l.Items[i], depth + 1, budget);
                    }
                    Append(!l.IsTuple ? "]" : l.Items.Count == 1 ? ",)" : ")");
                    break;
                case JinjaDict d:
                    budget.CheckValueDepth(depth);
                    Append("{");
                    bool first = true;
                    foreach (var (key, item) in d)
                    {
                        Append(first ? "" : ", ");
                        first = false;
                        Append(ReprString(key));
                        Append(": ");
                        WriteRepr(sb, item, depth + 1, budget);
                    }
                    Append("}");
                    break;
                case JinjaNamespace ns:
                    budget.CheckValueDepth(depth);
                    Append("<Namespace ");
                    WriteRepr(sb, ns.Attributes, depth + 1, budget);
                    Append(">");
                    break;
                default:
                    Append(ScalarRepr(value));
                    break;
            }
        }

        static string ReprString(string s)
        {
            char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
            var sb = new StringBuilder().Append(quote);
            foreach (char c in s)
            {
                switch (c)
                {
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    default:
                        if (c == quote)
                            sb.Append('\\').Append(c);
                        else if (c < 0x20 || (c >= 0x7f && c < 0xa0) || c == 0xad)
                            sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                        else if (!char.IsSurrogate(c) && IsUnprintable(c))
                            sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        else
                            sb.Append(c);
                        break;
                }
            }
            return sb.Append(quote).ToString();
        }

        static bool IsUnprintable(char c) => c != ' ' && char.GetUnicodeCategory(c) switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.SpaceSeparator or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned => true,
            _ => false,
        };

        /// <summary>Python's repr of a float: shortest round-trip digits, "1.0" not "1", exponent from 1e16 and below 1e-4.</summary>
        public static string FormatFloat(double d)
        {
            if (double.IsNaN(d)) return "nan";
            if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
            if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";

            // "R" gives the shortest digits that round-trip; re-lay them out Python's way.
            string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
            int e = r.IndexOf('E');
            string mantissa = e < 0 ? r : r[..e];
            int exponent = e < 0 ? 0 : int.Parse(r[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            int dot = mantissa.IndexOf('.');
            string whole = dot < 0 ? mantissa : mantissa[..dot];
            string all = whole + (dot < 0 ? "" : mantissa[(dot + 1)..]);
            int point = whole.Length + exponent; // digits before the decimal point
            int lead = all.Length - all.TrimStart('0').Length;
            string digits = all.TrimStart('0').TrimEnd('0');
            point -= lead;

            int sci = point - 1;
            string body;
            if (sci >= -4 && sci < 16)
            {
                if (point <= 0)
                    body = "0." + new string('0', -point) + digits;
                else if (point >= digits.Length)
                    body = digits + new string('0', point - digits.Length) + ".0";
                else
                    body = digits[..point] + "." + digits[point..];
            }
            else
            {
                body = digits[..1] + (digits.Length > 1 ? "." + digits[1..] : "")
                    + "e" + (sci < 0 ? "-" : "+") + Math.Abs(sci).ToString("00", CultureInfo.InvariantCulture);
            }
            return d < 0 ? "-" + body : body;
        }

    }
}
