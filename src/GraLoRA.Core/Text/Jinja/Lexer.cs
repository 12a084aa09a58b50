using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace GraLoRA.Text.Jinja
{
    internal enum TokenKind
    {
        Text,
        BlockBegin,     // {%
        BlockEnd,       // %}
        VariableBegin,  // {{
        VariableEnd,    // }}
        Name,
        String,
        Integer,
        Float,
        Operator,
        End,
    }

    /// <summary>One token; <see cref="Position"/> is its offset in the template source, for error messages.</summary>
    internal readonly record struct Token(TokenKind Kind, string Value, int Position)
    {
        public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;
        public bool IsName(string name) => Is(TokenKind.Name, name);
        public bool IsOperator(string op) => Is(TokenKind.Operator, op);

        /// <summary>How the token reads in an error message.</summary>
        public string Describe() => Kind switch
        {
            TokenKind.End => "end of template",
            TokenKind.Text => "template text",
            TokenKind.String => "string '" + Value + "'",
            _ => "'" + Value + "'",
        };
    }

    /// <summary>
    /// Splits a template into text and tag tokens, applying whitespace control the way transformers configures
    /// Jinja (and @huggingface/jinja does): trim_blocks, lstrip_blocks, '-' modifiers, one trailing newline dropped.
    /// </summary>
    internal sealed class Lexer
    {
        // Longest first, so "//" wins over "/".
        static readonly string[] Operators =
        {
            "**", "//", "==", "!=", "<=", ">=",
            "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|",
        };

        readonly string _src;
        readonly SourceMap _map;
        readonly List<Token> _tokens = new();
        readonly int _maxNesting;
        int _pos;

        Lexer(string source, SourceMap map, int maxNesting)
        {
            _maxNesting = maxNesting;
            // Jinja's default keep_trailing_newline=False: a single trailing newline is not output.
            _src = source.EndsWith('\n') ? source[..^1] : source;
            _map = map;
        }

        public static List<Token> Tokenize(string source, SourceMap map, int maxNesting)
        {
            var lexer = new Lexer(source, map, maxNesting);
            lexer.Run();
            return lexer._tokens;
        }

        void Run()
        {
            // What the previous tag asks of the text that follows it.
            bool stripNext = false, trimNewline = false;
            while (_pos < _src.Length)
            {
                int tagStart = FindTagStart(_pos);
                int textEnd = tagStart < 0 ? _src.Length : tagStart;
                char tagChar = tagStart < 0 ? '\0' : _src[tagStart + 1];
                bool dashBefore = tagStart >= 0 && tagStart + 2 < _src.Length && _src[tagStart + 2] == '-';
                EmitText(_pos, textEnd, stripNext, trimNewline, dashBefore, lstrip: tagChar is '%' or '#');
                if (tagStart < 0)
                    break;

                _pos = tagStart + 2 + (dashBefore ? 1 : 0);
                if (tagChar == '#')
                {
                    int close = _src.IndexOf("#}", _pos, StringComparison.Ordinal);
                    if (close < 0)
                        throw TemplateError.Syntax("unclosed comment: missing '#}'", tagStart, _map);
                    stripNext = close > _pos && _src[close - 1] == '-';
                    trimNewline = true;
                    _pos = close + 2;
                    continue;
                }

                bool block = tagChar == '%';
                _tokens.Add(new Token(block ? TokenKind.BlockBegin : TokenKind.VariableBegin, block ? "{%" : "{{", tagStart));
                stripNext = LexTagContents(block ? '%' : '}');
                trimNewline = block;
            }
            _tokens.Add(new Token(TokenKind.End, "", _src.Length));
        }

        int FindTagStart(int from)
        {
            for (int i = _src.IndexOf('{', from); i >= 0 && i + 1 < _src.Length; i = _src.IndexOf('{', i + 1))
            {
                char c = _src[i + 1];
                if (c is '{' or '%' or '#')
                    return i;
            }
            return -1;
        }

        void EmitText(int start, int end, bool stripLeading, bool trimNewline, bool stripTrailing, bool lstrip)
        {
            string text = _src[start..end];
            if (stripTrailing)
                text = text.TrimEnd();
            else if (lstrip)
            {
                // lstrip_blocks: spaces and tabs between the start of a line and a block tag go.
                int r = text.Length;
                while (r > 0 && text[r - 1] is ' ' or '\t')
                    r--;
                char before = r > 0 ? text[r - 1] : start > 0 ? _src[start - 1] : '\n';
                if (before is '\n' or '\r')
                    text = text[..r];
            }
            if (stripLeading)
                text = text.TrimStart();
            else if (trimNewline && text.StartsWith('\n'))
                text = text[1..]; // trim_blocks: the first newline after a block tag goes
            if (text.Length > 0)
                _tokens.Add(new Token(TokenKind.Text, text, start));
        }

        /// <summary>Tokens up to the closing '%}' or '}}'; returns whether it was written '-%}' / '-}}'.</summary>
        bool LexTagContents(char closer)
        {
            TokenKind endKind = closer == '%' ? TokenKind.BlockEnd : TokenKind.VariableEnd;
            string endText = closer == '%' ? "%}" : "}}";
            int braceDepth = 0; // a '}}' inside a dict literal closes braces, not the tag
            int nesting = 0;    // brackets of any kind, refused early when deeper than the parser would take
            while (true)
            {
                while (_pos < _src.Length && char.IsWhiteSpace(_src[_pos]))
                    _pos++;
                if (_pos >= _src.Length)
                    throw TemplateError.Syntax($"unexpected end of template: missing '{endText}'", _pos, _map);

                if (braceDepth == 0)
                {
                    if (At("-" + endText))
                    {
                        _tokens.Add(new Token(endKind, endText, _pos));
                        _pos += 3;
                        return true;
                    }
                    if (At(endText))
                    {
                        _tokens.Add(new Token(endKind, endText, _pos));
                        _pos += 2;
                        return false;
                    }
                }

                char c = _src[_pos];
                int start = _pos;
                if (c is '\'' or '"')
                    _tokens.Add(new Token(TokenKind.String, ReadString(c), start));
                else if (char.IsAsciiDigit(c))
                    _tokens.Add(ReadNumber());
                else if (c == '_' || char.IsLetter(c))
                {
                    while (_pos < _src.Length && (_src[_pos] == '_' || char.IsLetterOrDigit(_src[_pos])))
                        _pos++;
                    _tokens.Add(new Token(TokenKind.Name, _src[start.._pos], start));
                }
                else
                {
                    string? op = Array.Find(Operators, At);
                    if (op == null)
                        throw TemplateError.Syntax($"unexpected character '{c}'", _pos, _map);
                    if (op == "{") braceDepth++;
                    else if (op == "}") braceDepth = Math.Max(0, braceDepth - 1);
                    if (op is "(" or "[" or "{" && ++nesting > _maxNesting)
                        throw TemplateError.TooDeep(_maxNesting, start, _map);
                    if (op is ")" or "]" or "}")
                        nesting = Math.Max(0, nesting - 1);
                    _tokens.Add(new Token(TokenKind.Operator, op, start));
                    _pos += op.Length;
                }
            }
        }

        bool At(string s) => string.CompareOrdinal(_src, _pos, s, 0, s.Length) == 0;

        Token ReadNumber()
        {
            int start = _pos;
            while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
                _pos++;
            // After a dot ("items.0.name") only an integer may follow.
            bool afterDot = _tokens.Count > 0 && _tokens[^1].IsOperator(".");
            bool isFloat = false;
            if (!afterDot && _pos + 1 < _src.Length && _src[_pos] == '.' && char.IsAsciiDigit(_src[_pos + 1]))
            {
                isFloat = true;
                _pos++;
                while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
                    _pos++;
            }
            if (!afterDot && _pos < _src.Length && _src[_pos] is 'e' or 'E')
            {
                int exp = _pos + 1;
                if (exp < _src.Length && _src[exp] is '+' or '-')
                    exp++;
                if (exp < _src.Length && char.IsAsciiDigit(_src[exp]))
                {
                    isFloat = true;
                    _pos = exp;
                    while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
                        _pos++;
                }
            }
            return new Token(isFloat ? TokenKind.Float : TokenKind.Integer, _src[start.._pos], start);
        }

        /// <summary>A quoted string with Python's escapes; unknown escapes keep their backslash, as in Python.</summary>
        string ReadString(char quote)
        {
            int start = _pos++;
            var sb = new StringBuilder();
            while (true)
            {
                if (_pos >= _src.Length)
                    throw TemplateError.Syntax("unterminated string literal", start, _map);
                char c = _src[_pos++];
                if (c == quote)
                    return sb.ToString();
                if (c != '\\' || _pos >= _src.Length)
                {
                    sb.Append(c);
                    continue;
                }
                char e = _src[_pos++];
                switch (e)
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'v': sb.Append('\v'); break;
                    case '0': sb.Append('\0'); break;
                    case '\\': case '\'': case '"': sb.Append(e); break;
                    case '\n': break; // line continuation
                    case 'x': sb.Append(ReadHexEscape(2, start)); break;
                    case 'u': sb.Append(ReadHexEscape(4, start)); break;
                    case 'U': sb.Append(ReadHexEscape(8, start)); break;
                    default: sb.Append('\\').Append(e); break;
                }
            }
        }

        string ReadHexEscape(int digits, int stringStart)
        {
            if (_pos + digits > _src.Length
                || !int.TryParse(_src.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code)
                || code > 0x10FFFF)
                throw TemplateError.Syntax("invalid \\x, \\u or \\U escape in string literal", stringStart, _map);
            _pos += digits;
            // Like Python, \uD800 alone is allowed: a lone surrogate, not a code point.
            return code <= 0xFFFF ? ((char)code).ToString() : char.ConvertFromUtf32(code);
        }
    }

    /// <summary>Turns source offsets into 1-based line and column numbers.</summary>
    internal sealed class SourceMap
    {
        readonly List<int> _lineStarts = new() { 0 };

        public SourceMap(string source)
        {
            for (int i = 0; i < source.Length; i++)
                if (source[i] == '\n')
                    _lineStarts.Add(i + 1);
        }

        public (int Line, int Column) Locate(int offset)
        {
            int line = _lineStarts.BinarySearch(offset);
            if (line < 0)
                line = ~line - 1;
            return (line + 1, offset - _lineStarts[line] + 1);
        }

        public string Describe(int offset)
        {
            var (line, column) = Locate(offset);
            return $"line {line}, column {column}";
        }
    }
}
