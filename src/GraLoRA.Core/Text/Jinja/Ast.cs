using System.Collections.Generic;

namespace GraLoRA.Text.Jinja
{
    // The syntax tree. Every node keeps the source offset it starts at, so render errors can name a line.

    internal abstract record Node(int Pos);

    // ---- Statements ----

    internal sealed record TextNode(int Pos, string Text) : Node(Pos);
    internal sealed record OutputNode(int Pos, Expr Value) : Node(Pos);
    internal sealed record IfNode(int Pos, List<(Expr Test, List<Node> Body)> Branches, List<Node>? Else) : Node(Pos);
    internal sealed record ForNode(int Pos, Target Target, Expr Iterable, Expr? Filter, List<Node> Body, List<Node>? Else) : Node(Pos);
    /// <summary>{% set target = value %}, or the block form {% set target %}body{% endset %} when Value is null.</summary>
    internal sealed record SetNode(int Pos, Target Target, Expr? Value, List<Node>? Body) : Node(Pos);
    /// <summary>
    /// {% macro name(parameters) %}body{% endmacro %}. As in Jinja, a macro whose body names caller, varargs or kwargs
    /// takes a {% call %} block's body, extra positional arguments or extra keyword arguments under that name.
    /// </summary>
    internal sealed record MacroNode(int Pos, string Name, List<(string Name, Expr? Default)> Parameters, List<Node> Body, SpecialNames Uses) : Node(Pos);
    /// <summary>{% call(parameters) macro(arguments) %}body{% endcall %}: calls the macro with the body as caller().</summary>
    internal sealed record CallBlockNode(int Pos, List<(string Name, Expr? Default)> Parameters, CallExpr Call, List<Node> Body, SpecialNames Uses) : Node(Pos);
    /// <summary>{% filter name(args) | ... %}body{% endfilter %}: the rendered body through the filters.</summary>
    internal sealed record FilterBlockNode(int Pos, List<FilterCall> Filters, List<Node> Body) : Node(Pos);
    internal sealed record FilterCall(int Pos, string Name, Arguments Args);

    /// <summary>Which of Jinja's special names a macro body uses.</summary>
    [System.Flags]
    internal enum SpecialNames { None = 0, Caller = 1, Varargs = 2, Kwargs = 4 }
    internal sealed record BreakNode(int Pos) : Node(Pos);
    internal sealed record ContinueNode(int Pos) : Node(Pos);

    /// <summary>What a set or for assigns to.</summary>
    internal abstract record Target(int Pos);
    internal sealed record NameTarget(int Pos, string Name) : Target(Pos);
    internal sealed record TupleTarget(int Pos, List<string> Names) : Target(Pos);
    /// <summary>{% set ns.attr = value %}: only namespaces accept it.</summary>
    internal sealed record AttributeTarget(int Pos, string Object, string Attribute) : Target(Pos);

    // ---- Expressions ----

    internal abstract record Expr(int Pos) : Node(Pos);

    /// <summary>A string, number, boolean or none.</summary>
    internal sealed record Literal(int Pos, object? Value) : Expr(Pos);
    internal sealed record ListExpr(int Pos, List<Expr> Items) : Expr(Pos);
    internal sealed record TupleExpr(int Pos, List<Expr> Items) : Expr(Pos);
    internal sealed record DictExpr(int Pos, List<(Expr Key, Expr Value)> Items) : Expr(Pos);
    internal sealed record NameExpr(int Pos, string Name) : Expr(Pos);
    /// <summary>obj.name</summary>
    internal sealed record AttributeExpr(int Pos, Expr Object, string Name) : Expr(Pos);
    /// <summary>obj[key]</summary>
    internal sealed record ItemExpr(int Pos, Expr Object, Expr Key) : Expr(Pos);
    /// <summary>obj[start:stop:step]</summary>
    internal sealed record SliceExpr(int Pos, Expr Object, Expr? Start, Expr? Stop, Expr? Step) : Expr(Pos);
    internal sealed record CallExpr(int Pos, Expr Callee, Arguments Args) : Expr(Pos);
    /// <summary>value | name(args)</summary>
    internal sealed record FilterExpr(int Pos, Expr Value, string Name, Arguments Args) : Expr(Pos);
    /// <summary>value is [not] name(args)</summary>
    internal sealed record TestExpr(int Pos, Expr Value, string Name, Arguments Args, bool Negated) : Expr(Pos);
    /// <summary>not, unary - and +.</summary>
    internal sealed record UnaryExpr(int Pos, string Op, Expr Operand) : Expr(Pos);
    /// <summary>Arithmetic, ~, and, or.</summary>
    internal sealed record BinaryExpr(int Pos, string Op, Expr Left, Expr Right) : Expr(Pos);
    /// <summary>a == b &lt; c ...: chained like Python (a == b and b &lt; c).</summary>
    internal sealed record CompareExpr(int Pos, Expr First, List<(string Op, Expr Operand)> Rest) : Expr(Pos);
    /// <summary>a if test else b; without else the result is undefined when the test fails.</summary>
    internal sealed record CondExpr(int Pos, Expr Test, Expr Then, Expr? Else) : Expr(Pos);

    /// <summary>Call arguments: positional, name=value, then *iterable and **mapping unpacked as Python does.</summary>
    internal sealed record Arguments(List<Expr> Positional, List<(string Name, Expr Value)> Keywords, Expr? Unpacked = null, Expr? UnpackedKeywords = null)
    {
        public static readonly Arguments None = new(new List<Expr>(), new List<(string, Expr)>());
        public bool IsEmpty => Positional.Count == 0 && Keywords.Count == 0 && Unpacked == null && UnpackedKeywords == null;
    }
}
