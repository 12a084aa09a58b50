using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace GraLoRA.Text.Jinja
{
    // Macros and {% call %} bodies: how Jinja binds a call's arguments to a macro's parameters.
    internal static partial class Evaluator
    {
        /// <summary>
        /// A macro (or a {% call %} block's body) as Jinja binds its arguments: positional ones in order, then keywords for
        /// the parameters left, defaults (evaluated in the macro, after the earlier parameters) or undefined for the rest.
        /// Leftover keywords go to kwargs and leftover positional ones to varargs when the body names them, else they are
        /// errors; caller is the {% call %} body when the body names it.
        /// </summary>
        static JinjaCallable DefineMacro(string name, List<(string Name, Expr? Default)> parameters, List<Node> body, SpecialNames uses, Scope definedIn) => new(name, args =>
        {
            var local = new Scope(definedIn);
            int bound = Math.Min(args.Positional.Count, parameters.Count);
            for (int i = 0; i < bound; i++)
                local.Set(parameters[i].Name, args.Positional[i]);
            var leftover = args.Keywords.ToList();
            for (int i = bound; i < parameters.Count; i++)
            {
                var (parameter, defaultValue) = parameters[i];
                int k = leftover.FindIndex(kw => kw.Name == parameter);
                object? value;
                if (k >= 0)
                {
                    value = leftover[k].Value;
                    leftover.RemoveAt(k);
                }
                else
                    value = defaultValue != null ? Evaluate(defaultValue, local) : new Undefined(parameter);
                local.Set(parameter, value);
            }
            if (uses.HasFlag(SpecialNames.Caller) && !parameters.Any(p => p.Name == "caller"))
            {
                int k = leftover.FindIndex(kw => kw.Name == "caller");
                object? caller = k >= 0 ? leftover[k].Value : new Undefined("caller (no {% call %} block passed one)");
                if (k >= 0)
                    leftover.RemoveAt(k);
                local.Set("caller", caller);
            }
            if (uses.HasFlag(SpecialNames.Kwargs))
            {
                var kwargs = new JinjaDict();
                foreach (var (key, value) in leftover)
                    kwargs[key] = value;
                local.Set("kwargs", kwargs);
            }
            else if (leftover.Count > 0)
                throw new RenderException(leftover.Any(kw => kw.Name == "caller")
                    ? $"macro '{name}' was called from a {{% call %}} block but never calls caller()"
                    : $"macro '{name}' takes no keyword argument '{leftover[0].Name}'");
            if (uses.HasFlag(SpecialNames.Varargs))
                local.Set("varargs", new JinjaList(args.Positional.Skip(parameters.Count), isTuple: true));
            else if (args.Positional.Count > parameters.Count)
                throw new RenderException($"macro '{name}' takes not more than {parameters.Count} argument(s)");

            var output = new StringBuilder();
            if (Execute(body, local, output) != Flow.Normal)
                throw new RenderException("'break' or 'continue' outside a loop");
            return output.ToString();
        }, name == "caller" ? "<Macro anonymous>" : $"<Macro '{name}'>");
    }
}
