using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using GraLoRA.Text.Jinja;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>
    /// The engine's features one by one, with the results Python's Jinja gives under transformers' settings
    /// (trim_blocks, lstrip_blocks). Parity with @huggingface/jinja is in JinjaReferenceTests.
    /// </summary>
    public class JinjaTests
    {
        const string Data = """
            {"x": 1, "xs": [3, 1, 2], "name": "World",
             "msgs": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                      {"role": "assistant", "content": "A", "tool_calls": [{"id": "1"}]}]}
            """;

        static readonly (string Id, string Template, string Expected)[] Cases =
        {
            // Whitespace control
            ("dash-strips-both-sides", "a \n {{- name -}} \n b", "aWorldb"),
            ("dash-on-blocks", "a\n  {%- if true -%}\n  B  \n  {%- endif -%}\n  c", "aBc"),
            ("trim-blocks-one-newline", "{% if true %}\n\nA{% endif %}", "\nA"),
            ("trim-blocks-not-after-expression", "{{ x }}\nA", "1\nA"),
            ("lstrip-blocks-at-line-start", "A\n    {% if true %}B{% endif %}", "A\nB"),
            ("lstrip-blocks-not-mid-line", "A  {% if true %}B{% endif %}", "A  B"),
            ("lstrip-not-before-expression", "  {{ x }}", "  1"),
            ("comment-trimmed-like-block", "  {# note #}\nA", "A"),
            ("one-trailing-newline-dropped", "A\n\n", "A\n"),
            ("crlf-read-as-lf", "a\r\n{% if true %}\r\nb\r\n  {% endif %}\r\nc{{ 'd\r\ne' }}\r\n", "a\nb\ncd\ne"),
            ("indented-loop", "<\n  {% for v in xs %}\n    {{ v }}\n  {% endfor %}\n>", "<\n    3\n    1\n    2\n>"),
            // Python's way of printing values
            ("print-python-values", "{{ true }} {{ false }} {{ none }} {{ [1, 'a', none, true, 1.5] }} {{ {'k': \"it's\"} }} {{ (1,) }} {{ (1, 2) }}",
                "True False None [1, 'a', None, True, 1.5] {'k': \"it's\"} (1,) (1, 2)"),
            ("float-repr", "{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.5e-5 }} {{ 10 / 4 }} {{ 2.0 * 3 }} {{ 123456789.125 }}",
                "1.0 0.30000000000000004 1e+16 1.5e-05 2.5 6.0 123456789.125"),
            ("undefined-prints-nothing", "[{{ missing }}][{{ 'a' ~ missing }}]", "[][a]"),
            // Lenient like @huggingface/jinja (Python's Jinja raises UndefinedError here).
            ("undefined-attributes-are-undefined", "[{{ missing.deep.er }}][{{ none.attr }}][{{ missing is defined }}]", "[][][False]"),
            ("string-filter", "{{ none|string }} {{ true|string }} {{ [1]|string }}", "None True [1]"),
            // Operators
            ("python-floor-and-modulo", "{{ -7 % 3 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ -7.5 % 2 }} {{ 2 ** -1 }}", "2 -4 -2 0.5 0.5"),
            ("equality", "{{ 1 == 1.0 }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ '1' == 1 }} {{ true == 1 }} {{ none == missing }}",
                "True True True False True False"),
            ("chained-comparison", "{{ 0 < x < 3 }} {{ 1 < x < 3 }}", "True False"),
            ("precedence", "{{ 'a' + ' b '|trim }} {{ -3|abs }} {{ xs|length - 1 }} {{ not x == 2 }} {{ 2 + 3 * 4 ** 2 }}", "ab 3 2 True 50"),
            ("and-or-return-operands", "{{ 0 or 'b' }} {{ 'a' and 'b' }} {{ [] and 'never' }}", "b b []"),
            ("sequence-operators", "{{ '-' * 3 }} {{ ([1] + [2])|join(',') }} {{ 'ab' in 'cabd' }}", "--- 1,2 True"),
            // Loops
            ("loop-variables", "{% for v in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}",
                "10TrueFalse3 21FalseFalse3 32FalseTrue3 "),
            ("loop-prev-next", "{% for v in xs %}{{ loop.previtem }}>{{ v }}>{{ loop.nextitem }} {% endfor %}", ">3>1 3>1>2 1>2> "),
            ("loop-cycle", "{% for i in range(4) %}{{ loop.cycle('a', 'b') }}{% endfor %}", "abab"),
            ("loop-filter-counts-kept-items", "{% for v in xs if v != 1 %}{{ loop.index }}/{{ loop.length }} {% endfor %}", "1/2 2/2 "),
            ("loop-else-when-filtered-out", "{% for v in xs if v > 10 %}{{ v }}{% else %}none{% endfor %}", "none"),
            ("loop-scope-per-iteration", "{% for i in [1, 2] %}{% if i == 1 %}{% set v = 'a' %}{% endif %}[{{ v }}]{% endfor %}", "[a][]"),
            ("loop-set-does-not-leak", "{% set v = 1 %}{% for i in [1] %}{% set v = 2 %}{% endfor %}{{ v }}", "1"),
            ("loop-over-string-and-undefined", "{% for c in 'ab' %}{{ c }}.{% endfor %}{% for c in missing %}never{% endfor %}", "a.b."),
            ("break-continue", "{% for i in range(10) %}{% if i == 5 %}{% break %}{% endif %}{% if i is odd %}{% continue %}{% endif %}{{ i }}{% endfor %}", "024"),
            ("namespace", "{% set ns = namespace(n=0, found=false) %}{% for v in xs %}{% set ns.n = ns.n + v %}{% if v == 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.n }} {{ ns.found }}", "6 True"),
            ("macro", "{% macro tag(name, body='') %}<{{ name }}>{{ body }}</{{ name }}>{% endmacro %}{{ tag('b', 'x') }}{{ tag(name='i') }}", "<b>x</b><i></i>"),
            // Filters
            ("capitalize-title", "{{ 'hELLO wORLD'|capitalize }} {{ \"they're 1st-rate (o'k)\"|title }} {{ \"they're 1st\".title() }}", "Hello world They're 1st-Rate (O'k) They'Re 1St"),
            ("strip-methods-take-chars", "{{ 'xxhixx'.strip('x') }}|{{ '\\n  a'.lstrip('\\n') }}|{{ 'abc'.rstrip('c') }}|{{ '  a  '.lstrip() }}.", "hi|  a|ab|a  ."),
            ("split", "{{ 'a b c'.split(' ', 1) }} {{ '  a  b '.split() }} {{ 'a,,b'.split(',') }}", "['a', 'b c'] ['a', 'b'] ['a', '', 'b']"),
            ("tojson-options", "{{ {'b': 'é', 'a': 1}|tojson(sort_keys=true) }} {{ {'b': 'é'}|tojson(ensure_ascii=true) }} {{ [1, {'a': 2}]|tojson(separators=(',', ':')) }}",
                "{\"a\": 1, \"b\": \"é\"} {\"b\": \"\\u00e9\"} [1,{\"a\":2}]"),
            ("tojson-values", "{{ [1.0, 2.5, 1e20, none, 'q\"\\\\\\n\\u0001']|tojson }}", "[1.0, 2.5, 1e+20, null, \"q\\\"\\\\\\n\\u0001\"]"),
            ("tojson-indent", "{{ {'a': [1, {}], 'b': []}|tojson(indent=2) }}", "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}"),
            ("strings-by-code-point", "{{ '👋é'|length }} {{ '👋é'[0] }} {{ '👋é'|reverse }} {{ '👋é'[-1:] }}", "2 👋 é👋 é"),
            ("selectattr-undefined-test", "{{ msgs|selectattr('tool_calls', 'undefined')|map(attribute='role')|join(',') }}", "system,user"),
            ("selectattr-truthiness", "{{ [{'a': 1}, {'a': 0}, {}]|selectattr('a')|list|length }} {{ [0, 1, 2]|select('odd')|join }} {{ [0, 1, 2]|reject|join }}", "1 1 0"),
            ("map", "{{ ['a', 'B']|map('upper')|join }} {{ msgs|map(attribute='tool_calls.0.id', default='-')|join }}", "AB --1"),
            ("items-dictsort", "{% for k, v in {'b': 1, 'a': 2}|items %}{{ k }}{{ v }}{% endfor %} {% for k, v in {'b': 1, 'a': 2}|dictsort %}{{ k }}{% endfor %}", "b1a2 ab"),
            ("sum-min-max-sort", "{{ xs|sum }} {{ xs|min }} {{ xs|max }} {{ xs|sort(reverse=true)|join }} {{ ['b', 'A', 'c']|sort|join }}", "6 1 3 321 Abc"),
            ("unique-ignores-case", "{{ ['a', 'A', 'b', 1, 1.0]|unique|list }}", "['a', 'b', 1]"),
            ("round", "{{ 2.5|round }} {{ 3.14159|round(2) }} {{ 2.1|round(method='ceil') }} {{ 2.9|round(0, 'floor') }}", "2.0 3.14 3.0 2.0"),
            ("int-float", "{{ 'abc'|int }} {{ 'abc'|int(7) }} {{ '12'|int }} {{ '-3.9'|int }} {{ '2.5'|float }} {{ 'x'|float }}", "0 7 12 -3 2.5 0.0"),
            ("undefined-length-and-default", "{{ missing|length }} {{ missing|default('d') }} {{ ''|d('e', true) }} {{ none|default('kept') }}", "0 d e None"),
            ("indent", "{{ 'a\\nb\\n\\nc\\n'|indent(2) }}|{{ 'a\\n\\nb'|indent('> ', first=true, blank=true) }}", "a\n  b\n\n  c\n|> a\n> \n> b"),
            ("wordcount-count-first-last", "{{ 'a b  c'|wordcount }} {{ xs|count }} {{ 'abc'|first }} {{ 'abc'|last }}", "3 3 a c"),
            // Tests
            ("tests-with-arguments", "{{ 6 is divisibleby 3 }} {{ x is equalto 1 }} {{ x is eq(2) }} {{ 'a' is in('abc') }} {{ 3 is gt 2 }} {{ none is sameas none }}", "True True False True True True"),
            ("type-tests", "{{ true is number }} {{ true is integer }} {{ 1.0 is float }} {{ {} is mapping }} {{ {} is iterable }} {{ missing is iterable }} {{ 'ab' is sequence }} {{ range is callable }} {{ 'ab' is lower }}",
                "True False True True True True True True True"),
            // Expressions
            ("literals", "{{ 'a' \"b\" }} {{ 'c' }} {{ [1, 2,]|length }} {{ {'a': 1,}['a'] }} {{ True }} {{ None is none }}", "ab c 2 1 True True"),
            ("dict-methods-before-keys", "{% for k, v in {'items': 'x'}.items() %}{{ k }}={{ v }}{% endfor %} {{ {'get': 1}['get'] }} {{ {'role': 'r'}.role }}", "items=x 1 r"),
            ("set-block-and-tuple", "{% set a, b = 'one', 2 %}{% set c %}{{ a }}-{{ b }}{% endset %}{{ c }}", "one-2"),
            ("slices", "{{ xs[::2] }} {{ xs[-1::-1] }} {{ xs[5:] }} {{ (1, 2, 3)[1:] }} {{ 'hello'[-3:] }}", "[3, 2] [2, 1, 3] [] (2, 3) llo"),
            ("dot-number", "{{ xs.0 }} {{ msgs.1.role }}", "3 user"),
            ("generation-block", "{% generation %}kept{% endgeneration %}", "kept"),
        };

        public static TheoryData<string> CaseIds()
        {
            var data = new TheoryData<string>();
            foreach (var c in Cases)
                data.Add(c.Id);
            return data;
        }

        static string Render(string template, string json = Data) => JinjaTemplate.Parse(template).Render(JinjaReference.Context(json));

        [Theory]
        [MemberData(nameof(CaseIds))]
        public void RendersLikePythonJinja(string id)
        {
            var c = Cases.Single(x => x.Id == id);
            Assert.Equal(c.Expected, Render(c.Template));
        }

        // ---- Errors ----

        public static TheoryData<string, string[]> SyntaxErrors() => new()
        {
            { "line one\n{% if x %}\n  {{ 1 + }}\n{% endif %}", new[] { "line 3, column 10", "'}}'" } },
            { "{% if x %}never closed", new[] { "line 1", "endif" } },
            { "{% for x in xs %}{% endif %}", new[] { "'endif'", "endfor" } },
            { "text {% endfor %}", new[] { "'endfor'" } },
            { "{% frobnicate %}", new[] { "unknown tag 'frobnicate'" } },
            { "{{ 'no end }}", new[] { "unterminated string" } },
            { "{{ x ? 1 }}", new[] { "unexpected character '?'" } },
            { "{{ x", new[] { "missing '}}'" } },
            { "{# open comment", new[] { "comment" } },
            { "{{ f(a=1, 2) }}", new[] { "positional argument follows keyword argument" } },
        };

        [Theory]
        [MemberData(nameof(SyntaxErrors))]
        public void SyntaxErrorsNameLineColumnAndToken(string template, string[] expectedInMessage)
        {
            var e = Assert.Throws<GraloraException>(() => JinjaTemplate.Parse(template));
            Assert.Equal("TemplateSyntaxError", e.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidData, e.Kind);
            Assert.Contains("line ", e.Message);
            foreach (string part in expectedInMessage)
                Assert.Contains(part, e.Message);
        }

        [Fact]
        public void RaiseExceptionSurfacesTheTemplatesMessage()
        {
            var template = JinjaTemplate.Parse("ok\n{% if x == 1 %}{{ raise_exception('Roles must alternate: ' ~ name) }}{% endif %}");
            var e = Assert.Throws<GraloraException>(() => template.Render(JinjaReference.Context(Data)));
            Assert.Equal("TemplateRaisedException", e.ErrorId);
            Assert.Equal(GraloraErrorKind.InvalidArgument, e.Kind);
            Assert.Contains("Roles must alternate: World", e.Message);
            Assert.Contains("line 2", e.Message);
        }

        public static TheoryData<string, string[]> RenderErrors() => new()
        {
            { "{{ x|no_such_filter }}", new[] { "unknown filter 'no_such_filter'", "line 1, column 5" } },
            { "\n{{ no_such_function(1) }}", new[] { "'no_such_function' is undefined", "line 2" } },
            { "{{ trim('x') }}", new[] { "'trim' is a filter" } },
            { "{{ msgs[0].nope() }}", new[] { "nope" } },
            { "{{ x is frobbed }}", new[] { "unknown test 'frobbed'" } },
            { "{% set x.a = 1 %}", new[] { "namespace" } },
            { "{{ 'a' + 1 }}", new[] { "'str' and 'int'" } },
            { "{{ 1 // 0 }}", new[] { "division by zero" } },
            { "{% for a, b in xs %}{% endfor %}", new[] { "unpack" } },
            { "{% for a in 5 %}{% endfor %}", new[] { "'int' object is not iterable" } },
            { "{{ 'x' in 5 }}", new[] { "not iterable" } },
        };

        [Theory]
        [MemberData(nameof(RenderErrors))]
        public void RenderErrorsNameTheProblem(string template, string[] expectedInMessage)
        {
            var e = Assert.Throws<GraloraException>(() => Render(template));
            Assert.Equal("TemplateRenderError", e.ErrorId);
            foreach (string part in expectedInMessage)
                Assert.Contains(part, e.Message);
        }

        // ---- .NET values in, and reuse ----

        [Fact]
        public void ParsesOnceRendersMany()
        {
            var template = JinjaTemplate.Parse("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}");
            var a = template.Render(new Dictionary<string, object?> { ["messages"] = new[] { new Dictionary<string, object?> { ["role"] = "user", ["content"] = "hi" } } });
            var b = template.Render(new Dictionary<string, object?> { ["messages"] = new List<object?>() });
            Assert.Equal("user:hi;", a);
            Assert.Equal("", b);
        }

        [Fact]
        public void MapsDotNetValues()
        {
            using var json = JsonDocument.Parse("""{"z": 1, "a": [true, null, 2.5, "s"]}""");
            var context = new Dictionary<string, object?>
            {
                ["i"] = 3,
                ["l"] = 4L,
                ["d"] = 0.5,
                ["f"] = 1.5f,
                ["m"] = 2.25m,
                ["b"] = true,
                ["n"] = null,
                ["c"] = 'c',
                ["ordered"] = new Dictionary<string, object?> { ["z"] = 1, ["a"] = 2, ["m"] = new[] { 1, 2 } },
                ["ro"] = new System.Collections.ObjectModel.ReadOnlyDictionary<string, string>(new Dictionary<string, string> { ["k"] = "v" }),
                ["json"] = json.RootElement,
                ["fn"] = (Func<IReadOnlyList<object?>, object?>)(args => $"called with {args.Count}: {args[0]}/{args[1]}"),
            };
            string output = JinjaTemplate.Parse(
                "{{ i + l }} {{ d }} {{ f }} {{ m }} {{ b }} {{ n }} {{ c }} {{ ordered }} {{ ro.k }} {{ json|tojson }} {{ json.a[2] * 2 }} {{ fn(1, 'x') }}")
                .Render(context);
            Assert.Equal("7 0.5 1.5 2.25 True None c {'z': 1, 'a': 2, 'm': [1, 2]} v {\"z\": 1, \"a\": [true, null, 2.5, \"s\"]} 5.0 called with 2: 1/x", output);
        }

        [Fact]
        public void TemplatesCannotChangeTheCallersData()
        {
            var inner = new Dictionary<string, object?> { ["a"] = 1 };
            var template = JinjaTemplate.Parse("{% set ns = namespace(v=data) %}{% set ns.v = 2 %}{{ ns.v }}{{ data.a }}");
            Assert.Equal("21", template.Render(new Dictionary<string, object?> { ["data"] = inner }));
            Assert.Equal(1, inner["a"]);
        }

        [Fact]
        public void UnsupportedContextValuesAreRejected()
        {
            var e = Assert.Throws<GraloraException>(() => JinjaTemplate.Parse("{{ x }}").Render(new Dictionary<string, object?> { ["x"] = new object() }));
            Assert.Equal("TemplateValueNotSupported", e.ErrorId);
            Assert.Contains("System.Object", e.Message);
        }
    }
}
