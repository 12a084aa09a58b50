using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace GraLoRA.Text.Jinja
{
    /// <summary>
    /// Recursive-descent parser with Jinja's operator precedence, loosest first:
    /// a if b else c; or; and; not; comparisons and in; + -; ~; * / // %; **; unary - +;
    /// then postfix (.attr, [item], (call)) and filters/tests (| and is).
    /// Every way the parser recurses (brackets, calls, subscripts, unary operators, not, else-chains, blocks) passes
    /// through a counted nesting level, so a hostile template fails with ChatTemplateTooDeep long before the stack ends.
    /// </summary>
    internal sealed partial class Parser
    {
        readonly List<Token> _tokens;
        readonly SourceMap _map;
        readonly int _maxNesting;
        int _i, _nesting;
        SpecialNames _specialNamesSeen;

        Parser(List<Token> tokens, SourceMap map, int maxNesting)
        {
            _tokens = tokens;
            _map = map;
            _maxNesting = maxNesting;
        }

        public static List<Node> Parse(string source, JinjaLimits limits)
        {
            // Python's Jinja reads "\r\n" and "\r" as "\n" (in text and string literals alike) and writes "\n".
            source = source.Replace("\r\n", "\n").Replace('\r', '\n');
            var map = new SourceMap(source);
            var parser = new Parser(Lexer.Tokenize(source, map, limits.MaxNesting), map, limits.MaxNesting);
            var body = parser.ParseBody(out Token? stray);
            if (stray != null)
                throw parser.Error($"unexpected '{stray.Value.Value}': no open block to close", stray.Value);
            return body;
        }

        Token Current => _tokens[_i];
        Token Peek(int ahead = 1) => _tokens[System.Math.Min(_i + ahead, _tokens.Count - 1)];
        Token Next() => _tokens[_i++];

        GraloraException Error(string message, Token at) => TemplateError.Syntax(message, at.Position, _map);

        /// <summary>One nesting level deeper (undone with <see cref="Leave"/>); refused past the limit.</summary>
        void Enter(Token at)
        {
            if (++_nesting > _maxNesting)
                throw TemplateError.TooDeep(_maxNesting, at.Position, _map);
            // The counted limit comes first; this only guards threads with unusually small stacks.
            if (!System.Runtime.CompilerServices.RuntimeHelpers.TryEnsureSufficientExecutionStack())
                throw TemplateError.TooDeepForStack(_nesting - 1, at.Position, _map);
        }

        void Leave() => _nesting--;
        GraloraException Unexpected(Token at, string expected) => Error($"unexpected {at.Describe()}, expected {expected}", at);

        void ExpectOperator(string op)
        {
            if (!Current.IsOperator(op))
                throw Unexpected(Current, $"'{op}'");
            _i++;
        }

        void ExpectName(string name)
        {
            if (!Current.IsName(name))
                throw Unexpected(Current, $"'{name}'");
            _i++;
        }

        string ExpectIdentifier(string what)
        {
            if (Current.Kind != TokenKind.Name)
                throw Unexpected(Current, what);
            return Next().Value;
        }

        void ExpectBlockEnd()
        {
            if (Current.Kind != TokenKind.BlockEnd)
                throw Unexpected(Current, "'%}'");
            _i++;
        }

        // ---- Statements ----

        /// <summary>
        /// Nodes until a block tag this level does not own (endfor, else, ...) or the end. That tag's name
        /// comes back in <paramref name="stopTag"/>, its "{%" and name consumed, its arguments not.
        /// </summary>
        List<Node> ParseBody(out Token? stopTag)
        {
            var body = new List<Node>();
            while (true)
            {
                Token t = Current;
                switch (t.Kind)
                {
                    case TokenKind.End:
                        stopTag = null;
                        return body;
                    case TokenKind.Text:
                        _i++;
                        body.Add(new TextNode(t.Position, t.Value));
                        break;
                    case TokenKind.VariableBegin:
                        _i++;
                        body.Add(new OutputNode(t.Position, ParseTuple(withCondition: true)));
                        if (Current.Kind != TokenKind.VariableEnd)
                            throw Unexpected(Current, "'}}'");
                        _i++;
                        break;
                    case TokenKind.BlockBegin:
                        Token name = Peek();
                        if (name.Kind != TokenKind.Name)
                            throw Unexpected(name, "a tag name such as if, for or set");
                        if (IsClosingTag(name.Value))
                        {
                            _i += 2;
                            stopTag = name;
                            return body;
                        }
                        _i += 2;
                        ParseStatement(name, body);
                        break;
                    default:
                        throw Unexpected(t, "text or a tag");
                }
            }
        }

        static bool IsClosingTag(string name) =>
            name.StartsWith("end", System.StringComparison.Ordinal) || name is "else" or "elif";

        /// <summary>Parses the body of a block up to one of <paramref name="allowed"/>; returns which one closed it.</summary>
        List<Node> ParseBlock(Token opener, out string closer, params string[] allowed)
        {
            Enter(opener);
            var body = ParseBody(out Token? stop);
            Leave();
            if (stop == null)
                throw Error($"unexpected end of template: '{opener.Value}' opened at {_map.Describe(opener.Position)} needs {{% {allowed[^1]} %}}", Current);
            if (!allowed.Contains(stop.Value.Value))
                throw Error($"unexpected '{stop.Value.Value}' inside '{opener.Value}' opened at {_map.Describe(opener.Position)}; expected {string.Join(" or ", allowed)}", stop.Value);
            closer = stop.Value.Value;
            return body;
        }

        void ParseStatement(Token tag, List<Node> into)
        {
            switch (tag.Value)
            {
                case "if":
                    into.Add(ParseIf(tag));
                    break;
                case "for":
                    into.Add(ParseFor(tag));
                    break;
                case "set":
                    into.Add(ParseSet(tag));
                    break;
                case "macro":
                    into.Add(ParseMacro(tag));
                    break;
                case "call":
                    into.Add(ParseCallBlock(tag));
                    break;
                case "filter":
                    into.Add(ParseFilterBlock(tag));
                    break;
                case "break":
                    ExpectBlockEnd();
                    into.Add(new BreakNode(tag.Position));
                    break;
                case "continue":
                    ExpectBlockEnd();
                    into.Add(new ContinueNode(tag.Position));
                    break;
                case "generation":
                    // transformers' {% generation %} marks assistant text for masks; it renders its body unchanged.
                    ExpectBlockEnd();
                    into.AddRange(ParseBlock(tag, out _, "endgeneration"));
                    ExpectBlockEnd();
                    break;
                default:
                    throw Error($"unknown tag '{tag.Value}'", tag);
            }
        }

        IfNode ParseIf(Token tag)
        {
            var branches = new List<(Expr, List<Node>)>();
            List<Node>? elseBody = null;
            Expr test = ParseTuple(withCondition: true);
            while (true)
            {
                ExpectBlockEnd();
                var body = ParseBlock(tag, out string closer, "elif", "else", "endif");
                branches.Add((test, body));
                if (closer == "elif")
                {
                    test = ParseTuple(withCondition: true);
                    continue;
                }
                if (closer == "else")
                {
                    ExpectBlockEnd();
                    elseBody = ParseBlock(tag, out _, "endif");
                }
                ExpectBlockEnd();
                return new IfNode(tag.Position, branches, elseBody);
            }
        }

        ForNode ParseFor(Token tag)
        {
            Target target = ParseTarget(allowAttribute: false);
            ExpectName("in");
            // The iterable has no conditional expression: "for x in xs if cond" filters the loop.
            Expr iterable = ParseTuple(withCondition: false);
            Expr? filter = null;
            if (Current.IsName("if"))
            {
                _i++;
                filter = ParseExpression();
            }
            ExpectBlockEnd();
            var body = ParseBlock(tag, out string closer, "else", "endfor");
            List<Node>? elseBody = null;
            if (closer == "else")
            {
                ExpectBlockEnd();
                elseBody = ParseBlock(tag, out _, "endfor");
            }
            ExpectBlockEnd();
            return new ForNode(tag.Position, target, iterable, filter, body, elseBody);
        }

        SetNode ParseSet(Token tag)
        {
            Target target = ParseTarget(allowAttribute: true);
            if (Current.IsOperator("="))
            {
                _i++;
                Expr value = ParseTuple(withCondition: true);
                ExpectBlockEnd();
                return new SetNode(tag.Position, target, value, null);
            }
            ExpectBlockEnd();
            var body = ParseBlock(tag, out _, "endset");
            ExpectBlockEnd();
            return new SetNode(tag.Position, target, null, body);
        }

        Target ParseTarget(bool allowAttribute)
        {
            Token first = Current;
            bool parenthesized = first.IsOperator("(");
            if (parenthesized)
                _i++;
            var names = new List<string> { ExpectIdentifier("a variable name") };
            if (allowAttribute && !parenthesized && Current.IsOperator("."))
            {
                _i++;
                return new AttributeTarget(first.Position, names[0], ExpectIdentifier("an attribute name"));
            }
            while (Current.IsOperator(","))
            {
                _i++;
                if (Current.Kind != TokenKind.Name || Current.IsName("in"))
                    break; // trailing comma
                names.Add(Next().Value);
            }
            if (parenthesized)
                ExpectOperator(")");
            return names.Count == 1 && !parenthesized ? new NameTarget(first.Position, names[0]) : new TupleTarget(first.Position, names);
        }

        MacroNode ParseMacro(Token tag)
        {
            string name = ExpectIdentifier("a macro name");
            ExpectOperator("(");
            var parameters = ParseParameters();
            ExpectBlockEnd();
            var body = ParseSpecialNamesScope(() => ParseBlock(tag, out _, "endmacro"), out SpecialNames uses);
            if (uses.HasFlag(SpecialNames.Caller) && parameters.Any(p => p.Item1 == "caller" && p.Item2 == null))
                throw Error($"macro '{name}' uses caller: its 'caller' parameter must be left out or given a default", tag);
            ExpectBlockEnd();
            return new MacroNode(tag.Position, name, parameters, body, uses);
        }

        /// <summary>Parameter declarations after '(' up to and including ')': name or name=default.</summary>
        List<(string, Expr?)> ParseParameters()
        {
            var parameters = new List<(string, Expr?)>();
            var names = new HashSet<string>();
            while (!Current.IsOperator(")"))
            {
                Token at = Current;
                string parameter = ExpectIdentifier("a parameter name");
                Expr? defaultValue = null;
                if (Current.IsOperator("="))
                {
                    _i++;
                    defaultValue = ParseExpression();
                }
                if (!names.Add(parameter))
                    throw Error($"parameter '{parameter}' is declared twice", at);
                parameters.Add((parameter, defaultValue));
                if (!Current.IsOperator(","))
                    break;
                _i++;
            }
            ExpectOperator(")");
            return parameters;
        }

        /// <summary>Parses a macro or call-block body, noting which of caller, varargs and kwargs it names (nested bodies included, as Jinja does).</summary>
        List<Node> ParseSpecialNamesScope(System.Func<List<Node>> parseBody, out SpecialNames uses)
        {
            SpecialNames outer = _specialNamesSeen;
            _specialNamesSeen = SpecialNames.None;
            var body = parseBody();
            uses = _specialNamesSeen;
            _specialNamesSeen = outer | uses;
            return body;
        }

        /// <summary>{% call(parameters) macro(arguments) %}body{% endcall %}</summary>
        CallBlockNode ParseCallBlock(Token tag)
        {
            var parameters = new List<(string, Expr?)>();
            if (Current.IsOperator("("))
            {
                _i++;
                parameters = ParseParameters();
            }
            Token at = Current;
            if (ParseExpression() is not CallExpr call)
                throw Error("{% call %} needs a macro call, e.g. {% call list_items(xs) %}", at);
            ExpectBlockEnd();
            var body = ParseSpecialNamesScope(() => ParseBlock(tag, out _, "endcall"), out SpecialNames uses);
            ExpectBlockEnd();
            return new CallBlockNode(tag.Position, parameters, call, body, uses);
        }

        /// <summary>{% filter name(args) | name2 %}body{% endfilter %}</summary>
        FilterBlockNode ParseFilterBlock(Token tag)
        {
            var filters = new List<FilterCall>();
            do
            {
                if (filters.Count > 0)
                    _i++; // the '|'
                filters.Add(ParseFilterCall(Current));
            }
            while (Current.IsOperator("|"));
            ExpectBlockEnd();
            var body = ParseBlock(tag, out _, "endfilter");
            ExpectBlockEnd();
            return new FilterBlockNode(tag.Position, filters, body);
        }

        FilterCall ParseFilterCall(Token at)
        {
            string name = ExpectIdentifier("a filter name");
            Arguments args = Arguments.None;
            if (Current.IsOperator("("))
            {
                _i++;
                args = ParseArguments(at);
            }
            return new FilterCall(at.Position, name, args);
        }
    }
}
