using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace GraLoRA.Text.Jinja
{
    /// <summary>Python's operators on template values: equality, ordering, arithmetic, membership, attribute and item access.</summary>
    internal static class Operations
    {
        static bool IsNumber(object? v) => v is long or double or bool;
        static bool IsInteger(object? v) => v is long or bool;
        static long AsLong(object? v) => v is bool b ? (b ? 1 : 0) : (long)v!;
        static double AsDouble(object? v) => v switch { bool b => b ? 1 : 0, long l => l, _ => (double)v! };

        /// <summary>Python ==: numbers across int/float/bool, lists and dicts by content.</summary>
        public static bool AreEqual(object? a, object? b) => AreEqual(a, b, 0, RenderBudget.Current);

        static bool AreEqual(object? a, object? b, int depth, RenderBudget budget)
        {
            if (IsNumber(a) && IsNumber(b))
                return IsInteger(a) && IsInteger(b) ? AsLong(a) == AsLong(b) : AsDouble(a) == AsDouble(b);
            switch (a, b)
            {
                case (null, null):
                case (Undefined, Undefined):
                    return true;
                case (string x, string y):
                    budget.Scan(Math.Min(x.Length, y.Length));
                    return x == y;
                case (JinjaList x, JinjaList y):
                    if (x.IsTuple != y.IsTuple || x.Items.Count != y.Items.Count)
                        return false;
                    budget.CheckValueDepth(depth);
                    for (int i = 0; i < x.Items.Count; i++)
                    {
                        budget.Step();
                        if (!AreEqual(x.Items[i], y.Items[i], depth + 1, budget))
                            return false;
                    }
                    return true;
                case (JinjaDict x, JinjaDict y):
                    if (x.Count != y.Count)
                        return false;
                    budget.CheckValueDepth(depth);
                    foreach (var (key, value) in x)
                    {
                        budget.Step();
                        if (!y.TryGetValue(key, out var other) || !AreEqual(value, other, depth + 1, budget))
                            return false;
                    }
                    return true;
                default:
                    return ReferenceEquals(a, b);
            }
        }

        /// <summary>
        /// Python ordering (&lt;, sort, min, max): numbers, strings, and lists as Python compares them: the first items
        /// that differ (by ==) decide, so equal items, even None, are never ordered.
        /// </summary>
        public static int Compare(object? a, object? b) => Compare(a, b, 0, RenderBudget.Current);

        static int Compare(object? a, object? b, int depth, RenderBudget budget)
        {
            if (IsNumber(a) && IsNumber(b))
                return IsInteger(a) && IsInteger(b) ? AsLong(a).CompareTo(AsLong(b)) : AsDouble(a).CompareTo(AsDouble(b));
            if (a is string x && b is string y)
            {
                budget.Scan(Math.Min(x.Length, y.Length));
                return Math.Sign(string.CompareOrdinal(x, y));
            }
            if (a is JinjaList la && b is JinjaList lb && la.IsTuple == lb.IsTuple)
            {
                budget.CheckValueDepth(depth);
                for (int i = 0; i < Math.Min(la.Items.Count, lb.Items.Count); i++)
                {
                    budget.Step();
                    if (!AreEqual(la.Items[i], lb.Items[i], depth + 1, budget))
                        return Compare(la.Items[i], lb.Items[i], depth + 1, budget);
                }
                return la.Items.Count.CompareTo(lb.Items.Count);
            }
            // Python's Jinja: comparing undefined fails as using it does.
            if (a is Undefined u || b is Undefined)
                throw new RenderException($"'{(a as Undefined ?? (Undefined)b!).Name}' is undefined");
            throw new RenderException($"'<' not supported between instances of '{Values.TypeName(a)}' and '{Values.TypeName(b)}'");
        }

        /// <summary>Python's sort order of keys: equal keys (==) need no ordering, as when Jinja's sort compares [key] lists.</summary>
        public static int SortOrder(object? a, object? b) => AreEqual(a, b) ? 0 : Compare(a, b);

        public static bool Compare(string op, object? a, object? b) => op switch
        {
            "==" => AreEqual(a, b),
            "!=" => !AreEqual(a, b),
            "<" => Compare(a, b) < 0,
            ">" => Compare(a, b) > 0,
            "<=" => Compare(a, b) <= 0,
            ">=" => Compare(a, b) >= 0,
            "in" => Contains(b, a),
            "not in" => !Contains(b, a),
            _ => throw new InvalidOperationException(op),
        };

        /// <summary>Python's "item in container". Nothing is in undefined.</summary>
        public static bool Contains(object? container, object? item) => container switch
        {
            string s when item is string sub => Scanned(s.Length) && s.Contains(sub, StringComparison.Ordinal),
            string => throw new RenderException($"'in <string>' requires string as left operand, not {Values.TypeName(item)}"),
            JinjaList l => Walked(l.Items.Count) && l.Items.Any(x => AreEqual(x, item)),
            JinjaDict d => item is string key && d.ContainsKey(key),
            JinjaNamespace ns => item is string key && ns.Attributes.ContainsKey(key),
            Undefined => false,
            _ => throw new RenderException($"argument of type '{Values.TypeName(container)}' is not iterable"),
        };

        static bool Walked(long items)
        {
            RenderBudget.Current.Items(items);
            return true;
        }

        static bool Scanned(long length)
        {
            RenderBudget.Current.Scan(length);
            return true;
        }

        public static object? Binary(string op, object? a, object? b)
        {
            if (op == "~")
                return Concat(Values.Str(a), Values.Str(b));
            if (IsNumber(a) && IsNumber(b))
                return Arithmetic(op, a, b);
            switch (op)
            {
                case "+" when a is string x && b is string y:
                    return Concat(x, y);
                case "+" when a is JinjaList x && b is JinjaList y && x.IsTuple == y.IsTuple:
                    RenderBudget.Current.Items((long)x.Items.Count + y.Items.Count);
                    return new JinjaList(x.Items.Concat(y.Items), x.IsTuple);
                case "*" when IsInteger(b) && a is string or JinjaList:
                    return Repeat(a, AsLong(b));
                case "*" when IsInteger(a) && b is string or JinjaList:
                    return Repeat(b, AsLong(a));
            }
            throw new RenderException($"unsupported operand type(s) for {op}: '{Values.TypeName(a)}' and '{Values.TypeName(b)}'");
        }

        static string Concat(string x, string y)
        {
            RenderBudget.Current.Text((long)x.Length + y.Length);
            return x + y;
        }

        /// <summary>Python's sequence * n (nothing for n ≤ 0), charged in full before anything is allocated.</summary>
        static object Repeat(object? sequence, long times)
        {
            var budget = RenderBudget.Current;
            long n = Math.Max(0, times);
            if (sequence is string s)
            {
                // Overflow-safe: more than the text limit allows fails either way.
                budget.Text(s.Length == 0 || n == 0 ? 0 : n > long.MaxValue / s.Length ? long.MaxValue : s.Length * n);
                if (s.Length == 0 || n == 0)
                    return "";
                return string.Create(s.Length * (int)n, s, (span, piece) =>
                {
                    for (int at = 0; at < span.Length; at += piece.Length)
                        piece.AsSpan().CopyTo(span[at..]);
                });
            }
            var list = (JinjaList)sequence!;
            budget.Items(list.Items.Count == 0 || n == 0 ? 0 : n > long.MaxValue / list.Items.Count ? long.MaxValue : list.Items.Count * n);
            return new JinjaList(Enumerable.Repeat(list.Items, (int)Math.Min(n, int.MaxValue)).SelectMany(x => x), list.IsTuple);
        }

        static object Arithmetic(string op, object? a, object? b)
        {
            bool integers = IsInteger(a) && IsInteger(b);
            if (integers)
            {
                long x = AsLong(a), y = AsLong(b);
                switch (op)
                {
                    case "+": return x + y;
                    case "-": return x - y;
                    case "*": return x * y;
                    case "/": return y == 0 ? throw DivisionByZero() : (double)x / y;
                    case "//": return y == 0 ? throw DivisionByZero() : FloorDiv(x, y);
                    case "%": return y == 0 ? throw DivisionByZero() : x - y * FloorDiv(x, y);
                    case "**":
                        if (y >= 0)
                            return (long)Math.Pow(x, y);
                        if (x == 0)
                            throw new RenderException("0.0 cannot be raised to a negative power");
                        return Math.Pow(x, y);
                }
            }
            else
            {
                double x = AsDouble(a), y = AsDouble(b);
                switch (op)
                {
                    case "+": return x + y;
                    case "-": return x - y;
                    case "*": return x * y;
                    case "/": return y == 0 ? throw DivisionByZero() : x / y;
                    case "//": return y == 0 ? throw DivisionByZero() : Math.Floor(x / y);
                    // Python: the remainder takes the divisor's sign.
                    case "%": return y == 0 ? throw DivisionByZero() : x - y * Math.Floor(x / y);
                    case "**": return Math.Pow(x, y);
                }
            }
            throw new InvalidOperationException(op);
        }

        static long FloorDiv(long x, long y)
        {
            long q = x / y;
            return (x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q;
        }

        static RenderException DivisionByZero() => new("division by zero");

        // Arms cast to object: otherwise the switch's natural type would turn every long into a double.
        public static object? Negate(object? value) => value switch
        {
            long l => (object)-l,
            bool b => b ? -1L : 0L,
            double d => -d,
            _ => throw new RenderException($"bad operand type for unary -: '{Values.TypeName(value)}'"),
        };

        /// <summary>
        /// obj.name, as Python's Jinja does it: the attribute (a method such as dict.items) first, else the key;
        /// undefined when neither exists. So props.items() works even when a JSON schema has a key "items".
        /// </summary>
        public static object? GetAttribute(object? obj, string name)
        {
            object? found = obj switch
            {
                JinjaDict d when Methods.ForDict(d, name) is { } method => method,
                JinjaDict d when d.TryGetValue(name, out var v) => v,
                JinjaNamespace ns when ns.Attributes.TryGetValue(name, out var v) => v,
                string s => Methods.ForString(s, name),
                _ => null,
            };
            if (found != null || (obj is JinjaDict dict && dict.ContainsKey(name)) || (obj is JinjaNamespace n && n.Attributes.ContainsKey(name)))
                return found;
            return new Undefined(DescribeMissing(obj, "." + name));
        }

        /// <summary>obj[key]: list and string indexes (negative from the end), dict keys; undefined when missing.</summary>
        public static object? GetItem(object? obj, object? key)
        {
            switch (obj)
            {
                case JinjaList l when IsInteger(key):
                    int? i = Index(AsLong(key), l.Items.Count);
                    return i is int li ? l.Items[li] : new Undefined(DescribeMissing(obj, $"[{key}]"));
                case string s when IsInteger(key):
                    return Values.CodePointAt(s, AsLong(key)) ?? (object)new Undefined(DescribeMissing(obj, $"[{key}]"));
                // obj["name"]: the key first, then the attribute (the reverse of obj.name).
                case JinjaDict d when key is string name && d.TryGetValue(name, out var value):
                    return value;
                case JinjaDict or JinjaNamespace or string or JinjaList when key is string name:
                    return GetAttribute(obj, name);
                default:
                    return new Undefined(DescribeMissing(obj, "[" + Values.Repr(key) + "]"));
            }
        }

        static int? Index(long index, int count)
        {
            if (index < 0)
                index += count;
            return index >= 0 && index < count ? (int)index : null;
        }

        static string DescribeMissing(object? obj, string access) =>
            obj is Undefined u ? u.Name + access : Values.TypeName(obj) + " object" + access;

        /// <summary>Python slicing of lists, tuples and strings.</summary>
        public static object Slice(object? obj, object? start, object? stop, object? step)
        {
            long? Bound(object? v, string what) => v switch
            {
                null or Undefined => null,
                long or bool => AsLong(v),
                _ => throw new RenderException($"slice {what} must be an integer or none, not '{Values.TypeName(v)}'"),
            };
            long stride = Bound(step, "step") ?? 1;
            if (stride == 0)
                throw new RenderException("slice step cannot be zero");

            IReadOnlyList<object?> items = obj switch
            {
                JinjaList l => l.Items,
                string s => Values.CodePoints(s),
                _ => throw new RenderException($"'{Values.TypeName(obj)}' object is not subscriptable"),
            };
            int n = items.Count;
            long Clamp(long? v, long fallback)
            {
                if (v == null)
                    return fallback;
                long x = v.Value < 0 ? v.Value + n : v.Value;
                return stride > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
            }
            long from = Clamp(Bound(start, "start"), stride > 0 ? 0 : n - 1);
            long to = Clamp(Bound(stop, "stop"), stride > 0 ? n : -1);
            RenderBudget.Current.Items(Math.Abs((to - from) / stride) + 1);
            var picked = new List<object?>();
            for (long i = from; stride > 0 ? i < to : i > to; i += stride)
                picked.Add(items[(int)i]);
            if (obj is not string)
                return new JinjaList(picked, ((JinjaList)obj!).IsTuple);
            RenderBudget.Current.Text(picked.Count * 2L);
            return string.Concat(picked);
        }
    }
}
