using System;
using System.Collections.Generic;

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

        JinjaTemplate(string source, List<Node> body)
        {
            Source = source;
            _body = body;
            _map = new SourceMap(source);
        }

        /// <summary>The template text this was parsed from.</summary>
        public string Source { get; }

        /// <summary>Parses <paramref name="source"/>.</summary>
        /// <exception cref="GraloraException">ErrorId "TemplateSyntaxError": the message names the line, column and offending token.</exception>
        public static JinjaTemplate Parse(string source)
        {
            ArgumentNullException.ThrowIfNull(source);
            return new JinjaTemplate(source, Parser.Parse(source));
        }

        /// <summary>
        /// Renders with the given variables. Values may be strings, booleans, integers, floating-point numbers, null,
        /// dictionaries (string keys; order is kept), sequences, <see cref="System.Text.Json.JsonElement"/>s, and
        /// functions as <c>Func&lt;IReadOnlyList&lt;object?&gt;, object?&gt;</c> (called with positional arguments).
        /// </summary>
        /// <exception cref="GraloraException">
        /// ErrorId "TemplateRaisedException" (kind InvalidArgument) when the template calls raise_exception(message);
        /// "TemplateRenderError" when an operation fails (unknown filter, undefined function, wrong types), naming line and column.
        /// </exception>
        public string Render(IReadOnlyDictionary<string, object?> context)
        {
            ArgumentNullException.ThrowIfNull(context);
            var globals = new Dictionary<string, object?>();
            Methods.AddGlobals(globals);
            var variables = new Dictionary<string, object?>();
            foreach (var (name, value) in context)
                variables[name] = Values.FromDotNet(value);
            var scope = new Scope(new Scope(new Scope(null, globals), variables));
            try
            {
                return Evaluator.Render(_body, scope);
            }
            catch (RaisedException e)
            {
                throw new GraloraException("TemplateRaisedException", GraloraErrorKind.InvalidArgument,
                    $"{e.Message} (raised by the template{Where(e)})", e.Message, e);
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
