namespace GraLoRA.Text.Jinja
{
    /// <summary>
    /// Bounds on what one template may cost. A chat template is code that arrives with every downloaded model, so
    /// parsing and rendering count their nesting and their work and stop with a clear error instead of exhausting the
    /// stack, the memory or the user's patience. The defaults lie far above what published chat templates use (rendering
    /// 53 of them, from Llama 3.1 to GLM-5.1, takes at most 8 levels of nesting, 60 of rendering depth, 20,000 steps and
    /// 200,000 characters) and far below what the process can take.
    /// </summary>
    public sealed record JinjaLimits
    {
        /// <summary>The limits <see cref="JinjaTemplate.Parse(string, JinjaLimits?)"/> uses when given none.</summary>
        public static JinjaLimits Default { get; } = new();

        /// <summary>
        /// Most nested brackets, operators and blocks in the template text (default 100): Python's Jinja itself gives up
        /// below that (Python nests at most 100 blocks and about 90 parentheses), so no template transformers renders
        /// goes deeper. Past it parsing fails with <c>ChatTemplateTooDeep</c>.
        /// </summary>
        public int MaxNesting { get; init; } = 100;

        /// <summary>
        /// Most nested evaluations while rendering (default 500): expressions inside expressions, blocks inside blocks,
        /// macro calls inside macro calls and values inside values (a list of lists printed or turned into JSON). Published
        /// chat templates reach about 60; each level costs about 1.4 KB of stack, so the default fits a 1 MB thread stack.
        /// Past it rendering fails with <c>ChatTemplateTooDeep</c> (as does a thread whose stack runs low first).
        /// </summary>
        public int MaxRenderDepth { get; init; } = 500;

        /// <summary>
        /// Most evaluation steps in one rendering (default 10 million, about a second of work): every expression,
        /// statement, loop iteration and call is one, and built-in functions count the items they produce or walk
        /// (range, list repetition, sort, join...). Past it rendering fails with <c>ChatTemplateBudgetExceeded</c>.
        /// </summary>
        public long MaxSteps { get; init; } = 10_000_000;

        /// <summary>
        /// Most characters (UTF-16 code units) one rendering may produce, default 16 Mi: the output plus every string the
        /// template builds (concatenation, repetition, join, replace, tojson, printed lists...), charged before the string
        /// is allocated. Past it rendering fails with <c>ChatTemplateBudgetExceeded</c>.
        /// </summary>
        public long MaxTextLength { get; init; } = 16L << 20;

        internal void Validate()
        {
            if (MaxNesting < 1 || MaxRenderDepth < 1 || MaxSteps < 1 || MaxTextLength < 1)
                throw new GraloraException("InvalidJinjaLimits", GraloraErrorKind.InvalidArgument,
                    $"Every template limit must be at least 1 (MaxNesting={MaxNesting}, MaxRenderDepth={MaxRenderDepth}, MaxSteps={MaxSteps}, MaxTextLength={MaxTextLength}).", this);
        }
    }
}
