using System;

namespace GraLoRA.Text.Jinja
{
    /// <summary>Builds the <see cref="GraloraException"/>s templates throw.</summary>
    internal static class TemplateError
    {
        public static GraloraException Syntax(string message, int offset, SourceMap map) =>
            new("TemplateSyntaxError", GraloraErrorKind.InvalidData, $"Template syntax error at {map.Describe(offset)}: {message}");

        public static GraloraException TooDeep(int limit, int offset, SourceMap map) =>
            new("ChatTemplateTooDeep", GraloraErrorKind.InvalidData,
                $"Template too deep at {map.Describe(offset)}: more than {limit} nested brackets, operators or blocks (JinjaLimits.MaxNesting). " +
                "No chat template needs that many; the template is broken or hostile: use the model's original template.", limit);

        public static GraloraException TooDeepForStack(int nesting, int offset, SourceMap map) =>
            new("ChatTemplateTooDeep", GraloraErrorKind.InvalidData,
                $"Template too deep at {map.Describe(offset)}: {nesting} nested brackets, operators or blocks are more than this thread's stack holds. " +
                "No chat template needs that many; the template is broken or hostile: use the model's original template.", nesting);
    }

    /// <summary>
    /// A failure while rendering. Thrown where the position is not known (inside a filter, say); the evaluator
    /// records the position of the innermost expression it passes through, then the template turns it into a
    /// <see cref="GraloraException"/>.
    /// </summary>
    internal class RenderException : Exception
    {
        public int Position { get; set; } = -1;
        public RenderException(string message) : base(message) { }
    }

    /// <summary>The template called raise_exception(message).</summary>
    internal sealed class RaisedException : RenderException
    {
        public RaisedException(string message) : base(message) { }
    }

    /// <summary>Rendering nested past <see cref="JinjaLimits.MaxRenderDepth"/>: becomes ChatTemplateTooDeep.</summary>
    internal sealed class TooDeepException : RenderException
    {
        public TooDeepException(string message) : base(message) { }
    }

    /// <summary>Rendering ran past <see cref="JinjaLimits.MaxSteps"/> or <see cref="JinjaLimits.MaxTextLength"/>: becomes ChatTemplateBudgetExceeded.</summary>
    internal sealed class BudgetExceededException : RenderException
    {
        public BudgetExceededException(string message) : base(message) { }
    }
}
