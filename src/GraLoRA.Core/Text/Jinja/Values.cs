using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GraLoRA.Text.Jinja
{
    // The value model. Templates see Python-like values, held as plain .NET objects where one fits:
    // null (None), bool, long (int), double (float), string (str); the classes below for the rest.

    /// <summary>A name or attribute that does not exist: renders as "", is falsy, and its attributes are undefined too.</summary>
    internal sealed class Undefined
    {
        /// <summary>What was looked up, for error messages ("messages[0].foo").</summary>
        public string Name { get; }
        public Undefined(string name) => Name = name;
    }

    /// <summary>A list, or a tuple when <see cref="IsTuple"/>.</summary>
    internal sealed class JinjaList
    {
        public List<object?> Items { get; }
        public bool IsTuple { get; }
        public JinjaList(IEnumerable<object?> items, bool isTuple = false)
        {
            Items = items.ToList();
            IsTuple = isTuple;
        }
    }

    /// <summary>A dict with string keys that keeps insertion order, as Python's does.</summary>
    internal sealed class JinjaDict : IEnumerable<KeyValuePair<string, object?>>
    {
        readonly List<string> _keys = new();
        readonly Dictionary<string, object?> _values = new(StringComparer.Ordinal);

        public int Count => _keys.Count;
        public IReadOnlyList<string> Keys => _keys;

        public object? this[string key]
        {
            set
            {
                if (!_values.ContainsKey(key))
                    _keys.Add(key);
                _values[key] = value;
            }
        }

        public bool TryGetValue(string key, out object? value) => _values.TryGetValue(key, out value);
        public bool ContainsKey(string key) => _values.ContainsKey(key);

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
        {
            foreach (string key in _keys)
                yield return new(key, _values[key]);
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>namespace(...): the one object a template may change ({% set ns.x = 1 %}), so loops can carry state out.</summary>
    internal sealed class JinjaNamespace
    {
        public JinjaDict Attributes { get; } = new();
    }

    /// <summary>Something a template can call: a global, a macro, a bound method like "text".strip.</summary>
    internal sealed class JinjaCallable
    {
        public string Name { get; }
        public Func<CallArguments, object?> Invoke { get; }
        /// <summary>How it prints: "&lt;function name&gt;", or Jinja's "&lt;Macro 'name'&gt;" for macros.</summary>
        public string Display { get; }
        public JinjaCallable(string name, Func<CallArguments, object?> invoke, string? display = null)
        {
            Name = name;
            Invoke = invoke;
            Display = display ?? "<function " + name + ">";
        }
    }

    /// <summary>Evaluated call arguments, with Python-style lookup by position or keyword.</summary>
    internal sealed class CallArguments
    {
        public static readonly CallArguments Empty = new(Array.Empty<object?>(), new List<(string, object?)>());

        public IReadOnlyList<object?> Positional { get; }
        public IReadOnlyList<(string Name, object? Value)> Keywords { get; }

        public CallArguments(IReadOnlyList<object?> positional, IReadOnlyList<(string Name, object? Value)> keywords)
        {
            Positional = positional;
            Keywords = keywords;
        }

        /// <summary>The argument at <paramref name="index"/> or named <paramref name="name"/>, else <paramref name="fallback"/>.</summary>
        public object? Get(int index, string name, object? fallback = null)
        {
            if (index >= 0 && index < Positional.Count)
                return Positional[index];
            foreach (var (key, value) in Keywords)
                if (key == name)
                    return value;
            return fallback;
        }

        public bool Has(int index, string name) => (index >= 0 && index < Positional.Count) || Keywords.Any(k => k.Name == name);

        /// <summary>The arguments from <paramref name="start"/> on, as a new positional list (select's test arguments).</summary>
        public CallArguments Skip(int start) =>
            new(Positional.Skip(start).ToList(), Keywords);
    }

    /// <summary>Conversions, truthiness and Python's str()/repr() for template values.</summary>
    internal static partial class Values
    {
        /// <summary>A .NET value as a template value; containers nested deeper than <paramref name="maxDepth"/> (or cyclic) are refused.</summary>
        public static object? FromDotNet(object? value, int maxDepth = 500) => FromDotNet(value, maxDepth, 0);

        static object? FromDotNet(object? value, int maxDepth, int depth)
        {
            if (depth > maxDepth)
                throw new GraloraException("ChatTemplateTooDeep", GraloraErrorKind.InvalidArgument,
                    $"A value passed to the template nests deeper than {maxDepth} levels (JinjaLimits.MaxRenderDepth), or contains itself.", maxDepth);
            return value switch
            {
                null => null,
                string or bool or long or double or Undefined or JinjaList or JinjaDict or JinjaNamespace or JinjaCallable => value,
                char c => c.ToString(),
                int or short or byte or sbyte or ushort or uint => Convert.ToInt64(value, CultureInfo.InvariantCulture),
                ulong u => u <= long.MaxValue ? (object)(long)u : (double)u,
                float or decimal => Convert.ToDouble(value, CultureInfo.InvariantCulture),
                JsonElement e => FromJson(e),
                JsonNode n => FromJsonNode(n, maxDepth, depth),
                Func<IReadOnlyList<object?>, object?> f => WrapDelegate(f),
                IDictionary d => FromPairs(Entries(d), maxDepth, depth),
                IReadOnlyDictionary<string, object?> d => FromPairs(d.Select(p => (p.Key, p.Value)), maxDepth, depth),
                IEnumerable items => new JinjaList(items.Cast<object?>().Select(x => FromDotNet(x, maxDepth, depth + 1))),
                _ => throw new GraloraException("TemplateValueNotSupported", GraloraErrorKind.InvalidArgument,
                    $"A value of type {value.GetType().FullName} cannot be passed to a template: use strings, numbers, booleans, null, lists, dictionaries or JSON elements.", value),
            };
        }

        static IEnumerable<(string, object?)> Entries(IDictionary d)
        {
            // The non-generic enumerator yields DictionaryEntry whatever the dictionary's generic types are.
            IDictionaryEnumerator e = d.GetEnumerator();
            while (e.MoveNext())
                yield return (Convert.ToString(e.Key, CultureInfo.InvariantCulture) ?? "", e.Value);
        }

        static JinjaDict FromPairs(IEnumerable<(string Key, object? Value)> pairs, int maxDepth, int depth)
        {
            var dict = new JinjaDict();
            foreach (var (key, value) in pairs)
                dict[key] = FromDotNet(value, maxDepth, depth + 1);
            return dict;
        }

        public static object? FromJson(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    var dict = new JinjaDict();
                    foreach (var p in e.EnumerateObject())
                        dict[p.Name] = FromJson(p.Value);
                    return dict;
                case JsonValueKind.Array:
                    return new JinjaList(e.EnumerateArray().Select(FromJson));
                case JsonValueKind.String:
                    return e.GetString();
                case JsonValueKind.Number:
                    return e.TryGetInt64(out long l) ? (object)l : e.GetDouble();
                case JsonValueKind.True:
                    return true;
                case JsonValueKind.False:
                    return false;
                case JsonValueKind.Null:
                    return null;
                default:
                    return new Undefined("(undefined JSON value)");
            }
        }

        static object? FromJsonNode(JsonNode n, int maxDepth, int depth) => n switch
        {
            JsonObject o => FromPairs(o.Select(p => (p.Key, (object?)p.Value)), maxDepth, depth),
            JsonArray a => new JinjaList(a.Select(x => FromDotNet(x, maxDepth, depth + 1))),
            JsonValue v when v.TryGetValue(out JsonElement e) => FromJson(e),
            JsonValue v => FromDotNet(v.GetValue<object>(), maxDepth, depth),
            _ => null,
        };

        static JinjaCallable WrapDelegate(Func<IReadOnlyList<object?>, object?> f) => new("function", args =>
        {
            if (args.Keywords.Count > 0)
                throw new RenderException("functions passed in the context take positional arguments only");
            return FromDotNet(f(args.Positional.Select(x => ToDotNet(x)).ToList()));
        });

        /// <summary>A template value as plain .NET data, for functions passed in the context.</summary>
        public static object? ToDotNet(object? value) => ToDotNet(value, 0);

        static object? ToDotNet(object? value, int depth)
        {
            if (value is JinjaList or JinjaDict or JinjaNamespace)
                RenderBudget.Current.CheckValueDepth(depth);
            return value switch
            {
                Undefined => null,
                JinjaList l => l.Items.Select(x => ToDotNet(x, depth + 1)).ToList(),
                JinjaDict d => d.ToDictionary(p => p.Key, p => ToDotNet(p.Value, depth + 1)),
                JinjaNamespace ns => ns.Attributes.ToDictionary(p => p.Key, p => ToDotNet(p.Value, depth + 1)),
                _ => value,
            };
        }

        public static bool IsTrue(object? value) => value switch
        {
            null or Undefined => false,
            bool b => b,
            long l => l != 0,
            double d => d != 0,
            string s => s.Length > 0,
            JinjaList l => l.Items.Count > 0,
            JinjaDict d => d.Count > 0,
            _ => true,
        };

        /// <summary>Python's type names, for error messages.</summary>
        public static string TypeName(object? value) => value switch
        {
            null => "NoneType",
            Undefined => "undefined",
            bool => "bool",
            long => "int",
            double => "float",
            string => "str",
            JinjaList l => l.IsTuple ? "tuple" : "list",
            JinjaDict => "dict",
            JinjaNamespace => "namespace",
            JinjaCallable => "function",
            _ => value.GetType().Name,
        };

        /// <summary>The code points of a string, each as a string (Python indexes and iterates strings by code point).</summary>
        public static List<string> CodePoints(string s)
        {
            RenderBudget.Current.Items(s.Length);
            var result = new List<string>(s.Length);
            for (int i = 0; i < s.Length; i++)
            {
                if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                {
                    result.Add(s.Substring(i, 2));
                    i++;
                }
                else
                    result.Add(s[i].ToString());
            }
            return result;
        }

        /// <summary>Python's s[index] (negative from the end), or null when out of range; no list of code points is built.</summary>
        public static string? CodePointAt(string s, long index)
        {
            RenderBudget.Current.Scan(s.Length);
            int count = CodePointCount(s);
            if (index < 0)
                index += count;
            if (index < 0 || index >= count)
                return null;
            if (count == s.Length)
                return s[(int)index].ToString();
            int i = 0;
            for (long k = 0; k < index; k++)
                i += char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
            return char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? s.Substring(i, 2) : s[i].ToString();
        }

        static int CodePointCount(string s)
        {
            int pairs = 0;
            for (int i = 1; i < s.Length; i++)
                if (char.IsLowSurrogate(s[i]) && char.IsHighSurrogate(s[i - 1]))
                    pairs++;
            return s.Length - pairs;
        }

        public static int Length(object? value) => value switch
        {
            string s => Scanned(s.Length) ? CodePointCount(s) : 0,
            JinjaList l => l.Items.Count,
            JinjaDict d => d.Count,
            JinjaNamespace ns => ns.Attributes.Count,
            Undefined => 0,
            _ => throw new RenderException($"object of type '{TypeName(value)}' has no len()"),
        };

        /// <summary>What a for loop or a filter walks over: list items, dict keys, string characters; undefined is empty.</summary>
        public static IEnumerable<object?> Iterate(object? value) => Charged(value switch
        {
            JinjaList l => l.Items,
            JinjaDict d => d.Keys,
            string s => CodePoints(s),
            Undefined => Array.Empty<object?>(),
            JinjaNamespace ns => ns.Attributes.Keys,
            _ => throw new RenderException($"'{TypeName(value)}' object is not iterable"),
        });

        static bool Scanned(long length)
        {
            RenderBudget.Current.Scan(length);
            return true;
        }

        /// <summary>Each item as it is taken: one step of the rendering's budget.</summary>
        static IEnumerable<object?> Charged(IEnumerable<object?> items)
        {
            var budget = RenderBudget.Current;
            foreach (object? item in items)
            {
                budget.Step();
                yield return item;
            }
        }

        /// <summary>Python's str.isspace() for one character.</summary>
        public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';
    }
}
