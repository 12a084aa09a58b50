using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace GraLoRA.Text.Jinja
{
    /// <summary>
    /// What one rendering has spent against its <see cref="JinjaLimits"/>: nesting depth, steps, characters built.
    /// One per rendering, reachable from the filters and operations that allocate through <see cref="Current"/>
    /// (rendering is synchronous, on one thread). Every charge happens before the work or allocation it pays for.
    /// </summary>
    internal sealed class RenderBudget
    {
        [ThreadStatic] static RenderBudget? _current;

        /// <summary>The rendering in progress on this thread; an unlimited budget outside one (filters called directly).</summary>
        public static RenderBudget Current => _current ?? new RenderBudget(Unlimited, default);

        static readonly JinjaLimits Unlimited = new() { MaxRenderDepth = int.MaxValue, MaxSteps = long.MaxValue, MaxTextLength = long.MaxValue };

        // Checking the token costs little, but not nothing: look every this many steps (microseconds apart).
        const long CancellationInterval = 1024;

        readonly CancellationToken _cancellation;
        long _steps, _text, _nextCancellationCheck = CancellationInterval;
        int _depth;

        public RenderBudget(JinjaLimits limits, CancellationToken cancellation)
        {
            Limits = limits;
            _cancellation = cancellation;
        }

        public JinjaLimits Limits { get; }

        /// <summary>Makes this the current budget until the returned scope is disposed (restoring the previous one).</summary>
        public Scope Activate()
        {
            var previous = _current;
            _current = this;
            return new Scope(previous);
        }

        public readonly struct Scope : IDisposable
        {
            readonly RenderBudget? _previous;
            public Scope(RenderBudget? previous) => _previous = previous;
            public void Dispose() => _current = _previous;
        }

        /// <summary>One evaluation step one level deeper; pair with <see cref="Leave"/>.</summary>
        public void Enter()
        {
            if (++_depth > Limits.MaxRenderDepth)
            {
                _depth--;
                throw new TooDeepException($"the template nests deeper than {Limits.MaxRenderDepth} levels while rendering (JinjaLimits.MaxRenderDepth): runaway recursion, or a value nested that deep");
            }
            // The counted limit comes first; this only guards threads with unusually small stacks.
            if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
            {
                _depth--;
                throw new TooDeepException($"the template nests too deep for this thread's stack ({_depth} levels while rendering)");
            }
            Step();
        }

        public void Leave() => _depth--;

        /// <summary>Checks a value nested <paramref name="depth"/> levels deep (printing, JSON, comparing walk values recursively).</summary>
        public void CheckValueDepth(int depth)
        {
            if (depth > Limits.MaxRenderDepth)
                throw new TooDeepException($"a value nests deeper than {Limits.MaxRenderDepth} levels (JinjaLimits.MaxRenderDepth)");
            if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
                throw new TooDeepException($"a value nests too deep for this thread's stack ({depth} levels)");
        }

        /// <summary>One step: an evaluation, a loop iteration, a call.</summary>
        public void Step() => Charge(1);

        /// <summary>Work on <paramref name="items"/> items (produced, copied, compared or sorted), before it is done.</summary>
        public void Items(long items) => Charge(Math.Max(0, items));

        /// <summary>
        /// A new string of <paramref name="length"/> characters, before it is allocated: counts against the text limit,
        /// and as work at one step per 64 characters.
        /// </summary>
        public void Text(long length)
        {
            if (length <= 0) return;
            if (length > Limits.MaxTextLength - _text)
                throw new BudgetExceededException($"the template builds more than {Limits.MaxTextLength:N0} characters of text (JinjaLimits.MaxTextLength)");
            _text += length;
            Charge(length >> 6);
        }

        /// <summary>Characters read without building a new string (searching, counting), before the scan.</summary>
        public void Scan(long length) => Charge(Math.Max(0, length) >> 6);

        void Charge(long steps)
        {
            if (steps > Limits.MaxSteps - _steps)
                throw new BudgetExceededException($"the template takes more than {Limits.MaxSteps:N0} evaluation steps (JinjaLimits.MaxSteps)");
            _steps += steps;
            if (_steps >= _nextCancellationCheck)
            {
                _nextCancellationCheck = _steps + CancellationInterval;
                _cancellation.ThrowIfCancellationRequested();
            }
        }
    }
}
