using System.Collections.Generic;
using System.Linq;
using GraLoRA.Text.Jinja;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Jinja features real chat templates use ({% call %} and caller(), *args and **kwargs, macro varargs/kwargs,
    /// {% filter %} blocks, str.split with maxsplit, sorting equal None/undefined items), compared with Python's Jinja.
    /// Expected outputs and errors come from Jinja2 3.1.6 run in a scratch folder the way transformers' chat-template code
    /// sets it up: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]) with
    /// its tojson, raise_exception and strftime_now. @huggingface/jinja disagrees on several of these (see
    /// JinjaReferenceTests for the ones it agrees on); Python's Jinja is what transformers runs, so it wins.
    /// </summary>
    public class JinjaPythonParityTests
    {
        static readonly (string Id, string Template, string? Expected)[] Cases =
        {
            ("call-caller", "{% macro f(a) %}[{{ a }}|{{ caller() }}]{% endmacro %}{% call f(1) %}body{% endcall %}", "[1|body]"),
            ("call-with-arguments", "{% macro f(a) %}[{{ caller(a, 2) }}|{{ caller(a) }}]{% endmacro %}{% call(x, y='d') f(1) %}{{ x }}{{ y }}{% endcall %}", "[12|1d]"),
            ("call-keyword-to-caller", "{% macro f() %}{{ caller(k=1) }}{% endmacro %}{% call(k) f() %}{{ k }}{% endcall %}", "1"),
            ("call-loop-in-macro", "{%- macro print_users(users) -%}{%- for user in users -%}{{ caller(user) }}{%- endfor -%}{%- endmacro -%}{% call(user) print_users([{'n': 'Jo'}, {'n': 'Al'}]) %}  - {{ user.n }}\n{% endcall %}", "  - Jo\n  - Al\n"),
            ("call-nested", "{% macro outer() %}<{{ caller() }}>{% endmacro %}{% macro inner() %}({{ caller() }}){% endmacro %}{% call outer() %}{% call inner() %}deep{% endcall %}{% endcall %}", "<(deep)>"),
            // Python: UndefinedError: No caller defined
            ("call-recursive-macro", "{% macro tree(node) %}{{ node.n }}{% if node.kids %}[{% for k in node.kids %}{% call tree(k) %}{{ caller() }}{% endcall %}{% endfor %}]{% endif %}{{ caller() }}{% endmacro %}{% call tree({'n': 'a', 'kids': [{'n': 'b'}, {'n': 'c', 'kids': [{'n': 'd'}]}]}) %}.{% endcall %}", null),
            ("call-body-scope", "{% set x = 1 %}{% macro f() %}{{ caller() }}{% endmacro %}{% for i in [5] %}{% call f() %}{{ x }}{{ i }}{% set x = 9 %}{{ x }}{% endcall %}{% endfor %}{{ x }}", "1591"),
            ("caller-assigned", "{% macro f() %}{% set c = caller %}{{ c() }}{{ caller }}{% endmacro %}{% call f() %}Z{% endcall %}", "Z<Macro anonymous>"),
            ("caller-undefined-prints-nothing", "{% macro f() %}[{{ caller }}]{% endmacro %}{{ f() }}", "[]"),
            ("caller-with-default", "{% macro f(caller=none) %}{{ caller is none }}{% endmacro %}{{ f() }}", "True"),
            ("unpack-args", "{% macro f(a, b=2, c=3) %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ f(*[1, 5]) }}|{{ f(*[1], c=9) }}|{{ f(**{'a': 7}) }}|{{ f(1, *[8]) }}|{{ f(*(1,2,3)) }}|{{ f(*'xy') }}|{{ f(*{'p': 1}) }}|{{ f(*undefined_name) }}", "153|129|723|183|123|xy3|p23|23"),
            ("unpack-into-methods-and-filters", "{{ 'a,b,c'.split(*[',', 1]) }} {{ [3,1,2]|sort(*[true]) }} {{ 'x-y'.replace(*['-', '+']) }}", "['a', 'b,c'] [3, 2, 1] x+y"),
            ("unpack-list-of-macros", "{% macro a(x) %}A{{ x }}{% endmacro %}{% macro b(x, y) %}B{{ x }}{{ y }}{% endmacro %}{% set ms = [a, b] %}{% set ps = [[1], [2, 3]] %}{% for i in range(2) %}{{ ms[i](*ps[i]) }}{% endfor %}", "A1B23"),
            ("macro-varargs-kwargs", "{% macro f(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, 3, k=4) }}|{{ f() }}", "1(2, 3){'k': 4}|(){}"),
            ("filter-block", "{% filter upper %}abc {{ 'x' }}{% endfilter %}|{% filter replace('a', 'b')|upper %}aaa{% endfilter %}|{% filter trim %}  \n x \n {% endfilter %}|{% filter upper %}{% for i in [1,2] %}{{ i }}a{% endfor %}{% endfilter %}", "ABC X|BBB|x|1A2A"),
            ("filter-block-in-call", "{% macro f() %}{{ caller() }}{% endmacro %}{% call f() %}{% filter upper %}in{% endfilter %}{% endcall %}", "IN"),
            ("split-maxsplit", "|{{ ' 1 2 3 4 5 '.split(none, 0) }}|{{ ' 1 2 3 4 5 '.split(none, 3) }}|{{ ' 1 2 3 4 5 '.split(' ', 0) }}|{{ ' 1 2 3 4 5 '.split(' ', 3) }}|{{ ' 1 2 3 4 5 '.split(' ', -1) }}|{{ 'a  b\t c'.split(maxsplit=1) }}|{{ ''.split() }}|{{ ''.split(',') }}|", "|['1 2 3 4 5 ']|['1', '2', '3', '4 5 ']|[' 1 2 3 4 5 ']|['', '1', '2', '3 4 5 ']|['', '1', '2', '3', '4', '5', '']|['a', 'b\\t c']|[]|['']|"),
            ("sort-none-and-undefined", "{{ [None, None] | sort }} {{ [a, b, c] | sort }} {{ [[none], [none]] | sort }} {{ [(1, none), (1, none)] | sort }} {{ [none]|sort(reverse=true) }} {{ [none, none]|sort(attribute='x') }}", "[None, None] [Undefined, Undefined, Undefined] [[None], [None]] [(1, None), (1, None)] [None] [None, None]"),
            ("sort-mixed-orders-as-python", "{{ [1, 1.0, true]|sort }} {{ [[1, 'b'], [1, 'a']]|sort }} {{ ['b', 'A', 'a']|sort(case_sensitive=true) }}", "[1, 1.0, True] [[1, 'a'], [1, 'b']] ['A', 'a', 'b']"),
            ("undefined-repr-in-list", "{{ [missing, none] }}", "[Undefined, None]"),
            ("range-at-sandbox-limit", "{{ range(100000)|length }} {{ range(0, 200000, 2)|length }} {{ range(10, 0, -3)|list }}", "100000 100000 [10, 7, 4, 1]"),
            ("repeat", "{{ [1, 2] * 2 }} {{ (1,) * 3 }} {{ 'ab' * -1 }}|{{ [1] * 0 }} {{ 3 * 'ab' }} {{ 'a' * true }}", "[1, 2, 1, 2] (1, 1, 1) |[] ababab a"),
        };

        public static TheoryData<string> CaseIds() => new(Cases.Select(c => c.Id));

        [Theory]
        [MemberData(nameof(CaseIds))]
        public void RendersAsPythonJinja(string id)
        {
            var c = Cases.Single(x => x.Id == id);
            var template = JinjaTemplate.Parse(c.Template);
            if (c.Expected == null)
                Assert.Equal("TemplateRenderError", Assert.Throws<GraloraException>(() => template.Render(new Dictionary<string, object?>())).ErrorId);
            else
                Assert.Equal(c.Expected, template.Render(new Dictionary<string, object?>()));
        }

        /// <summary>Python's Jinja refuses these too (its message in the comment); each is a clear template error here, not an internal exception.</summary>
        public static TheoryData<string, string, string> Errors() => new()
        {
            // TypeError: macro 'f' takes not more than 1 argument(s)
            { "{% macro f(a) %}{{ a }}{% endmacro %}{{ f(1, 2) }}", "TemplateRenderError", "takes not more than 1 argument(s)" },
            // TypeError: macro 'f' takes no keyword argument 'b'
            { "{% macro f(a) %}{{ a }}{% endmacro %}{{ f(b=2) }}", "TemplateRenderError", "takes no keyword argument 'b'" },
            // TypeError: macro 'f' takes no keyword argument 'a' (already given by position)
            { "{% macro f(a) %}{{ a }}{% endmacro %}{{ f(1, a=2) }}", "TemplateRenderError", "takes no keyword argument 'a'" },
            // TypeError: macro 'f' was invoked with two values for the special caller argument
            { "{% macro f(a) %}[{{ a }}]{% endmacro %}{% call f(1) %}body{% endcall %}", "TemplateRenderError", "never calls caller()" },
            // UndefinedError: No caller defined
            { "{% macro f() %}{{ caller() }}{% endmacro %}{{ f() }}", "TemplateRenderError", "no {% call %} block" },
            // TypeError: Value after * must be an iterable, not int
            { "{% macro f(a, b) %}{{ a }}{% endmacro %}{{ f(*5) }}", "TemplateRenderError", "Value after * must be an iterable, not int" },
            // TypeError: Value after * must be an iterable, not NoneType
            { "{% macro f(a, b) %}{{ a }}{% endmacro %}{{ f(*none) }}", "TemplateRenderError", "not NoneType" },
            // TypeError: argument after ** must be a mapping, not list
            { "{% macro f(a, b) %}{{ a }}{% endmacro %}{{ f(**[1]) }}", "TemplateRenderError", "must be a mapping" },
            // TypeError: got multiple values for keyword argument 'a'
            { "{% macro f(a, b) %}{{ a }}{% endmacro %}{{ f(a=1, **{'a': 2}) }}", "TemplateRenderError", "multiple values for keyword argument 'a'" },
            // TemplateSyntaxError: invalid syntax for function call expression
            { "{% macro f(a, b) %}{{ a }}{% endmacro %}{{ f(*[1], 2) }}", "TemplateSyntaxError", "positional argument follows *iterable" },
            // TemplateAssertionError: the special "caller" argument must be omitted or be given a default
            { "{% macro f(caller) %}{{ caller() }}{% endmacro %}", "TemplateSyntaxError", "'caller' parameter must be left out or given a default" },
            // TemplateSyntaxError: unexpected 'end of statement block'
            { "{% call(x) %}x{% endcall %}", "TemplateSyntaxError", "line 1" },
            // TemplateAssertionError: No filter named 'nope'.
            { "{% filter nope %}x{% endfilter %}", "TemplateRenderError", "unknown filter 'nope'" },
            // OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).
            { "{{ range(100001)|length }}", "TemplateRenderError", "range too big" },
            // TypeError: '<' not supported between instances of 'NoneType' and 'int'
            { "{{ [1, none]|sort }}", "TemplateRenderError", "'<' not supported between instances of" },
            // UndefinedError: 'a' is undefined
            { "{{ [a, 1]|sort }}", "TemplateRenderError", "'a' is undefined" },
            // TypeError: Object of type Undefined is not JSON serializable
            { "{{ undefined_name|tojson }}", "TemplateRenderError", "Object of type Undefined is not JSON serializable" },
            // TypeError: 'str' object cannot be interpreted as an integer
            { "{{ 'a b'.split(none, 'x') }}", "TemplateRenderError", "'str' object cannot be interpreted as an integer" },
            // SyntaxError: duplicate argument in function definition
            { "{% macro f(a, a) %}{% endmacro %}", "TemplateSyntaxError", "declared twice" },
        };

        [Theory]
        [MemberData(nameof(Errors))]
        public void RefusesWhatPythonJinjaRefuses(string template, string errorId, string expectedInMessage)
        {
            var e = Assert.Throws<GraloraException>(() => JinjaTemplate.Parse(template).Render(new Dictionary<string, object?>()));
            Assert.Equal(errorId, e.ErrorId);
            Assert.Contains(expectedInMessage, e.Message);
        }
    }
}
