using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace GraLoRA.Text.Jinja
{
    /// <summary>Methods templates call on values ("text".strip(), message.get("x")) and the global functions.</summary>
    internal static class Methods
    {
        /// <summary>A bound str method, or null when Python's str has no such method we support.</summary>
        public static JinjaCallable? ForString(string s, string name)
        {
            Func<CallArguments, object?>? f = name switch
            {
                "strip" => a => Strip(s, a.Get(0, "chars"), left: true, right: true),
                "lstrip" => a => Strip(s, a.Get(0, "chars"), left: true, right: false),
                "rstrip" => a => Strip(s, a.Get(0, "chars"), left: false, right: true),
                "split" => a => Split(s, a.Get(0, "sep"), a.Get(1, "maxsplit", -1L)),
                "splitlines" => _ => new JinjaList(SplitLines(s)),
                "startswith" => a => Affix(s, a.Get(0, "prefix"), "startswith", (x, p) => x.StartsWith(p, StringComparison.Ordinal)),
                "endswith" => a => Affix(s, a.Get(0, "suffix"), "endswith", (x, p) => x.EndsWith(p, StringComparison.Ordinal)),
                "upper" => _ => Charged(s).ToUpperInvariant(),
                "lower" => _ => Charged(s).ToLowerInvariant(),
                "title" => _ => Title(Charged(s)),
                "capitalize" => _ => Capitalize(Charged(s)),
                "replace" => a => Replace(s, ArgString(a.Get(0, "old"), "replace"), ArgString(a.Get(1, "new"), "replace"), a.Get(2, "count", -1L)),
                "find" => a => (long)Scanned(s).IndexOf(ArgString(a.Get(0, "sub"), "find"), StringComparison.Ordinal),
                "count" => a => CountOccurrences(s, ArgString(a.Get(0, "sub"), "count")),
                "join" => a => Join(s, Values.Iterate(a.Get(0, "iterable")).Select(Values.Str)),
                _ => null,
            };
            return f == null ? null : new JinjaCallable("str." + name, f);
        }

        /// <summary>A bound dict method: get, items, keys, values.</summary>
        public static JinjaCallable? ForDict(JinjaDict d, string name)
        {
            Func<CallArguments, object?>? f = name switch
            {
                "get" => a => a.Get(0, "key") is string key && d.TryGetValue(key, out var v) ? v : a.Get(1, "default"),
                "items" => _ => Items(d),
                "keys" => _ => new JinjaList(Walked(d).Keys),
                "values" => _ => new JinjaList(Walked(d).Select(p => p.Value)),
                _ => null,
            };
            return f == null ? null : new JinjaCallable("dict." + name, f);
        }

        public static JinjaList Items(JinjaDict d) =>
            new(Walked(d).Select(p => (object?)new JinjaList(new[] { p.Key, p.Value }, isTuple: true)));

        /// <summary><paramref name="s"/>, with a new string of its length charged to the rendering's budget (for methods that copy it).</summary>
        public static string Charged(string s)
        {
            RenderBudget.Current.Text(s.Length);
            return s;
        }

        static string Scanned(string s)
        {
            RenderBudget.Current.Scan(s.Length);
            return s;
        }

        /// <summary><paramref name="d"/>, with a walk over its entries charged first.</summary>
        static JinjaDict Walked(JinjaDict d)
        {
            RenderBudget.Current.Items(d.Count);
            return d;
        }

        static JinjaList Walked(JinjaList l)
        {
            RenderBudget.Current.Items(l.Items.Count);
            return l;
        }

        /// <summary>A strip set as a hash set, so stripping costs one look-up per character, charged first.</summary>
        static HashSet<char> CharSet(int length, string set)
        {
            RenderBudget.Current.Scan(length);
            return new HashSet<char>(set);
        }

        /// <summary>string.Join, with the result charged before it is built.</summary>
        public static string Join(string separator, IEnumerable<string> pieces)
        {
            var parts = pieces.ToList();
            RenderBudget.Current.Text(parts.Sum(p => (long)p.Length) + (long)separator.Length * Math.Max(0, parts.Count - 1));
            return string.Join(separator, parts);
        }

        // ---- Globals ----

        public static void AddGlobals(Dictionary<string, object?> globals)
        {
            globals["range"] = new JinjaCallable("range", Range);
            globals["namespace"] = new JinjaCallable("namespace", Namespace);
            globals["dict"] = new JinjaCallable("dict", a =>
            {
                var d = new JinjaDict();
                foreach (var (k, v) in a.Keywords)
                    d[k] = v;
                return d;
            });
            globals["raise_exception"] = new JinjaCallable("raise_exception",
                a => throw new RaisedException(Values.Str(a.Get(0, "message", "raise_exception() was called"))));
        }

        /// <summary>Python's sandboxed Jinja refuses longer ranges (MAX_RANGE), so no template transformers renders uses one.</summary>
        const long MaxRange = 100_000;

        static object Range(CallArguments a)
        {
            var numbers = a.Positional.Select(v => v is long l ? l : throw new RenderException($"range() arguments must be integers, not '{Values.TypeName(v)}'")).ToList();
            var (start, stop, step) = numbers.Count switch
            {
                1 => (0L, numbers[0], 1L),
                2 => (numbers[0], numbers[1], 1L),
                3 => (numbers[0], numbers[1], numbers[2]),
                _ => throw new RenderException($"range expected 1 to 3 arguments, got {numbers.Count}"),
            };
            if (step == 0)
                throw new RenderException("range() arg 3 must not be zero");
            // The length without walking it (exact in 128 bits, so no overflow), checked before anything is allocated.
            Int128 span = step > 0 ? (Int128)stop - start : (Int128)start - stop;
            Int128 length = span <= 0 ? 0 : (span + Int128.Abs(step) - 1) / Int128.Abs(step);
            if (length > MaxRange)
                throw new RenderException($"range too big: the sandbox blocks ranges longer than {MaxRange:N0} items, as Python's Jinja does");
            RenderBudget.Current.Items((long)length);
            var items = new List<object?>((int)length);
            for (long i = 0; i < (long)length; i++)
                items.Add(start + i * step);
            return new JinjaList(items);
        }

        static object Namespace(CallArguments a)
        {
            var ns = new JinjaNamespace();
            foreach (object? source in a.Positional)
            {
                if (source is not JinjaDict d)
                    throw new RenderException($"namespace() takes keyword arguments or a dict, not '{Values.TypeName(source)}'");
                foreach (var (k, v) in Walked(d))
                    ns.Attributes[k] = v;
            }
            foreach (var (k, v) in a.Keywords)
                ns.Attributes[k] = v;
            return ns;
        }

        // ---- Python's str methods ----

        static string ArgString(object? v, string method) =>
            v as string ?? throw new RenderException($"{method}() argument must be str, not '{Values.TypeName(v)}'");

        public static string Strip(string s, object? chars, bool left, bool right)
        {
            Func<char, bool> strip = chars switch
            {
                null or Undefined => Values.IsSpace,
                string set => CharSet(set.Length, set).Contains,
                _ => throw new RenderException($"strip arg must be None or str, not '{Values.TypeName(chars)}'"),
            };
            int start = 0, end = s.Length;
            if (left)
                while (start < end && strip(s[start]))
                    start++;
            if (right)
                while (end > start && strip(s[end - 1]))
                    end--;
            RenderBudget.Current.Text(end - start);
            return s[start..end];
        }

        /// <summary>
        /// Python's str.split: without a separator, runs of whitespace split and the ends are dropped; after maxsplit
        /// splits the rest is kept as it is (leading whitespace dropped, trailing kept), so "  a b ".split(None, 0) is ["a b "].
        /// </summary>
        static JinjaList Split(string s, object? sep, object? maxSplitArg)
        {
            long maxSplit = maxSplitArg switch
            {
                long m => m,
                bool b => b ? 1 : 0,
                null or Undefined => -1,
                _ => throw new RenderException($"'{Values.TypeName(maxSplitArg)}' object cannot be interpreted as an integer"),
            };
            RenderBudget.Current.Text(s.Length);
            var parts = new List<object?>();
            if (sep is null or Undefined)
            {
                // Runs of whitespace separate; no empty strings at the ends.
                int i = 0;
                while (true)
                {
                    while (i < s.Length && Values.IsSpace(s[i]))
                        i++;
                    if (i >= s.Length)
                        break;
                    if (maxSplit >= 0 && parts.Count >= maxSplit)
                    {
                        parts.Add(s[i..]);
                        break;
                    }
                    int start = i;
                    while (i < s.Length && !Values.IsSpace(s[i]))
                        i++;
                    parts.Add(s[start..i]);
                }
                return new JinjaList(parts);
            }
            string separator = ArgString(sep, "split");
            if (separator.Length == 0)
                throw new RenderException("empty separator");
            int from = 0;
            while (maxSplit < 0 || parts.Count < maxSplit)
            {
                int at = s.IndexOf(separator, from, StringComparison.Ordinal);
                if (at < 0)
                    break;
                parts.Add(s[from..at]);
                from = at + separator.Length;
            }
            parts.Add(s[from..]);
            return new JinjaList(parts);
        }

        /// <summary>Python's str.splitlines(): any line break ends a line; the breaks are dropped.</summary>
        public static List<object?> SplitLines(string s)
        {
            RenderBudget.Current.Text(s.Length);
            var lines = new List<object?>();
            int start = 0;
            for (int i = 0; i < s.Length; i++)
            {
                char c = s[i];
                if (c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')
                {
                    lines.Add(s[start..i]);
                    if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n')
                        i++;
                    start = i + 1;
                }
            }
            if (start < s.Length)
                lines.Add(s[start..]);
            return lines;
        }

        static bool Affix(string s, object? affix, string method, Func<string, string, bool> test) => affix switch
        {
            string a => test(s, a),
            JinjaList l => Walked(l).Items.Any(x => test(s, ArgString(x, method))),
            _ => throw new RenderException($"{method} first arg must be str or a tuple of str, not '{Values.TypeName(affix)}'"),
        };

        /// <summary>Python's str.title(): a letter after a non-letter is upper case, others lower case.</summary>
        public static string Title(string s)
        {
            var sb = new StringBuilder(s.Length);
            bool previousCased = false;
            foreach (char c in s)
            {
                bool cased = char.IsLetter(c);
                sb.Append(!cased ? c : previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
                previousCased = cased;
            }
            return sb.ToString();
        }

        public static string Capitalize(string s) =>
            s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

        public static string Replace(string s, string old, string replacement, object? countArg)
        {
            long count = countArg is long c ? c : -1;
            // The result's length, known before it is built: occurrences (capped by count) times the growth.
            long found = old.Length == 0 ? Values.Length(s) + 1 : CountOccurrences(s, old);
            if (count >= 0)
                found = Math.Min(found, count);
            RenderBudget.Current.Text(s.Length + found * (replacement.Length - (long)old.Length));
            if (count < 0)
                return old.Length == 0 ? replacement + string.Join(replacement, Values.CodePoints(s)) + (s.Length > 0 ? replacement : "") : s.Replace(old, replacement, StringComparison.Ordinal);
            var sb = new StringBuilder();
            int from = 0;
            for (long done = 0; done < count; done++)
            {
                int at = old.Length == 0 ? (from <= s.Length ? from : -1) : s.IndexOf(old, from, StringComparison.Ordinal);
                if (at < 0)
                    break;
                sb.Append(s, from, at - from).Append(replacement);
                if (old.Length == 0)
                {
                    if (at < s.Length)
                        sb.Append(s[at]);
                    from = at + 1;
                }
                else
                    from = at + old.Length;
            }
            if (from < s.Length)
                sb.Append(s, from, s.Length - from);
            return sb.ToString();
        }

        static long CountOccurrences(string s, string sub)
        {
            RenderBudget.Current.Scan(s.Length);
            if (sub.Length == 0)
                return Values.CodePoints(s).Count + 1;
            long n = 0;
            for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal))
                n++;
            return n;
        }
    }
}
