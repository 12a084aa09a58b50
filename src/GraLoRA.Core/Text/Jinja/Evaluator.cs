using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace GraLoRA.Text.Jinja
{
    /// <summary>Variables visible at one point: a for-loop iteration and a macro call each get their own, as in Jinja.</summary>
    internal sealed class Scope
    {
        readonly Dictionary<string, object?> _variables;
        readonly Scope? _parent;

        public Scope(Scope? parent, Dictionary<string, object?>? variables = null)
        {
            _parent = parent;
            _variables = variables ?? new Dictionary<string, object?>();
        }

        public object? Lookup(string name)
        {
            for (Scope? s = this; s != null; s = s._parent)
                if (s._variables.TryGetValue(name, out object? value))
                    return value;
            return new Undefined(name);
        }

        public void Set(string name, object? value) => _variables[name] = value;
    }

    /// <summary>
    /// Walks the syntax tree, writing output. Errors carry the position of the innermost node that failed. Every node
    /// evaluated is one step and one level of depth on the rendering's <see cref="RenderBudget"/>, so runaway recursion
    /// and endless loops end with a template error (or at the caller's cancellation) instead of taking the process down.
    /// </summary>
    internal static partial class Evaluator
    {
        enum Flow { Normal, Break, Continue }

        public static string Render(List<Node> body, Scope scope)
        {
            var output = new StringBuilder();
            if (Execute(body, scope, output) != Flow.Normal)
                throw new RenderException("'break' or 'continue' outside a loop");
            return output.ToString();
        }

        static bool Locate(RenderException e, int pos)
        {
            if (e.Position < 0)
                e.Position = pos;
            return false; // only records the position; the exception keeps going
        }

        static Flow Execute(List<Node> nodes, Scope scope, StringBuilder output)
        {
            foreach (Node node in nodes)
            {
                try
                {
                    Flow flow = Execute(node, scope, output);
                    if (flow != Flow.Normal)
                        return flow;
                }
                catch (RenderException e) when (Locate(e, node.Pos))
                {
                    throw;
                }
            }
            return Flow.Normal;
        }

        /// <summary>Appends rendered text, charging it to the budget first.</summary>
        static void Write(StringBuilder output, string text)
        {
            RenderBudget.Current.Text(text.Length);
            output.Append(text);
        }

        static Flow Execute(Node node, Scope scope, StringBuilder output)
        {
            var budget = RenderBudget.Current;
            budget.Enter();
            try
            {
                return ExecuteCore(node, scope, output);
            }
            finally
            {
                budget.Leave();
            }
        }

        static Flow ExecuteCore(Node node, Scope scope, StringBuilder output)
        {
            switch (node)
            {
                case TextNode t:
                    Write(output, t.Text);
                    return Flow.Normal;
                case OutputNode o:
                    Write(output, Values.Str(Evaluate(o.Value, scope)));
                    return Flow.Normal;
                case IfNode i:
                    foreach (var (test, body) in i.Branches)
                        if (Values.IsTrue(Evaluate(test, scope)))
                            return Execute(body, scope, output);
                    return i.Else == null ? Flow.Normal : Execute(i.Else, scope, output);
                case ForNode f:
                    ExecuteFor(f, scope, output);
                    return Flow.Normal;
                case SetNode s:
                    object? value = s.Value != null ? Evaluate(s.Value, scope) : RenderBlock(s.Body!, scope);
                    Assign(s.Target, value, scope);
                    return Flow.Normal;
                case MacroNode m:
                    scope.Set(m.Name, DefineMacro(m.Name, m.Parameters, m.Body, m.Uses, scope));
                    return Flow.Normal;
                case CallBlockNode c:
                    // The body becomes caller(), a macro defined here (it sees this scope); the call gets it as caller=.
                    var caller = DefineMacro("caller", c.Parameters, c.Body, c.Uses, scope);
                    Write(output, Values.Str(Call(c.Call, scope, ("caller", caller))));
                    return Flow.Normal;
                case FilterBlockNode fb:
                    object? filtered = RenderBlock(fb.Body, scope);
                    foreach (var filter in fb.Filters)
                        filtered = ApplyFilter(filter.Pos, filter.Name, filtered, Arguments(filter.Args, scope));
                    Write(output, Values.Str(filtered));
                    return Flow.Normal;
                case BreakNode:
                    return Flow.Break;
                case ContinueNode:
                    return Flow.Continue;
                default:
                    throw new RenderException($"unsupported node {node.GetType().Name}");
            }
        }

        static object? ApplyFilter(int pos, string name, object? value, CallArguments args)
        {
            try
            {
                return Filters.Apply(name, value, args);
            }
            catch (RenderException e) when (Locate(e, pos))
            {
                throw;
            }
        }

        static string RenderBlock(List<Node> body, Scope scope)
        {
            var captured = new StringBuilder();
            Execute(body, scope, captured);
            return captured.ToString();
        }

        static void ExecuteFor(ForNode f, Scope scope, StringBuilder output)
        {
            object? iterable = Evaluate(f.Iterable, scope);
            if (iterable is null or bool or long or double or JinjaCallable)
                throw new RenderException($"'{Values.TypeName(iterable)}' object is not iterable");
            var items = Values.Iterate(iterable).ToList();
            if (f.Filter != null)
            {
                // "for x in xs if cond": filtered before the loop, so loop.length and loop.last count only what passes.
                items = items.Where(item =>
                {
                    var probe = new Scope(scope);
                    Assign(f.Target, item, probe);
                    return Values.IsTrue(Evaluate(f.Filter, probe));
                }).ToList();
            }

            var budget = RenderBudget.Current;
            for (int i = 0; i < items.Count; i++)
            {
                budget.Step();
                var iteration = new Scope(scope);
                Assign(f.Target, items[i], iteration);
                iteration.Set("loop", LoopVariable(items, i));
                if (Execute(f.Body, iteration, output) == Flow.Break)
                    break;
            }
            if (items.Count == 0 && f.Else != null)
                Execute(f.Else, scope, output);
        }

        static JinjaDict LoopVariable(List<object?> items, int i)
        {
            int n = items.Count;
            var loop = new JinjaDict
            {
                ["index"] = (long)i + 1,
                ["index0"] = (long)i,
                ["revindex"] = (long)(n - i),
                ["revindex0"] = (long)(n - i - 1),
                ["first"] = i == 0,
                ["last"] = i == n - 1,
                ["length"] = (long)n,
                ["depth"] = 1L,
                ["depth0"] = 0L,
                ["previtem"] = i > 0 ? items[i - 1] : new Undefined("loop.previtem"),
                ["nextitem"] = i < n - 1 ? items[i + 1] : new Undefined("loop.nextitem"),
            };
            loop["cycle"] = new JinjaCallable("loop.cycle", a =>
                a.Positional.Count == 0 ? throw new RenderException("loop.cycle() needs at least one argument") : a.Positional[i % a.Positional.Count]);
            return loop;
        }

        static void Assign(Target target, object? value, Scope scope)
        {
            switch (target)
            {
                case NameTarget n:
                    scope.Set(n.Name, value);
                    break;
                case TupleTarget t:
                    var items = value is JinjaList or string or JinjaDict ? Values.Iterate(value).ToList()
                        : throw new RenderException($"cannot unpack non-iterable '{Values.TypeName(value)}' into {t.Names.Count} names");
                    if (items.Count != t.Names.Count)
                        throw new RenderException($"cannot unpack {items.Count} values into {t.Names.Count} names ({string.Join(", ", t.Names)})");
                    for (int i = 0; i < items.Count; i++)
                        scope.Set(t.Names[i], items[i]);
                    break;
                case AttributeTarget a:
                    if (scope.Lookup(a.Object) is not JinjaNamespace ns)
                        throw new RenderException($"cannot set attribute '{a.Attribute}' of '{a.Object}': only a namespace() accepts {{% set {a.Object}.{a.Attribute} = ... %}}");
                    ns.Attributes[a.Attribute] = value;
                    break;
            }
        }

        // ---- Expressions ----

        public static object? Evaluate(Expr e, Scope scope)
        {
            var budget = RenderBudget.Current;
            budget.Enter();
            try
            {
                return EvaluateCore(e, scope);
            }
            catch (RenderException ex) when (Locate(ex, e.Pos))
            {
                throw;
            }
            finally
            {
                budget.Leave();
            }
        }

        static object? EvaluateCore(Expr e, Scope scope)
        {
            switch (e)
            {
                case Literal l:
                    return l.Value;
                case NameExpr n:
                    return scope.Lookup(n.Name);
                case ListExpr l:
                    return new JinjaList(l.Items.Select(x => Evaluate(x, scope)));
                case TupleExpr t:
                    return new JinjaList(t.Items.Select(x => Evaluate(x, scope)), isTuple: true);
                case DictExpr d:
                    var dict = new JinjaDict();
                    foreach (var (key, value) in d.Items)
                        dict[Evaluate(key, scope) as string ?? throw new RenderException("dict keys in templates must be strings")] = Evaluate(value, scope);
                    return dict;
                case AttributeExpr a:
                    return Operations.GetAttribute(Evaluate(a.Object, scope), a.Name);
                case ItemExpr i:
                    return Operations.GetItem(Evaluate(i.Object, scope), Evaluate(i.Key, scope));
                case SliceExpr s:
                    return Operations.Slice(Evaluate(s.Object, scope), Optional(s.Start, scope), Optional(s.Stop, scope), Optional(s.Step, scope));
                case CallExpr c:
                    return Call(c, scope, null);
                case FilterExpr f:
                    return Filters.Apply(f.Name, Evaluate(f.Value, scope), Arguments(f.Args, scope));
                case TestExpr t:
                    return TestFunctions.Apply(t.Name, Evaluate(t.Value, scope), Arguments(t.Args, scope)) != t.Negated;
                case UnaryExpr u:
                    object? operand = Evaluate(u.Operand, scope);
                    return u.Op switch
                    {
                        "not" => !Values.IsTrue(operand),
                        "-" => Operations.Negate(operand),
                        _ => operand is long or double ? operand : operand is bool b ? (b ? 1L : 0L)
                            : throw new RenderException($"bad operand type for unary +: '{Values.TypeName(operand)}'"),
                    };
                case BinaryExpr b:
                    object? left = Evaluate(b.Left, scope);
                    // and/or give back an operand, as in Python, and skip the right side when they can.
                    if (b.Op == "and")
                        return Values.IsTrue(left) ? Evaluate(b.Right, scope) : left;
                    if (b.Op == "or")
                        return Values.IsTrue(left) ? left : Evaluate(b.Right, scope);
                    return Operations.Binary(b.Op, left, Evaluate(b.Right, scope));
                case CompareExpr c:
                    object? current = Evaluate(c.First, scope);
                    foreach (var (op, operandExpr) in c.Rest)
                    {
                        object? next = Evaluate(operandExpr, scope);
                        if (!Operations.Compare(op, current, next))
                            return false;
                        current = next;
                    }
                    return true;
                case CondExpr c:
                    if (Values.IsTrue(Evaluate(c.Test, scope)))
                        return Evaluate(c.Then, scope);
                    return c.Else != null ? Evaluate(c.Else, scope) : new Undefined("(inline if without else)");
                default:
                    throw new RenderException($"unsupported expression {e.GetType().Name}");
            }
        }

        static object? Invoke(JinjaCallable f, CallArguments args)
        {
            try
            {
                return f.Invoke(args);
            }
            catch (Exception e) when (e is not RenderException and not GraloraException and not OperationCanceledException)
            {
                // A function passed in the context failed: report it as a render error at this call.
                throw new RenderException($"{f.Name}() failed: {e.Message}");
            }
        }

        static object? Optional(Expr? e, Scope scope) => e == null ? null : Evaluate(e, scope);

        /// <summary>Evaluates call arguments, unpacking *iterable and **mapping; <paramref name="extra"/> is one more keyword (caller=).</summary>
        static CallArguments Arguments(Arguments args, Scope scope, (string Name, object? Value)? extra = null)
        {
            if (args.IsEmpty && extra == null)
                return CallArguments.Empty;
            var positional = args.Positional.Select(x => Evaluate(x, scope)).ToList();
            var keywords = args.Keywords.Select(k => (k.Name, Evaluate(k.Value, scope))).ToList();
            if (args.Unpacked != null)
            {
                object? items = Evaluate(args.Unpacked, scope);
                if (items is null or bool or long or double or JinjaCallable or JinjaNamespace)
                    throw new RenderException($"Value after * must be an iterable, not {Values.TypeName(items)}");
                positional.AddRange(Values.Iterate(items));
            }
            var more = new List<(string, object?)>();
            if (args.UnpackedKeywords != null)
            {
                if (Evaluate(args.UnpackedKeywords, scope) is not JinjaDict mapping)
                    throw new RenderException("argument after ** must be a mapping");
                RenderBudget.Current.Items(mapping.Count);
                more.AddRange(mapping.Select(p => (p.Key, p.Value)));
            }
            if (extra is { } e)
                more.Add(e);
            var names = more.Count == 0 ? null : keywords.Select(k => k.Name).ToHashSet();
            foreach (var (name, value) in more)
            {
                if (!names!.Add(name))
                    throw new RenderException($"got multiple values for keyword argument '{name}'");
                keywords.Add((name, value));
            }
            return new CallArguments(positional, keywords);
        }

        static object? Call(CallExpr c, Scope scope, (string Name, object? Value)? extra)
        {
            object? callee = Evaluate(c.Callee, scope);
            return callee switch
            {
                JinjaCallable f => Invoke(f, Arguments(c.Args, scope, extra)),
                Undefined u => throw new RenderException($"'{u.Name}' is undefined and cannot be called"
                    + (c.Callee is NameExpr && Filters.Exists(u.Name) ? $" ('{u.Name}' is a filter: write value|{u.Name})" : "")),
                _ => throw new RenderException($"'{Values.TypeName(callee)}' object is not callable"),
            };
        }
    }
}
