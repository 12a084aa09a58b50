using System;
using System.Collections.Generic;

namespace GraLoRA.Text.Jinja
{
    /// <summary>Jinja's tests: "value is name", "value is name(arg)", also used by select and selectattr.</summary>
    internal static class TestFunctions
    {
        static readonly Dictionary<string, Func<object?, CallArguments, bool>> All = new()
        {
            ["defined"] = (v, _) => v is not Undefined,
            ["undefined"] = (v, _) => v is Undefined,
            ["none"] = (v, _) => v is null,
            ["boolean"] = (v, _) => v is bool,
            ["true"] = (v, _) => v is true,
            ["false"] = (v, _) => v is false,
            ["string"] = (v, _) => v is string,
            ["number"] = (v, _) => v is long or double or bool,
            ["integer"] = (v, _) => v is long,
            ["float"] = (v, _) => v is double,
            ["mapping"] = (v, _) => v is JinjaDict,
            // As in Python's Jinja, undefined is iterable (as an empty sequence); @huggingface/jinja says no.
            ["iterable"] = (v, _) => v is string or JinjaList or JinjaDict or Undefined,
            ["sequence"] = (v, _) => v is string or JinjaList or JinjaDict,
            ["callable"] = (v, _) => v is JinjaCallable,
            ["even"] = (v, _) => Integer(v, "even") % 2 == 0,
            ["odd"] = (v, _) => Integer(v, "odd") % 2 != 0,
            ["divisibleby"] = (v, a) => Integer(a.Get(0, "num"), "divisibleby") is long n && n != 0 && Integer(v, "divisibleby") % n == 0,
            ["lower"] = (v, _) => v is string s && s == s.ToLowerInvariant(),
            ["upper"] = (v, _) => v is string s && s == s.ToUpperInvariant(),
            ["eq"] = (v, a) => Operations.AreEqual(v, a.Get(0, "other")),
            ["ne"] = (v, a) => !Operations.AreEqual(v, a.Get(0, "other")),
            ["lt"] = (v, a) => Operations.Compare(v, a.Get(0, "other")) < 0,
            ["le"] = (v, a) => Operations.Compare(v, a.Get(0, "other")) <= 0,
            ["gt"] = (v, a) => Operations.Compare(v, a.Get(0, "other")) > 0,
            ["ge"] = (v, a) => Operations.Compare(v, a.Get(0, "other")) >= 0,
            ["in"] = (v, a) => Operations.Contains(a.Get(0, "seq"), v),
            ["sameas"] = (v, a) => SameAs(v, a.Get(0, "other")),
        };

        static readonly Dictionary<string, string> Aliases = new()
        {
            ["equalto"] = "eq", ["=="] = "eq", ["!="] = "ne", ["lessthan"] = "lt", ["<"] = "lt", ["<="] = "le",
            ["greaterthan"] = "gt", [">"] = "gt", [">="] = "ge",
        };

        public static bool Apply(string name, object? value, CallArguments args)
        {
            if (!All.TryGetValue(Aliases.GetValueOrDefault(name, name), out var test))
                throw new RenderException($"unknown test '{name}'");
            return test(value, args);
        }

        static long Integer(object? v, string test) => v switch
        {
            long l => l,
            bool b => b ? 1 : 0,
            _ => throw new RenderException($"test '{test}' needs an integer, not '{Values.TypeName(v)}'"),
        };

        // Python's "is": same object; small values compare by value, as CPython's caches make them.
        static bool SameAs(object? a, object? b) => (a, b) switch
        {
            (null, null) => true,
            (bool x, bool y) => x == y,
            (long x, long y) => x == y,
            (string x, string y) => x == y,
            _ => ReferenceEquals(a, b),
        };
    }
}
