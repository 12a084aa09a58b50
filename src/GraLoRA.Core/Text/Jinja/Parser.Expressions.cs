using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace GraLoRA.Text.Jinja
{
    // Expressions, loosest first: a if b else c; or; and; not; comparisons and in; + -; ~; * / // %; **; unary - +;
    // then postfix (.attr, [item], (call)) and filters/tests (| and is).
    internal sealed partial class Parser
    {
        // ---- Expressions ----

        /// <summary>An expression, or a tuple when commas follow ("{% set a = 1, 2 %}").</summary>
        Expr ParseTuple(bool withCondition)
        {
            int pos = Current.Position;
            Expr first = withCondition ? ParseExpression() : ParseOr();
            if (!Current.IsOperator(","))
                return first;
            var items = new List<Expr> { first };
            while (Current.IsOperator(","))
            {
                _i++;
                if (!StartsExpression(Current))
                    break;
                items.Add(withCondition ? ParseExpression() : ParseOr());
            }
            return new TupleExpr(pos, items);
        }

        static bool StartsExpression(Token t) => t.Kind switch
        {
            TokenKind.Name => t.Value is not ("in" or "if" or "else" or "and" or "or" or "is"),
            TokenKind.String or TokenKind.Integer or TokenKind.Float => true,
            TokenKind.Operator => t.Value is "(" or "[" or "{" or "-" or "+",
            _ => false,
        };

        Expr ParseExpression()
        {
            Expr expr = ParseOr();
            while (Current.IsName("if"))
            {
                int pos = Current.Position;
                _i++;
                Expr test = ParseOr();
                Expr? otherwise = null;
                if (Current.IsName("else"))
                {
                    Enter(Next());
                    otherwise = ParseExpression();
                    Leave();
                }
                expr = new CondExpr(pos, test, expr, otherwise);
            }
            return expr;
        }

        Expr ParseOr()
        {
            Expr left = ParseAnd();
            while (Current.IsName("or"))
            {
                int pos = Next().Position;
                left = new BinaryExpr(pos, "or", left, ParseAnd());
            }
            return left;
        }

        Expr ParseAnd()
        {
            Expr left = ParseNot();
            while (Current.IsName("and"))
            {
                int pos = Next().Position;
                left = new BinaryExpr(pos, "and", left, ParseNot());
            }
            return left;
        }

        Expr ParseNot()
        {
            if (Current.IsName("not"))
            {
                Token not = Next();
                Enter(not);
                var operand = ParseNot();
                Leave();
                return new UnaryExpr(not.Position, "not", operand);
            }
            return ParseCompare();
        }

        Expr ParseCompare()
        {
            int pos = Current.Position;
            Expr first = ParseAdditive();
            var rest = new List<(string, Expr)>();
            while (true)
            {
                string op;
                if (Current.Kind == TokenKind.Operator && Current.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
                    op = Next().Value;
                else if (Current.IsName("in"))
                {
                    _i++;
                    op = "in";
                }
                else if (Current.IsName("not") && Peek().IsName("in"))
                {
                    _i += 2;
                    op = "not in";
                }
                else
                    break;
                rest.Add((op, ParseAdditive()));
            }
            return rest.Count == 0 ? first : new CompareExpr(pos, first, rest);
        }

        Expr ParseAdditive()
        {
            Expr left = ParseConcat();
            while (Current.Kind == TokenKind.Operator && Current.Value is "+" or "-")
            {
                Token op = Next();
                left = new BinaryExpr(op.Position, op.Value, left, ParseConcat());
            }
            return left;
        }

        Expr ParseConcat()
        {
            Expr left = ParseMultiplicative();
            while (Current.IsOperator("~"))
            {
                Token op = Next();
                left = new BinaryExpr(op.Position, "~", left, ParseMultiplicative());
            }
            return left;
        }

        Expr ParseMultiplicative()
        {
            Expr left = ParsePower();
            while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
            {
                Token op = Next();
                left = new BinaryExpr(op.Position, op.Value, left, ParsePower());
            }
            return left;
        }

        Expr ParsePower()
        {
            Expr left = ParseUnary(withFilters: true);
            while (Current.IsOperator("**"))
            {
                Token op = Next();
                left = new BinaryExpr(op.Position, "**", left, ParseUnary(withFilters: true));
            }
            return left;
        }

        Expr ParseUnary(bool withFilters)
        {
            Expr expr;
            if (Current.Kind == TokenKind.Operator && Current.Value is "-" or "+")
            {
                Token op = Next();
                Enter(op);
                expr = new UnaryExpr(op.Position, op.Value, ParseUnary(withFilters: false));
                Leave();
            }
            else
                expr = ParsePostfix(ParsePrimary());
            return withFilters ? ParseFiltersAndTests(expr) : expr;
        }

        Expr ParsePrimary()
        {
            Token t = Next();
            if (t.Kind == TokenKind.Operator && t.Value is "(" or "[" or "{")
            {
                Enter(t);
                Expr inner = ParseBracketed(t);
                Leave();
                return inner;
            }
            switch (t.Kind)
            {
                case TokenKind.Name:
                    if (t.Value is "caller" or "varargs" or "kwargs")
                        _specialNamesSeen |= t.Value switch { "caller" => SpecialNames.Caller, "varargs" => SpecialNames.Varargs, _ => SpecialNames.Kwargs };
                    return t.Value switch
                    {
                        "true" or "True" => new Literal(t.Position, true),
                        "false" or "False" => new Literal(t.Position, false),
                        "none" or "None" => new Literal(t.Position, null),
                        _ => new NameExpr(t.Position, t.Value),
                    };
                case TokenKind.String:
                    // Adjacent literals join, as in Python: 'a' "b" is 'ab'.
                    if (Current.Kind != TokenKind.String)
                        return new Literal(t.Position, t.Value);
                    var joined = new System.Text.StringBuilder(t.Value);
                    while (Current.Kind == TokenKind.String)
                        joined.Append(Next().Value);
                    return new Literal(t.Position, joined.ToString());
                case TokenKind.Integer:
                    if (!long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long l))
                        throw Error($"integer {t.Value} is too large", t);
                    return new Literal(t.Position, l);
                case TokenKind.Float:
                    return new Literal(t.Position, double.Parse(t.Value, NumberStyles.Float, CultureInfo.InvariantCulture));
                default:
                    throw Unexpected(t, "an expression");
            }
        }

        /// <summary>A parenthesized expression or tuple, a list literal or a dict literal, after its opening bracket.</summary>
        Expr ParseBracketed(Token t)
        {
            switch (t.Value)
            {
                case "(":
                    if (Current.IsOperator(")"))
                    {
                        _i++;
                        return new TupleExpr(t.Position, new List<Expr>());
                    }
                    Expr inner = ParseTuple(withCondition: true);
                    ExpectOperator(")");
                    return inner;
                case "[":
                    var items = new List<Expr>();
                    while (!Current.IsOperator("]"))
                    {
                        items.Add(ParseExpression());
                        if (!Current.IsOperator(","))
                            break;
                        _i++;
                    }
                    ExpectOperator("]");
                    return new ListExpr(t.Position, items);
                default:
                    var pairs = new List<(Expr, Expr)>();
                    while (!Current.IsOperator("}"))
                    {
                        Expr key = ParseExpression();
                        ExpectOperator(":");
                        pairs.Add((key, ParseExpression()));
                        if (!Current.IsOperator(","))
                            break;
                        _i++;
                    }
                    ExpectOperator("}");
                    return new DictExpr(t.Position, pairs);
            }
        }

        Expr ParsePostfix(Expr expr)
        {
            while (true)
            {
                Token t = Current;
                if (t.IsOperator("."))
                {
                    _i++;
                    Token name = Next();
                    expr = name.Kind switch
                    {
                        TokenKind.Name => new AttributeExpr(t.Position, expr, name.Value),
                        // items.0 is items[0]
                        TokenKind.Integer => new ItemExpr(t.Position, expr, new Literal(name.Position, long.Parse(name.Value, CultureInfo.InvariantCulture))),
                        _ => throw Unexpected(name, "an attribute name after '.'"),
                    };
                }
                else if (t.IsOperator("["))
                {
                    _i++;
                    Enter(t);
                    expr = ParseSubscript(t, expr);
                    Leave();
                }
                else if (t.IsOperator("("))
                {
                    _i++;
                    expr = new CallExpr(t.Position, expr, ParseArguments(t));
                }
                else
                    return expr;
            }
        }

        Expr ParseSubscript(Token open, Expr obj)
        {
            // [key], or a slice [start:stop:step] with any part left out.
            var parts = new Expr?[3];
            int count = 0;
            while (true)
            {
                if (!Current.IsOperator(":") && !Current.IsOperator("]"))
                    parts[count] = ParseExpression();
                if (Current.IsOperator("]"))
                    break;
                if (!Current.IsOperator(":") || count == 2)
                    throw Unexpected(Current, count == 2 ? "']'" : "':' or ']'");
                _i++;
                count++;
            }
            _i++;
            if (count == 0)
                return new ItemExpr(open.Position, obj, parts[0] ?? throw Error("empty subscript '[]'", open));
            return new SliceExpr(open.Position, obj, parts[0], parts[1], parts[2]);
        }

        /// <summary>
        /// Call arguments after '(' up to and including ')', as Jinja takes them: positional, then name=value, with one
        /// *iterable (after the positional ones) and one **mapping (last).
        /// </summary>
        Arguments ParseArguments(Token open)
        {
            Enter(open);
            var positional = new List<Expr>();
            var keywords = new List<(string, Expr)>();
            var keywordNames = new HashSet<string>();
            Expr? unpacked = null, unpackedKeywords = null;
            while (!Current.IsOperator(")"))
            {
                Token at = Current;
                if (at.IsOperator("*"))
                {
                    if (unpacked != null || unpackedKeywords != null)
                        throw Error("only one *iterable may be given, before any **mapping", at);
                    _i++;
                    unpacked = ParseExpression();
                }
                else if (at.IsOperator("**"))
                {
                    if (unpackedKeywords != null)
                        throw Error("only one **mapping may be given", at);
                    _i++;
                    unpackedKeywords = ParseExpression();
                }
                else if (at.Kind == TokenKind.Name && Peek().IsOperator("="))
                {
                    if (unpackedKeywords != null)
                        throw Error("keyword argument follows **mapping", at);
                    string name = Next().Value;
                    _i++;
                    if (!keywordNames.Add(name))
                        throw Error($"keyword argument '{name}' given twice", at);
                    keywords.Add((name, ParseExpression()));
                }
                else
                {
                    if (keywords.Count > 0)
                        throw Error("positional argument follows keyword argument", at);
                    if (unpacked != null || unpackedKeywords != null)
                        throw Error("positional argument follows *iterable or **mapping", at);
                    positional.Add(ParseExpression());
                }
                if (!Current.IsOperator(","))
                    break;
                _i++;
            }
            ExpectOperator(")");
            Leave();
            return new Arguments(positional, keywords, unpacked, unpackedKeywords);
        }

        Expr ParseFiltersAndTests(Expr expr)
        {
            while (true)
            {
                Token t = Current;
                if (t.IsOperator("|"))
                {
                    _i++;
                    var filter = ParseFilterCall(Current);
                    expr = new FilterExpr(t.Position, expr, filter.Name, filter.Args);
                }
                else if (t.IsName("is"))
                {
                    _i++;
                    bool negated = Current.IsName("not");
                    if (negated)
                        _i++;
                    string name = ExpectIdentifier("a test name after 'is'");
                    Arguments args = Arguments.None;
                    if (Current.IsOperator("("))
                        args = ParseArguments(Next());
                    else if (StartsTestArgument(Current))
                    {
                        // "x is divisibleby 3": one argument without parentheses.
                        args = new Arguments(new List<Expr> { ParsePostfix(ParsePrimary()) }, new List<(string, Expr)>());
                    }
                    expr = new TestExpr(t.Position, expr, name, args, negated);
                }
                else
                    return expr;
            }
        }

        static bool StartsTestArgument(Token t) => t.Kind switch
        {
            TokenKind.Name => t.Value is not ("in" or "if" or "else" or "and" or "or" or "is" or "not"),
            TokenKind.String or TokenKind.Integer or TokenKind.Float => true,
            TokenKind.Operator => t.Value is "[" or "{",
            _ => false,
        };
    }
}
