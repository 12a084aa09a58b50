using System;
using System.Collections.Generic;
using System.Threading;

namespace GraLoRA.Text.Jinja
{
    /// <summary>
    /// A Jinja template, parsed once and rendered many times, for the subset of Jinja that LLM chat templates use.
    /// Configured as transformers' apply_chat_template configures Jinja: trim_blocks and lstrip_blocks on,
    /// no autoescaping, loop controls ({% break %}, {% continue %}) on, and tojson with ensure_ascii off.
    /// </summary>
    /// <remarks>
    /// Values follow Python: None, True and False print as "None", "True", "False"; lists and dicts print as
    /// Python's repr; == compares lists and dicts by content; % and // round toward negative infinity.
    /// An undefined name renders as "", is falsy, fails "is defined", and its attributes are undefined too.
    /// </remarks>
    public sealed class JinjaTemplate
    {
        readonly List<Node> _body;
        readonly SourceMap _map;

        JinjaTemplate(string source, List<Node> body, JinjaLimits limits)
        {
            Source = source;
            _body = body;
            _map = new SourceMap(source);
            Limits = limits;
        }

        /// <summary>The template text this was parsed from.</summary>
        public string Source { get; }

        /// <summary>The limits parsing used and every rendering of this template uses.</summary>
        public JinjaLimits Limits { get; }

        /// <summary>Parses <paramref name="source"/> within <paramref name="limits"/> (default <see cref="JinjaLimits.Default"/>).</summary>
        /// <exception cref="GraloraException">
        /// ErrorId "TemplateSyntaxError": the message names the line, column and offending token;
        /// "ChatTemplateTooDeep" when brackets, operators or blocks nest past <see cref="JinjaLimits.MaxNesting"/> (line, column and the limit).
        /// </exception>
        public static JinjaTemplate Parse(string source, JinjaLimits? limits = null)
        {
            ArgumentNullException.ThrowIfNull(source);
            limits ??= JinjaLimits.Default;
            limits.Validate();
            return new JinjaTemplate(source, Parser.Parse(source, limits), limits);
        }

        /// <summary>
        /// Renders with the given variables. Values may be strings, booleans, integers, floating-point numbers, null,
        /// dictionaries (string keys; order is kept), sequences, <see cref="System.Text.Json.JsonElement"/>s, and
        /// functions as <c>Func&lt;IReadOnlyList&lt;object?&gt;, object?&gt;</c> (called with positional arguments).
        /// </summary>
        /// <param name="context">The template's variables.</param>
        /// <param name="cancellation">Stops rendering within microseconds (OperationCanceledException), e.g. at Ctrl+C.</param>
        /// <exception cref="GraloraException">
        /// ErrorId "TemplateRaisedException" (kind InvalidArgument) when the template calls raise_exception(message);
        /// "TemplateRenderError" when an operation fails (unknown filter, undefined function, wrong types), naming line and column;
        /// "ChatTemplateTooDeep" when rendering nests past <see cref="JinjaLimits.MaxRenderDepth"/> (runaway recursion);
        /// "ChatTemplateBudgetExceeded" when it takes more than <see cref="JinjaLimits.MaxSteps"/> steps or builds more than
        /// <see cref="JinjaLimits.MaxTextLength"/> characters; each names the line, column and the limit.
        /// </exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled.</exception>
        public string Render(IReadOnlyDictionary<string, object?> context, CancellationToken cancellation = default)
        {
            ArgumentNullException.ThrowIfNull(context);
            cancellation.ThrowIfCancellationRequested();
            var globals = new Dictionary<string, object?>();
            Methods.AddGlobals(globals);
            var variables = new Dictionary<string, object?>();
            foreach (var (name, value) in context)
                variables[name] = Values.FromDotNet(value, Limits.MaxRenderDepth);
            var scope = new Scope(new Scope(new Scope(null, globals), variables));
            var budget = new RenderBudget(Limits, cancellation);
            try
            {
                using (budget.Activate())
                    return Evaluator.Render(_body, scope);
            }
            catch (RaisedException e)
            {
                throw new GraloraException("TemplateRaisedException", GraloraErrorKind.InvalidArgument,
                    $"{e.Message} (raised by the template{Where(e)})", e.Message, e);
            }
            catch (TooDeepException e)
            {
                throw new GraloraException("ChatTemplateTooDeep", GraloraErrorKind.InvalidData,
                    $"Template too deep{Where(e)}: {e.Message}. The template is broken or hostile: use the model's original template.", Limits.MaxRenderDepth, e);
            }
            catch (BudgetExceededException e)
            {
                throw new GraloraException("ChatTemplateBudgetExceeded", GraloraErrorKind.InvalidData,
                    $"Template stopped{Where(e)}: {e.Message}. Chat templates need far less; if this one is genuine, raise the limit (JinjaLimits, ChatTemplateOptions.Limits).", Limits, e);
            }
            catch (RenderException e)
            {
                throw new GraloraException("TemplateRenderError", GraloraErrorKind.InvalidData,
                    $"Template error{Where(e)}: {e.Message}", null, e);
            }
        }

        string Where(RenderException e) => e.Position < 0 ? "" : " at " + _map.Describe(e.Position);
    }
}
