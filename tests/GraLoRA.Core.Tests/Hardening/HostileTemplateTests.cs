using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using GraLoRA.Text;
using GraLoRA.Text.Jinja;
using Xunit;

namespace GraLoRA.Tests
{
    /// <summary>
    /// Chat templates arrive with every downloaded model, so a hostile one must end with a clear error in-process:
    /// no stack overflow (which .NET cannot catch: the process dies), no endless loop, no allocation beyond a bound.
    /// Each case here would kill or hang the test process without the limits; it runs in-process on purpose.
    /// </summary>
    public class HostileTemplateTests
    {
        static string Repeat(string s, int n) => string.Concat(Enumerable.Repeat(s, n));

        static readonly Dictionary<string, object?> NoVariables = new();

        /// <summary>(id, template, error id, fragments the message must hold: where, and which limit).</summary>
        public static TheoryData<string, string, string, string[]> HostileCases() => new()
        {
            // The four cases of the bug report: the first two killed pwsh (exit 134), the third never ended, the fourth reached libtorch.
            { "200k-nested-parentheses", "{{ " + new string('(', 200_000) + "1" + new string(')', 200_000) + " }}", "ChatTemplateTooDeep", new[] { "line 1, column 104", "more than 100", "MaxNesting" } },
            { "runaway-macro-recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "ChatTemplateTooDeep", new[] { "line 1, column", "deeper than 500", "MaxRenderDepth" } },
            // range(1000000) is refused outright, as Python's sandboxed Jinja does (its MAX_RANGE is 100,000)...
            { "million-by-million-loops", "{% for i in range(1000000) %}{% for j in range(1000000) %}x{% endfor %}{% endfor %}", "TemplateRenderError", new[] { "line 1, column 18", "range too big", "100,000" } },
            // ...so the same loop at the sandbox's largest range is what the step budget stops.
            { "sandbox-range-squared", "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", "ChatTemplateBudgetExceeded", new[] { "line 1, column", "10,000,000 evaluation steps", "MaxSteps" } },
            { "ten-billion-characters", "{{ \"x\" * 10000000000 }}", "ChatTemplateBudgetExceeded", new[] { "line 1, column 8", "16,777,216 characters", "MaxTextLength" } },
            // The same attacks in other shapes.
            { "nested-blocks", Repeat("{% if true %}", 100_000) + Repeat("{% endif %}", 100_000), "ChatTemplateTooDeep", new[] { "line 1", "MaxNesting" } },
            { "nested-calls", "{{ " + Repeat("f(", 100_000) + "1" + new string(')', 100_000) + " }}", "ChatTemplateTooDeep", new[] { "line 1", "MaxNesting" } },
            { "nested-lists", "{{ " + new string('[', 100_000) + new string(']', 100_000) + " }}", "ChatTemplateTooDeep", new[] { "line 1", "MaxNesting" } },
            { "not-chain", "{{ " + Repeat("not ", 100_000) + "1 }}", "ChatTemplateTooDeep", new[] { "line 1", "MaxNesting" } },
            { "unary-minus-chain", "{{ " + new string('-', 100_000) + "1 }}", "ChatTemplateTooDeep", new[] { "line 1", "MaxNesting" } },
            { "else-chain", "{{ " + Repeat("1 if x else ", 100_000) + "1 }}", "ChatTemplateTooDeep", new[] { "line 1", "MaxNesting" } },
            { "long-addition", "{{ 1" + Repeat(" + 1", 100_000) + " }}", "ChatTemplateTooDeep", new[] { "line 1", "MaxRenderDepth" } },
            { "long-filter-chain", "{{ 1" + Repeat("|string", 100_000) + " }}", "ChatTemplateTooDeep", new[] { "line 1", "MaxRenderDepth" } },
            { "mutual-recursion-through-filter-blocks", "{% macro a() %}{% filter upper %}{{ b() }}{% endfilter %}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}", "ChatTemplateTooDeep", new[] { "MaxRenderDepth" } },
            { "recursion-through-caller", "{% macro f() %}{% call f() %}{{ caller() }}{% endcall %}{% endmacro %}{{ f() }}", "ChatTemplateTooDeep", new[] { "MaxRenderDepth" } },
            { "value-nested-100k-as-json", "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|tojson }}", "ChatTemplateTooDeep", new[] { "line 1, column", "a value nests deeper than 500" } },
            { "value-nested-100k-printed", "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}", "ChatTemplateTooDeep", new[] { "a value nests deeper than 500" } },
            { "value-nested-compared", "{% set ns = namespace(x=[]) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x == ns.x }}", "ChatTemplateTooDeep", new[] { "a value nests deeper than 500" } },
            { "namespace-containing-itself", "{% set ns = namespace() %}{% set ns.self = ns %}{{ ns }}", "ChatTemplateTooDeep", new[] { "a value nests deeper" } },
            { "string-doubling", "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "ChatTemplateBudgetExceeded", new[] { "MaxTextLength" } },
            { "list-repetition", "{{ ([1] * 10000000000)|length }}", "ChatTemplateBudgetExceeded", new[] { "MaxSteps" } },
            { "list-doubling", "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}", "ChatTemplateBudgetExceeded", new[] { "MaxSteps" } },
            { "repeated-sort", "{% set xs = range(100000)|list %}{% for i in range(100000) %}{% set ys = xs|sort %}{% endfor %}", "ChatTemplateBudgetExceeded", new[] { "MaxSteps" } },
            { "repeated-replace", "{% set s = 'ab' * 1000000 %}{% for i in range(100000) %}{% set t = s.replace('a', 'aa') %}{% endfor %}", "ChatTemplateBudgetExceeded", new[] { "MaxTextLength" } },
            { "repeated-membership", "{% set xs = range(100000)|list %}{% for i in range(100000) %}{% if -1 in xs %}{% endif %}{% endfor %}", "ChatTemplateBudgetExceeded", new[] { "MaxSteps" } },
            { "repeated-slice", "{% set xs = range(100000)|list %}{% for i in range(100000) %}{% set ys = xs[:] %}{% endfor %}", "ChatTemplateBudgetExceeded", new[] { "MaxSteps" } },
            { "repeated-join", "{% set xs = ['abc'] * 100000 %}{% for i in range(100000) %}{% set t = xs|join(',') %}{% endfor %}", "ChatTemplateBudgetExceeded", new[] { "MaxTextLength" } },
        };

        [Theory]
        [MemberData(nameof(HostileCases))]
        public void IsRefusedInProcessWithItsErrorId(string id, string template, string errorId, string[] expectedInMessage)
        {
            var e = Assert.Throws<GraloraException>(() => JinjaTemplate.Parse(template).Render(NoVariables));
            Assert.True(errorId == e.ErrorId, $"{id}: {e.ErrorId}: {e.Message}");
            foreach (string part in expectedInMessage)
                Assert.Contains(part, e.Message);
        }

        [Theory]
        [InlineData("{{ \"x\" * 10000000000 }}")]
        [InlineData("{{ 'ab' * 9000000 }}")]
        [InlineData("{{ ([0] * 10000000000)|length }}")]
        [InlineData("{% set s = 'x' * 9000000 %}{{ s ~ s }}")]
        public void RepetitionAndConcatenationAreChargedBeforeTheyAllocate(string template)
        {
            var parsed = JinjaTemplate.Parse(template);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<GraloraException>(() => parsed.Render(NoVariables));
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal("ChatTemplateBudgetExceeded", e.ErrorId);
            // The refused string or list would take 18 MB to 80 GB; only what was built before it (at most one 9M-character string) may exist.
            Assert.True(allocated < 20L << 20, $"allocated {allocated:N0} bytes");
        }

        [Fact]
        public void LimitsAreOverridableInCode()
        {
            const string template = "{% for i in range(3000) %}{{ ((i)) }}{% endfor %}";
            Assert.Equal(string.Concat(Enumerable.Range(0, 3000)), JinjaTemplate.Parse(template).Render(NoVariables));

            var steps = Assert.Throws<GraloraException>(() => JinjaTemplate.Parse(template, new JinjaLimits { MaxSteps = 1000 }).Render(NoVariables));
            Assert.Equal("ChatTemplateBudgetExceeded", steps.ErrorId);
            Assert.Contains("more than 1,000 evaluation steps", steps.Message);

            var text = Assert.Throws<GraloraException>(() => JinjaTemplate.Parse(template, new JinjaLimits { MaxTextLength = 100 }).Render(NoVariables));
            Assert.Equal("ChatTemplateBudgetExceeded", text.ErrorId);
            Assert.Contains("more than 100 characters", text.Message);

            var nesting = Assert.Throws<GraloraException>(() => JinjaTemplate.Parse(template, new JinjaLimits { MaxNesting = 2 }));
            Assert.Equal("ChatTemplateTooDeep", nesting.ErrorId);
            Assert.Contains("line 1, column 31: more than 2 nested", nesting.Message);

            var depth = Assert.Throws<GraloraException>(() => JinjaTemplate.Parse(template, new JinjaLimits { MaxRenderDepth = 2 }).Render(NoVariables));
            Assert.Equal("ChatTemplateTooDeep", depth.ErrorId);

            var viaChatTemplate = Assert.Throws<GraloraException>(() => ChatTemplate.Render(template, Array.Empty<ChatMessage>(), new ChatTemplateOptions { Limits = new JinjaLimits { MaxSteps = 1000 } }));
            Assert.Equal("ChatTemplateBudgetExceeded", viaChatTemplate.ErrorId);

            Assert.Equal("InvalidJinjaLimits", Assert.Throws<GraloraException>(() => JinjaTemplate.Parse(template, new JinjaLimits { MaxSteps = 0 })).ErrorId);
        }

        [Fact]
        public void CancellationStopsRenderingAtOnce()
        {
            // Unlimited steps: only cancellation can end this (10^15 iterations). The template signals once it runs.
            const string template = "{{ started() }}{% for i in range(100000) %}{% for j in range(100000) %}{% for k in range(100000) %}{% endfor %}{% endfor %}{% endfor %}";
            var parsed = JinjaTemplate.Parse(template, new JinjaLimits { MaxSteps = long.MaxValue, MaxTextLength = long.MaxValue });
            using var running = new ManualResetEventSlim();
            using var cancel = new CancellationTokenSource();
            var context = new Dictionary<string, object?> { ["started"] = (Func<IReadOnlyList<object?>, object?>)(_ => { running.Set(); return ""; }) };
            Exception? outcome = null;
            var thread = new Thread(() =>
            {
                try { parsed.Render(context, cancel.Token); }
                catch (Exception e) { outcome = e; }
            });
            thread.Start();
            Assert.True(running.Wait(TimeSpan.FromMinutes(2)), "the template never started");
            cancel.Cancel();
            Assert.True(thread.Join(TimeSpan.FromMinutes(2)), "rendering went on after cancellation");
            Assert.IsType<OperationCanceledException>(outcome);
        }

        [Fact]
        public void AnAlreadyCancelledTokenRendersNothing()
        {
            using var cancel = new CancellationTokenSource();
            cancel.Cancel();
            Assert.Throws<OperationCanceledException>(() => ChatTemplate.Render("{{ 'x' }}", new[] { new ChatMessage("user", "hi") }, null, cancel.Token));
        }

        [Fact]
        public void AThreadWithASmallStackGetsTheSameErrorNotACrash()
        {
            // Limits raised so far that only the stack guard can answer: on a 256 KB stack it must, with the same error id.
            var unlimited = new JinjaLimits { MaxNesting = 1_000_000, MaxRenderDepth = 1_000_000 };
            var outcomes = new List<string>();
            foreach (string template in new[]
            {
                "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                "{{ " + new string('(', 100_000) + "1" + new string(')', 100_000) + " }}",
                "{{ 1" + Repeat(" + 1", 100_000) + " }}",
                "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|tojson }}",
            })
            {
                var thread = new Thread(() =>
                {
                    try { outcomes.Add("rendered " + JinjaTemplate.Parse(template, unlimited).Render(NoVariables).Length); }
                    catch (GraloraException e) { outcomes.Add(e.ErrorId + (e.Message.Contains("this thread's stack") ? " (stack)" : "")); }
                }, 256 * 1024);
                thread.Start();
                thread.Join();
            }
            Assert.Equal(Enumerable.Repeat("ChatTemplateTooDeep (stack)", 4), outcomes);
        }

        [Fact]
        public void DotNetValuesNestedTooDeepOrCyclicAreRefused()
        {
            var cyclic = new Dictionary<string, object?>();
            cyclic["self"] = cyclic;
            var e = Assert.Throws<GraloraException>(() => JinjaTemplate.Parse("{{ x }}").Render(new Dictionary<string, object?> { ["x"] = cyclic }));
            Assert.Equal("ChatTemplateTooDeep", e.ErrorId);
        }
    }
}
