using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace GraLoRA.Text.Jinja
{
    /// <summary>Jinja's built-in filters ("value | name(args)") that chat templates use, with Jinja's semantics.</summary>
    internal static class Filters
    {
        static readonly Dictionary<string, Func<object?, CallArguments, object?>> All = new()
        {
            ["abs"] = (v, _) => v switch
            {
                long l => (object)Math.Abs(l),
                double d => Math.Abs(d),
                bool b => b ? 1L : 0L,
                _ => throw new RenderException($"bad operand type for abs(): '{Values.TypeName(v)}'"),
            },
            ["attr"] = (v, a) => Operations.GetAttribute(v, Values.Str(a.Get(0, "name"))),
            ["capitalize"] = (v, _) => Methods.Capitalize(Methods.Charged(Values.Str(v))),
            ["count"] = (v, _) => (long)Values.Length(v),
            ["length"] = (v, _) => (long)Values.Length(v),
            ["default"] = Default,
            ["d"] = Default,
            ["dictsort"] = DictSort,
            ["first"] = (v, _) => Values.Iterate(v).DefaultIfEmpty(new Undefined("first of an empty sequence")).First(),
            ["last"] = (v, _) => Values.Iterate(v).DefaultIfEmpty(new Undefined("last of an empty sequence")).Last(),
            ["float"] = ToFloat,
            ["int"] = ToInt,
            ["indent"] = Indent,
            ["items"] = (v, _) => v switch
            {
                JinjaDict d => Methods.Items(d),
                Undefined => new JinjaList(Array.Empty<object?>()),
                _ => throw new RenderException($"items filter needs a mapping, not '{Values.TypeName(v)}'"),
            },
            ["join"] = (v, a) => Methods.Join(Values.Str(a.Get(0, "d", "")),
                Values.Iterate(v).Select(x => Values.Str(a.Get(1, "attribute") is { } attr and not Undefined ? Attribute(x, attr) : x))),
            ["list"] = (v, _) => new JinjaList(Values.Iterate(v)),
            ["lower"] = (v, _) => Methods.Charged(Values.Str(v)).ToLowerInvariant(),
            ["upper"] = (v, _) => Methods.Charged(Values.Str(v)).ToUpperInvariant(),
            ["map"] = Map,
            ["max"] = (v, a) => Extreme(v, a, pickLarger: true),
            ["min"] = (v, a) => Extreme(v, a, pickLarger: false),
            ["select"] = (v, a) => Select(v, a, byAttribute: false, keep: true),
            ["reject"] = (v, a) => Select(v, a, byAttribute: false, keep: false),
            ["selectattr"] = (v, a) => Select(v, a, byAttribute: true, keep: true),
            ["rejectattr"] = (v, a) => Select(v, a, byAttribute: true, keep: false),
            ["replace"] = (v, a) => Methods.Replace(Values.Str(v), Values.Str(a.Get(0, "old")), Values.Str(a.Get(1, "new")), a.Get(2, "count")),
            ["reverse"] = (v, _) => v is string s
                ? string.Concat(Values.CodePoints(Methods.Charged(s)).AsEnumerable().Reverse())
                : new JinjaList(Values.Iterate(v).Reverse()),
            ["round"] = Round,
            ["safe"] = (v, _) => v,
            ["sort"] = Sort,
            ["string"] = (v, _) => Values.Str(v),
            ["sum"] = Sum,
            ["title"] = (v, _) => TitleFilter(Methods.Charged(Values.Str(v))),
            ["tojson"] = (v, a) => Json.Serialize(v, a),
            ["trim"] = (v, a) => Methods.Strip(Values.Str(v), a.Get(0, "chars"), left: true, right: true),
            ["unique"] = Unique,
            ["wordcount"] = (v, _) => (long)Methods.Charged(Values.Str(v)).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length,
        };

        public static bool Exists(string name) => All.ContainsKey(name);

        public static object? Apply(string name, object? value, CallArguments args)
        {
            if (!All.TryGetValue(name, out var filter))
                throw new RenderException($"unknown filter '{name}'");
            return filter(value, args);
        }

        static object? Default(object? v, CallArguments a)
        {
            bool boolean = Values.IsTrue(a.Get(1, "boolean", false));
            return v is Undefined || (boolean && !Values.IsTrue(v)) ? a.Get(0, "default_value", "") : v;
        }

        /// <summary>An attribute path like "function.name" (dots go deeper; digits index lists), as Jinja's attribute= arguments take.</summary>
        static object? Attribute(object? item, object? path)
        {
            if (path is long index)
                return Operations.GetItem(item, index);
            string dotted = Values.Str(path);
            RenderBudget.Current.Text(dotted.Length);
            foreach (string part in dotted.Split('.'))
                item = long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long i) ? Operations.GetItem(item, i) : Operations.GetItem(item, part);
            return item;
        }

        static object Map(object? v, CallArguments a)
        {
            if (a.Has(-1, "attribute"))
            {
                object? path = a.Get(-1, "attribute");
                bool hasDefault = a.Has(-1, "default");
                return new JinjaList(Values.Iterate(v).Select(x =>
                {
                    object? found = Attribute(x, path);
                    return found is Undefined && hasDefault ? a.Get(-1, "default") : found;
                }));
            }
            if (a.Get(0, "") is not string filter)
                throw new RenderException("map needs a filter name or attribute=...");
            var rest = a.Skip(1);
            return new JinjaList(Values.Iterate(v).Select(x => Apply(filter, x, rest)));
        }

        /// <summary>select/reject(test, args) and selectattr/rejectattr(attribute, test, args); no test means truthiness.</summary>
        static object Select(object? v, CallArguments a, bool byAttribute, bool keep)
        {
            int testIndex = byAttribute ? 1 : 0;
            object? path = byAttribute ? a.Get(0, "attr") : null;
            string? test = a.Get(testIndex, "") is string t ? t : null;
            var testArgs = a.Skip(testIndex + 1);
            return new JinjaList(Values.Iterate(v).Where(item =>
            {
                object? subject = byAttribute ? Attribute(item, path) : item;
                bool passed = test == null ? Values.IsTrue(subject) : TestFunctions.Apply(test, subject, testArgs);
                return passed == keep;
            }));
        }

        static Func<object?, object?> SortKey(CallArguments a, int attributeIndex, int caseIndex)
        {
            object? attribute = a.Get(attributeIndex, "attribute");
            bool caseSensitive = Values.IsTrue(a.Get(caseIndex, "case_sensitive", false));
            return item =>
            {
                object? key = attribute is null or Undefined ? item : Attribute(item, attribute);
                return !caseSensitive && key is string s ? s.ToLowerInvariant() : key;
            };
        }

        /// <summary>Charges a sort of <paramref name="count"/> items (n log n comparisons) before it runs.</summary>
        static void ChargeSort(int count) => RenderBudget.Current.Items(count * (long)Math.Max(1, Math.Log2(Math.Max(count, 1)) + 1));

        static object Sort(object? v, CallArguments a)
        {
            var key = SortKey(a, 2, 1);
            var keyed = Values.Iterate(v).Select(x => (Item: x, Key: key(x))).ToList();
            ChargeSort(keyed.Count);
            // Jinja sorts by [key] lists, so equal keys (even None, even undefined) are never ordered against each other.
            var comparer = Comparer<object?>.Create(Operations.SortOrder);
            // OrderBy is stable, like Python's sort (also in reverse: equal items keep their order).
            var sorted = Values.IsTrue(a.Get(0, "reverse", false)) ? keyed.OrderByDescending(p => p.Key, comparer) : keyed.OrderBy(p => p.Key, comparer);
            return new JinjaList(Sorted(sorted.Select(p => p.Item)));
        }

        /// <summary>Runs a sort; a template error from comparing two items (None &lt; 1) comes out as itself, not wrapped by the sorter.</summary>
        static List<object?> Sorted(IEnumerable<object?> sorted)
        {
            try
            {
                return sorted.ToList();
            }
            catch (InvalidOperationException e) when (e.InnerException is RenderException inner)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(inner);
                throw;
            }
        }

        static object DictSort(object? v, CallArguments a)
        {
            if (v is not JinjaDict d)
                throw new RenderException($"dictsort needs a mapping, not '{Values.TypeName(v)}'");
            bool caseSensitive = Values.IsTrue(a.Get(0, "case_sensitive", false));
            int by = Values.Str(a.Get(1, "by", "key")) == "value" ? 1 : 0;
            object? Key(JinjaList pair) => pair.Items[by] is string s && !caseSensitive ? s.ToLowerInvariant() : pair.Items[by];
            var pairs = Methods.Items(d).Items.Cast<JinjaList>();
            ChargeSort(d.Count);
            var comparer = Comparer<object?>.Create(Operations.Compare);
            var sorted = Values.IsTrue(a.Get(2, "reverse", false)) ? pairs.OrderByDescending(Key, comparer) : pairs.OrderBy(Key, comparer);
            return new JinjaList(Sorted(sorted));
        }

        static object? Extreme(object? v, CallArguments a, bool pickLarger)
        {
            var key = SortKey(a, 1, 0);
            object? best = null;
            object? bestKey = null;
            bool any = false;
            foreach (object? item in Values.Iterate(v))
            {
                object? k = key(item);
                if (!any || (Operations.Compare(k, bestKey) > 0) == pickLarger && Operations.Compare(k, bestKey) != 0)
                {
                    best = item;
                    bestKey = k;
                    any = true;
                }
            }
            return any ? best : new Undefined("max/min of an empty sequence");
        }

        static object? Sum(object? v, CallArguments a)
        {
            object? attribute = a.Get(0, "attribute");
            object? total = a.Get(1, "start", 0L);
            foreach (object? item in Values.Iterate(v))
                total = Operations.Binary("+", total, attribute is null or Undefined ? item : Attribute(item, attribute));
            return total;
        }

        static object Unique(object? v, CallArguments a)
        {
            var key = SortKey(a, 1, 0);
            var seen = new List<object?>();
            var result = new List<object?>();
            var budget = RenderBudget.Current;
            foreach (object? item in Values.Iterate(v))
            {
                object? k = key(item);
                budget.Items(seen.Count);
                if (seen.Any(s => Operations.AreEqual(s, k)))
                    continue;
                seen.Add(k);
                result.Add(item);
            }
            return new JinjaList(result);
        }

        static object? ToInt(object? v, CallArguments a)
        {
            object? fallback = a.Get(0, "default", 0L);
            switch (v)
            {
                case long or bool:
                    return v is bool b ? (b ? 1L : 0L) : v;
                case double d:
                    return double.IsFinite(d) ? (long)Math.Truncate(d) : fallback;
                case string s:
                    string t = s.Trim().Replace("_", "");
                    if (long.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
                        return l;
                    return double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double f) && double.IsFinite(f) ? (long)Math.Truncate(f) : fallback;
                default:
                    return fallback;
            }
        }

        static object? ToFloat(object? v, CallArguments a)
        {
            object? fallback = a.Get(0, "default", 0.0);
            return v switch
            {
                long l => (double)l,
                bool b => b ? 1.0 : 0.0,
                double => v,
                string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
                _ => fallback,
            };
        }

        static object Round(object? v, CallArguments a)
        {
            double value = v switch
            {
                long l => l,
                double d => d,
                bool b => b ? 1 : 0,
                _ => throw new RenderException($"round needs a number, not '{Values.TypeName(v)}'"),
            };
            int precision = a.Get(0, "precision", 0L) is long p ? (int)Math.Clamp(p, 0, 15) : 0;
            double scale = Math.Pow(10, precision);
            return Values.Str(a.Get(1, "method", "common")) switch
            {
                // Python's round(): halves go to the even neighbour.
                "common" => Math.Round(value, precision, MidpointRounding.ToEven),
                "ceil" => Math.Ceiling(value * scale) / scale,
                "floor" => Math.Floor(value * scale) / scale,
                var m => throw new RenderException($"round method must be 'common', 'ceil' or 'floor', not '{m}'"),
            };
        }

        /// <summary>
        /// Jinja's title filter (not Python's str.title): each word, split at whitespace and - ( { [ &lt;,
        /// gets its first character upper-cased and the rest lower-cased, so "they're" stays "They're".
        /// </summary>
        static string TitleFilter(string s)
        {
            var chars = s.ToCharArray();
            bool wordStart = true;
            for (int i = 0; i < chars.Length; i++)
            {
                char c = chars[i];
                bool separator = char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<';
                chars[i] = separator ? c : wordStart ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c);
                wordStart = separator;
            }
            return new string(chars);
        }

        /// <summary>Jinja's indent: every line but the first (unless first=true) and blank ones (unless blank=true).</summary>
        static object Indent(object? v, CallArguments a)
        {
            string pad = a.Get(0, "width", 4L) switch
            {
                string s => s,
                long n => new string(' ', (int)Math.Clamp(n, 0, 1000)),
                var w => throw new RenderException($"indent width must be an integer or a string, not '{Values.TypeName(w)}'"),
            };
            bool first = Values.IsTrue(a.Get(1, "first", false));
            bool blank = Values.IsTrue(a.Get(2, "blank", false));
            // As Jinja does: a newline is appended so a trailing newline survives splitlines.
            string text = Values.Str(v);
            var lines = Methods.SplitLines(text + "\n").Cast<string>().ToList();
            RenderBudget.Current.Text(text.Length + (long)pad.Length * (lines.Count + 1));
            string result = lines[0] + (lines.Count > 1
                ? "\n" + string.Join("\n", lines.Skip(1).Select(line => blank || line.Length > 0 ? pad + line : line))
                : "");
            return first ? pad + result : result;
        }
    }
}
