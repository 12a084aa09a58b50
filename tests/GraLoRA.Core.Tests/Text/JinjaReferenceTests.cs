using System;
using System.Collections.Generic;
using System.Linq;
using GraLoRA.Text.Jinja;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Engine features rendered by our engine and by @huggingface/jinja, compared string for string.
    /// The table keeps to behaviour where Hugging Face's engine agrees with Python's Jinja (what transformers runs);
    /// where they differ (printing True/None/lists, see JinjaTests) we follow Python.
    /// </summary>
    public class JinjaReferenceTests
    {
        const string Data = """
            {"name": "World", "x": 1, "n": null, "s": "héllo wörld", "xs": [3, 1, 2],
             "d": {"k": "v", "num": 7, "nested": {"list": [1, "two", {"three": 3}]}},
             "msg": {"role": "user", "content": "Hi there"},
             "msgs": [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
                      {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}],
             "text": "  Grüße 👋 — 你好\n\tcode:  x = 1  \n"}
            """;

        static readonly (string Id, string Template)[] Cases =
        {
            ("variable", "Hello {{ name }}!"),
            ("dash-control", "a  {{- name -}}  b\n  {%- if true -%}  c  {%- endif -%}  d"),
            ("trim-lstrip-blocks", "start\n{% if x %}\n    yes\n  {% endif %}\nafter\n"),
            ("indented-for", "<ul>\n  {% for i in xs %}\n    <li>{{ i }}</li>\n  {% endfor %}\n</ul>\n"),
            ("comments", "{# drop #}\nline\n  {#- c2 -#}  tail {# mid #} end"),
            ("expression-keeps-newline", "{{ name }}\n{{ x }}\n"),
            ("loop-variables", "{% for v in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.length }}{{ 'F' if loop.first else '-' }}{{ 'L' if loop.last else '-' }};{% endfor %}"),
            ("loop-prev-next", "{% for v in xs %}{{ loop.previtem|default('^') }}{{ v }}{{ loop.nextitem|default('$') }} {% endfor %}"),
            ("loop-else", "{% for v in [] %}item{% else %}empty{% endfor %}|{% for v in xs %}{{ v }}{% else %}empty{% endfor %}"),
            ("loop-filter", "{% for v in xs if v > 1 %}{{ v }}{{ ',' if not loop.last }}{% endfor %}"),
            ("loop-unpack-items", "{% for k, v in d.items() %}{{ k }}={{ v if v is string else v|tojson }};{% endfor %}"),
            ("loop-dict-keys", "{% for k in d %}{{ k }} {% endfor %}"),
            ("nested-loops", "{% for a in [1, 2] %}{% for b in ['x', 'y'] %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}|{{ loop.index }} {% endfor %}"),
            ("break-continue", "{% for i in range(10) %}{% if i == 7 %}{% break %}{% endif %}{% if i is even %}{% continue %}{% endif %}{{ i }}{% endfor %}"),
            ("namespace", "{% set ns = namespace(total=0, seen='') %}{% for v in xs %}{% set ns.total = ns.total + v %}{% set ns.seen = ns.seen ~ v %}{% endfor %}{{ ns.total }} {{ ns.seen }}"),
            ("set-scoping", "{% set y = 1 %}{% for i in [1] %}{% set y = 2 %}{{ y }}{% endfor %}{{ y }}{% if true %}{% set y = 3 %}{% endif %}{{ y }}"),
            ("set-block", "{% set b %}in {{ 'block' }}{% endset %}[{{ b }}]"),
            ("set-tuple", "{% set a, b = 1, 'two' %}{{ a }}{{ b }}"),
            ("macro", "{% macro greet(who, punct='!') %}Hi {{ who }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', punct='?') }}"),
            ("arithmetic", "{{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 5 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 1.5 + 1 }} {{ -3 + 1 }} {{ 4 / 2 }} {{ 10 - 2 - 3 }}"),
            ("concatenation", "{{ 'a' ~ 1 ~ 'b' }} {{ 'x' + 'y' }} {{ 'Hello ' ~ name|default('you') }}"),
            ("logic", "{{ 'yes' if 1 < 2 and not (3 == 4) or false else 'no' }} {{ 'yes' if x >= 1 and x <= 1 and x != 2 else 'no' }}"),
            ("and-or-values", "{{ '' or 'fallback' }} {{ 'first' and 'second' }} {{ none or 'n' }}"),
            ("membership", "{{ 'y' if 'll' in s else 'n' }}{{ 'y' if 2 in xs else 'n' }}{{ 'y' if 'k' in d else 'n' }}{{ 'y' if 'z' not in d else 'n' }}{{ 'y' if 9 not in xs else 'n' }}"),
            ("tests", "{{ 'y' if x is defined else 'n' }}{{ 'y' if nope is undefined else 'n' }}{{ 'y' if n is none else 'n' }}{{ 'y' if s is string else 'n' }}{{ 'y' if d is mapping else 'n' }}{{ 'y' if xs is iterable else 'n' }}{{ 'y' if 3 is odd else 'n' }}{{ 'y' if 4 is even else 'n' }}{{ 'y' if 1.5 is number else 'n' }}{{ 'y' if 1 is integer else 'n' }}{{ 'y' if true is boolean else 'n' }}{{ 'y' if false is false else 'n' }}{{ 'y' if x is not none else 'n' }}{{ 'y' if s is not mapping else 'n' }}"),
            ("ternary-chain", "{% for v in [1, 2, 3] %}{{ 'one' if v == 1 else 'two' if v == 2 else 'many' }} {% endfor %}"),
            ("inline-if-no-else", "[{{ 'shown' if x }}][{{ 'hidden' if n }}]"),
            ("attribute-subscript", "{{ msg['role'] }}/{{ msg.role }}/{{ msg.content.upper() }}/{{ xs[0] }}/{{ xs[-1] }}/{{ d.nested.list[2].three }}/{{ d['nested']['list'][1] }}"),
            ("undefined-chain", "[{{ missing }}][{{ missing.attr.deeper }}][{{ d.nope }}][{{ xs[10] }}][{{ n.attr }}]"),
            ("slicing", "{{ xs[1:]|join(',') }} {{ xs[::-1]|join(',') }} {{ xs[:2]|join(',') }} {{ xs[-2:]|join(',') }} {{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ msgs[1:]|length }}"),
            ("string-filters", "{{ '  x  '|trim }}|{{ 'ab'|upper }}|{{ 'AB'|lower }}|{{ 'hello world'|title }}|{{ 'hello'|capitalize }}|{{ 'aXbX'|replace('X', '-') }}"),
            ("length-filters", "{{ xs|length }} {{ 'abc'|length }} {{ d|length }} {{ s|length }}"),
            ("list-filters", "{{ xs|join(', ') }} {{ xs|first }} {{ xs|last }} {{ xs|reverse|join }} {{ xs|sort|join }} {{ [1, 2, 1, 3, 2]|unique|join(',') }}"),
            ("default-filter", "{{ missing|default('dflt') }} {{ ''|default('e', true) }} {{ 'v'|default('x') }}"),
            ("selectattr-map", "{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }} {{ msgs|rejectattr('role', 'equalto', 'user')|list|length }}"),
            ("tojson", "{{ d|tojson }}\n{{ [1, 'a', none, true, 2.5]|tojson }}\n{{ text|tojson }}"),
            ("tojson-indent", "{{ d|tojson(indent=2) }}\n{{ {'b': 1, 'a': [], 'c': {}}|tojson(indent=4) }}"),
            ("string-methods", "{{ '  hi  '.strip() }}|{{ 'a,b,,c'.split(',')|join('+') }}|{{ ' a b  c '.split()|length }}|{{ 'y' if s.startswith('hé') else 'n' }}{{ 'y' if s.endswith('x') else 'n' }}|{{ 'a-b-c'.replace('-', '') }}|{{ 'Mixed'.lower() }}{{ 'Mixed'.upper() }}"),
            ("string-strip-newlines", "[{{ '\\n\\nbody\\n'.lstrip('\\n') }}][{{ '\\nbody\\n\\n'.rstrip('\\n') }}][{{ text.split('\\n')[0] }}]"),
            ("dict-methods", "{{ d.get('k') }} {{ d.get('zz', 'dflt') }} {% for k in d.keys() %}{{ k }},{% endfor %} {{ d.values()|list|length }}"),
            ("range", "{% for i in range(3) %}{{ i }}{% endfor %} {% for i in range(1, 10, 3) %}{{ i }}{% endfor %} {% for i in range(5, 0, -2) %}{{ i }}{% endfor %}"),
            ("string-escapes", "{{ 'tab\\there' }}|{{ \"dq \\\"x\\\"\" }}|{{ 'sq \\'y\\'' }}|{{ 'new\\nline' }}|{{ 'back\\\\slash' }}|{{ 'a' 'b' }}"),
            ("unicode-whitespace", "[{{ text }}][{{ text|trim }}]"),
            ("indent-filter", "{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(4, true) }}"),
            ("number-filters", "{{ '42'|int + 1 }} {{ '3.5'|float * 2 }} {{ 3.9|int }} {{ -4|abs }} {{ x|float }}"),
            ("dict-literal-in-output", "{{ {'a': {'b': 1}}|tojson }} {{ {'k': 'v'}['k'] }}"),
            ("generation-tag", "{% for m in msgs %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %} {% endfor %}"),
            ("raise-exception", "before{{ raise_exception('Bad input: ' ~ name) }}"),
            ("raise-in-branch", "{% for m in msgs %}{% if m.role == 'assistant' %}{{ raise_exception('no assistants') }}{% endif %}{% endfor %}"),
            // Features Python's Jinja and @huggingface/jinja agree on (JinjaPythonParityTests has the ones where they differ).
            ("call-caller", "{% macro f(a) %}[{{ a }}|{{ caller() }}]{% endmacro %}{% call f(1) %}body{% endcall %}"),
            ("call-with-arguments", "{% macro f(a) %}[{{ caller(a, 2) }}|{{ caller(a) }}]{% endmacro %}{% call(x, y='d') f(1) %}{{ x }}{{ y }}{% endcall %}"),
            ("call-loop-in-macro", "{%- macro items(users) -%}{%- for user in users -%}{{ caller(user) }}{%- endfor -%}{%- endmacro -%}{% call(user) items(msgs) %}  - {{ user.role }}\n{% endcall %}"),
            ("call-nested", "{% macro outer() %}<{{ caller() }}>{% endmacro %}{% macro inner() %}({{ caller() }}){% endmacro %}{% call outer() %}{% call inner() %}deep{% endcall %}{% endcall %}"),
            ("call-body-scope", "{% set y = 1 %}{% macro f() %}{{ caller() }}{% endmacro %}{% for i in [5] %}{% call f() %}{{ y }}{{ i }}{% set y = 9 %}{{ y }}{% endcall %}{% endfor %}{{ y }}"),
            ("unpack-list-of-macros", "{% macro a(x) %}A{{ x }}{% endmacro %}{% macro b(x, y) %}B{{ x }}{{ y }}{% endmacro %}{% set ms = [a, b] %}{% set ps = [[1], [2, 3]] %}{% for i in range(2) %}{{ ms[i](*ps[i]) }}{% endfor %}"),
            ("filter-block", "{% filter upper %}abc {{ name }}{% endfilter %}"),
            ("syntax-unclosed-if", "{% if x %}no end"),
            ("syntax-bad-expression", "{{ 1 + }}"),
            ("unknown-filter", "{{ x|no_such_filter }}"),
            ("undefined-function", "{{ no_such_function(1) }}"),
        };

        public static TheoryData<string> CaseIds()
        {
            var data = new TheoryData<string>();
            foreach (var c in Cases)
                data.Add(c.Id);
            return data;
        }

        static readonly Lazy<Dictionary<string, ReferenceResult>> Reference = new(() =>
        {
            var results = JinjaReference.Render(Cases.Select(c => new ReferenceCase(c.Template, Data)));
            return Cases.Select((c, i) => (c.Id, results[i])).ToDictionary(p => p.Id, p => p.Item2);
        });

        [Theory]
        [MemberData(nameof(CaseIds))]
        public void MatchesHuggingFaceJinja(string id)
        {
            string template = Cases.Single(c => c.Id == id).Template;
            ReferenceResult expected = Reference.Value[id];
            string? actual = null;
            GraloraException? error = null;
            try
            {
                actual = JinjaTemplate.Parse(template).Render(JinjaReference.Context(Data));
            }
            catch (GraloraException e)
            {
                error = e;
            }

            if (expected.Error != null)
                Assert.True(error != null, $"the reference raised \"{expected.Error}\" but we rendered \"{actual}\"");
            else
            {
                Assert.True(error == null, $"we raised \"{error?.Message}\" but the reference rendered \"{expected.Output}\"");
                Assert.Equal(expected.Output, actual);
            }
        }

        [Fact]
        public void TableCoversEnoughFeatures() => Assert.True(Cases.Length >= 40 && Cases.Select(c => c.Id).Distinct().Count() == Cases.Length);
    }
}
