using System.Globalization;

namespace Mistral.Merge.Jinja;

/// <summary>@huggingface/jinja's recursive-descent parser, same grammar and precedence (filters bind tighter than
/// unary minus, tests tighter than <c>*</c>), same error messages where it has its own.</summary>
internal sealed class JinjaParser
{
    private readonly List<Token> _tokens;
    private readonly int _end;
    private int _current;
    private int _depth;
    private const int MaxNesting = 400;   // far deeper than any template; deeper input would overflow the stack

    /// <summary>Counts one level of nesting (a block, a parenthesis, a prefix operator) for the duration of a parse.</summary>
    private T Nested<T>(Func<T> parse)
    {
        if (++_depth > MaxNesting) throw new JinjaError($"the template nests deeper than {MaxNesting} levels", Here);
        try { return parse(); }
        finally { _depth--; }
    }

    private JinjaParser(List<Token> tokens, int end) { _tokens = tokens; _end = end; }

    public static ProgramNode Parse(List<Token> tokens, int endOffset)
    {
        var p = new JinjaParser(tokens, endOffset);
        var body = new List<Node>();
        while (p._current < tokens.Count) body.Add(p.ParseAny());
        var program = new ProgramNode(body);
        CheckHeight(program);
        return program;
    }

    /// <summary>A long chain of operators (1 + 1 + … or x|f|f|…) is built without recursion but evaluated with it:
    /// refuse trees taller than the evaluator's stack allows (walked with an explicit stack).</summary>
    private static void CheckHeight(Node root)
    {
        const int MaxHeight = 1000;
        var stack = new Stack<(Node Node, int Depth)>();
        stack.Push((root, 0));
        while (stack.Count > 0)
        {
            var (node, depth) = stack.Pop();
            if (depth > MaxHeight) throw new JinjaError($"the template nests deeper than {MaxHeight} levels", node.Offset);
            foreach (var child in node.Children())
                if (child != null) stack.Push((child, depth + 1));
        }
    }

    private Token Peek(int ahead = 0) => _current + ahead < _tokens.Count
        ? _tokens[_current + ahead]
        : throw new JinjaError("Unexpected end of template", _end);

    private int Here => _current < _tokens.Count ? _tokens[_current].Offset : _end;

    private Token Expect(TokenType type, string error)
    {
        var prev = Peek();
        _current++;
        if (prev.Type != type) throw new JinjaError($"Parser Error: {error}. {prev.Type} !== {type}.", prev.Offset);
        return prev;
    }

    private void ExpectIdentifier(string name)
    {
        if (!IsIdentifier(name)) throw new JinjaError($"Expected {name}", Here);
        ++_current;
    }

    private bool Is(params TokenType[] types)
    {
        if (_current + types.Length > _tokens.Count) return false;
        for (int i = 0; i < types.Length; i++) if (_tokens[_current + i].Type != types[i]) return false;
        return true;
    }

    private bool IsStatement(params string[] names) =>
        _current + 1 < _tokens.Count && _tokens[_current].Type == TokenType.OpenStatement
        && _tokens[_current + 1].Type == TokenType.Identifier && names.Contains(_tokens[_current + 1].Value);

    private bool IsIdentifier(params string[] names)
    {
        if (_current + names.Length > _tokens.Count) return false;
        for (int i = 0; i < names.Length; i++)
            if (_tokens[_current + i].Type != TokenType.Identifier || _tokens[_current + i].Value != names[i]) return false;
        return true;
    }

    private Node ParseAny() => Nested(ParseAnyCore);

    private Node ParseAnyCore()
    {
        var t = Peek();
        switch (t.Type)
        {
            case TokenType.Comment: _current++; return new CommentNode(t.Offset);
            case TokenType.Text: _current++; return new StringNode(t.Offset, t.Value);
            case TokenType.OpenStatement: return ParseStatement();
            case TokenType.OpenExpression:
                {
                    _current++;
                    var result = ParseExpression();
                    Expect(TokenType.CloseExpression, "Expected closing expression token");
                    return result;
                }
            default: throw new JinjaError($"Unexpected token type: {t.Type}", t.Offset);
        }
    }

    /// <summary>Statements until one of <paramref name="ends"/> (the enclosing block's closing tags).</summary>
    private List<Node> Until(params string[] ends)
    {
        var body = new List<Node>();
        while (!IsStatement(ends))
        {
            if (_current >= _tokens.Count) throw new JinjaError($"Unexpected end of template: expected {{% {ends.First(e => e.StartsWith("end", StringComparison.Ordinal))} %}}", _end);
            body.Add(ParseAny());
        }
        return body;
    }

    private void ExpectEnd(string name)
    {
        Expect(TokenType.OpenStatement, "Expected {% token");
        ExpectIdentifier(name);
        Expect(TokenType.CloseStatement, "Expected %} token");
    }

    private Node ParseStatement()
    {
        var open = Expect(TokenType.OpenStatement, "Expected opening statement token");
        var t = Peek();
        if (t.Type != TokenType.Identifier) throw new JinjaError($"Unknown statement, got {t.Type}", t.Offset);
        int at = open.Offset;
        switch (t.Value)
        {
            case "set":
                ++_current;
                return ParseSet(at);
            case "if":
                {
                    ++_current;
                    var result = ParseIf(at);
                    ExpectEnd("endif");
                    return result;
                }
            case "macro":
                {
                    ++_current;
                    var name = ParsePrimary();
                    if (name is not IdentifierNode id) throw new JinjaError("Expected identifier following macro statement", name.Offset);
                    var args = ParseArgs(parameters: true);
                    Expect(TokenType.CloseStatement, "Expected closing statement token");
                    var body = Until("endmacro");
                    ExpectEnd("endmacro");
                    return new MacroNode(at, id, args, body);
                }
            case "for":
                {
                    ++_current;
                    var result = ParseFor(at);
                    ExpectEnd("endfor");
                    return result;
                }
            case "call":
                {
                    ++_current;
                    List<Node>? callerArgs = Is(TokenType.OpenParen) ? ParseArgs(parameters: true) : null;
                    var callee = ParsePrimary();
                    if (callee is not IdentifierNode) throw new JinjaError("Expected identifier following call statement", callee.Offset);
                    var callArgs = ParseArgs(parameters: false);
                    Expect(TokenType.CloseStatement, "Expected closing statement token");
                    var body = Until("endcall");
                    ExpectEnd("endcall");
                    return new CallBlockNode(at, new CallNode(callee.Offset, callee, callArgs), callerArgs, body);
                }
            case "break":
                ++_current;
                Expect(TokenType.CloseStatement, "Expected closing statement token");
                return new BreakNode(at);
            case "continue":
                ++_current;
                Expect(TokenType.CloseStatement, "Expected closing statement token");
                return new ContinueNode(at);
            case "filter":
                {
                    ++_current;
                    var filter = ParsePrimary();
                    if (filter is IdentifierNode && Is(TokenType.OpenParen)) filter = ParseCall(filter);
                    Expect(TokenType.CloseStatement, "Expected closing statement token");
                    var body = Until("endfilter");
                    ExpectEnd("endfilter");
                    return new FilterBlockNode(at, filter, body);
                }
            default:
                throw new JinjaError($"Unknown statement type: {t.Value}", t.Offset);
        }
    }

    private SetNode ParseSet(int at)
    {
        var left = ParseExpressionSequence();
        Node? value = null;
        var body = new List<Node>();
        if (Is(TokenType.Equals))
        {
            ++_current;
            value = ParseExpressionSequence();
        }
        else
        {
            Expect(TokenType.CloseStatement, "Expected %} token");
            body = Until("endset");
            Expect(TokenType.OpenStatement, "Expected {% token");
            ExpectIdentifier("endset");
        }
        Expect(TokenType.CloseStatement, "Expected closing statement token");
        return new SetNode(at, left, value, body);
    }

    private IfNode ParseIf(int at)
    {
        var test = ParseExpression();
        Expect(TokenType.CloseStatement, "Expected closing statement token");
        var body = Until("elif", "else", "endif");
        var alternate = new List<Node>();
        if (IsStatement("elif"))
        {
            int elif = Peek().Offset;
            _current += 2;
            alternate.Add(Nested(() => ParseIf(elif)));
        }
        else if (IsStatement("else"))
        {
            _current += 2;
            Expect(TokenType.CloseStatement, "Expected closing statement token");
            alternate = Until("endif");
        }
        return new IfNode(at, test, body, alternate);
    }

    private Node ParseExpressionSequence(bool primary = false)
    {
        int at = Here;
        var expressions = new List<Node> { primary ? ParsePrimary() : ParseExpression() };
        bool isTuple = Is(TokenType.Comma);
        while (isTuple)
        {
            ++_current;
            expressions.Add(primary ? ParsePrimary() : ParseExpression());
            if (!Is(TokenType.Comma)) break;
        }
        return isTuple ? new ArrayNode(at, expressions, isTuple: true) : expressions[0];
    }

    private ForNode ParseFor(int at)
    {
        var loopVar = ParseExpressionSequence(primary: true);
        if (loopVar is not (IdentifierNode or ArrayNode { IsTuple: true }))
            throw new JinjaError($"Expected identifier/tuple for the loop variable, got {KindOf(loopVar)} instead", loopVar.Offset);
        if (!IsIdentifier("in")) throw new JinjaError("Expected `in` keyword following loop variable", Here);
        ++_current;
        var iterable = ParseExpression();
        Expect(TokenType.CloseStatement, "Expected closing statement token");
        var body = Until("endfor", "else");
        var alternative = new List<Node>();
        if (IsStatement("else"))
        {
            _current += 2;
            Expect(TokenType.CloseStatement, "Expected closing statement token");
            alternative = Until("endfor");
        }
        return new ForNode(at, loopVar, iterable, body, alternative);
    }

    private Node ParseExpression() => Nested(ParseIfExpression);

    private Node ParseIfExpression()
    {
        var a = ParseLogicalOr();
        if (IsIdentifier("if"))
        {
            int at = Peek().Offset;
            ++_current;
            var test = ParseLogicalOr();
            if (IsIdentifier("else"))
            {
                ++_current;
                var whenFalse = Nested(ParseIfExpression);
                return new TernaryNode(at, test, a, whenFalse);
            }
            return new SelectNode(at, a, test);
        }
        return a;
    }

    private Node ParseLogicalOr()
    {
        var left = ParseLogicalAnd();
        while (IsIdentifier("or"))
        {
            var op = _tokens[_current++];
            left = new BinaryNode(op.Offset, "or", left, ParseLogicalAnd());
        }
        return left;
    }

    private Node ParseLogicalAnd()
    {
        var left = ParseLogicalNot();
        while (IsIdentifier("and"))
        {
            var op = _tokens[_current++];
            left = new BinaryNode(op.Offset, "and", left, ParseLogicalNot());
        }
        return left;
    }

    private Node ParseLogicalNot()
    {
        Node? right = null;
        while (IsIdentifier("not"))
        {
            var op = _tokens[_current++];
            right = new UnaryNode(op.Offset, "not", Nested(ParseLogicalNot));
        }
        return right ?? ParseComparison();
    }

    private Node ParseComparison()
    {
        var left = ParseAdditive();
        while (true)
        {
            string op;
            int at = Here;
            if (IsIdentifier("not", "in")) { op = "not in"; _current += 2; }
            else if (IsIdentifier("in")) { op = "in"; _current++; }
            else if (Is(TokenType.ComparisonBinaryOperator)) op = _tokens[_current++].Value;
            else break;
            left = new BinaryNode(at, op, left, ParseAdditive());
        }
        return left;
    }

    private Node ParseAdditive()
    {
        var left = ParseMultiplicative();
        while (Is(TokenType.AdditiveBinaryOperator))
        {
            var op = _tokens[_current++];
            left = new BinaryNode(op.Offset, op.Value, left, ParseMultiplicative());
        }
        return left;
    }

    private Node ParseCallMember()
    {
        var member = ParseMember(ParsePrimary());
        return Is(TokenType.OpenParen) ? ParseCall(member) : member;
    }

    private Node ParseCall(Node callee)
    {
        Node expression = new CallNode(callee.Offset, callee, ParseArgs(parameters: false));
        expression = ParseMember(expression);
        if (Is(TokenType.OpenParen)) expression = Nested(() => ParseCall(expression));
        return expression;
    }

    private List<Node> ParseArgs(bool parameters)
    {
        Expect(TokenType.OpenParen, "Expected opening parenthesis for arguments list");
        var args = ParseArgumentsList(parameters);
        Expect(TokenType.CloseParen, "Expected closing parenthesis for arguments list");
        return args;
    }

    private List<Node> ParseArgumentsList(bool parameters)
    {
        var args = new List<Node>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        bool sawKeywordOrDefault = false, sawSpread = false;
        while (!Is(TokenType.CloseParen))
        {
            if (_current >= _tokens.Count) throw new JinjaError("Unexpected end of template", _end);
            int at = Here;
            bool keywordSpread = Is(TokenType.ExponentiationBinaryOperator);
            bool positionalSpread = Is(TokenType.MultiplicativeBinaryOperator) && _tokens[_current].Value == "*";
            if (parameters && (keywordSpread || positionalSpread))
                throw new JinjaError("Argument unpacking is not allowed in parameter declarations", at);
            if (keywordSpread)
            {
                ++_current;
                args.Add(new SpreadNode(at, ParseExpression(), keywords: true));
                if (Is(TokenType.Comma)) ++_current;
                if (!Is(TokenType.CloseParen)) throw new JinjaError("Expected closing parenthesis: `**` must be applied to the final argument", Here);
                break;
            }
            Node argument;
            if (positionalSpread)
            {
                if (sawSpread) throw new JinjaError("Only one `*` argument unpacking is allowed", at);
                sawSpread = true;
                ++_current;
                argument = new SpreadNode(at, ParseExpression(), keywords: false);
            }
            else
            {
                argument = ParseExpression();
                if (Is(TokenType.Equals))
                {
                    ++_current;
                    if (argument is not IdentifierNode key)
                        throw new JinjaError(parameters ? "Expected identifier for parameter declaration" : "Expected identifier for keyword argument", argument.Offset);
                    argument = new KeywordArgumentNode(at, key, ParseExpression());
                }
                if (parameters)
                {
                    string name = argument switch
                    {
                        IdentifierNode i => i.Name,
                        KeywordArgumentNode k => k.Key.Name,
                        _ => throw new JinjaError("Expected identifier for parameter declaration", argument.Offset),
                    };
                    if (!names.Add(name)) throw new JinjaError($"Duplicate parameter name: {name}", argument.Offset);
                }
                if (argument is KeywordArgumentNode) sawKeywordOrDefault = true;
                else if (sawKeywordOrDefault)
                    throw new JinjaError(parameters ? "Non-default argument follows default argument" : "Positional arguments must come before keyword arguments", argument.Offset);
                else if (sawSpread) throw new JinjaError("Positional arguments must not follow `*` argument unpacking", argument.Offset);
            }
            args.Add(argument);
            if (Is(TokenType.Comma)) ++_current;
        }
        return args;
    }

    private Node ParseMemberArguments()
    {
        int at = Here;
        var slices = new List<Node?>();
        bool isSlice = false;
        while (!Is(TokenType.CloseSquareBracket))
        {
            if (_current >= _tokens.Count) throw new JinjaError("Unexpected end of template", _end);
            if (Is(TokenType.Colon))
            {
                slices.Add(null);
                ++_current;
                isSlice = true;
            }
            else
            {
                slices.Add(ParseExpression());
                if (Is(TokenType.Colon)) { ++_current; isSlice = true; }
            }
        }
        if (slices.Count == 0) throw new JinjaError("Expected at least one argument for member/slice expression", at);
        if (isSlice)
        {
            if (slices.Count > 3) throw new JinjaError("Expected 0-3 arguments for slice expression", at);
            return new SliceNode(at, slices[0], slices.Count > 1 ? slices[1] : null, slices.Count > 2 ? slices[2] : null);
        }
        return slices[0]!;
    }

    private Node ParseMember(Node obj)
    {
        while (Is(TokenType.Dot) || Is(TokenType.OpenSquareBracket))
        {
            var op = _tokens[_current++];
            bool computed = op.Type == TokenType.OpenSquareBracket;
            Node property;
            if (computed)
            {
                property = ParseMemberArguments();
                Expect(TokenType.CloseSquareBracket, "Expected closing square bracket");
            }
            else
            {
                property = ParsePrimary();
                if (!(property is IdentifierNode || property is NumberNode { IsFloat: false }))
                    throw new JinjaError("Expected identifier or integer following dot operator", property.Offset);
            }
            obj = new MemberNode(op.Offset, obj, property, computed);
        }
        return obj;
    }

    private Node ParseMultiplicative()
    {
        var left = ParsePower();
        while (Is(TokenType.MultiplicativeBinaryOperator))
        {
            var op = _tokens[_current++];
            left = new BinaryNode(op.Offset, op.Value, left, ParsePower());
        }
        return left;
    }

    private Node ParsePower()
    {
        var left = ParseTest();
        while (Is(TokenType.ExponentiationBinaryOperator))
        {
            var op = _tokens[_current++];
            left = new BinaryNode(op.Offset, op.Value, left, ParseTest());
        }
        return left;
    }

    private Node ParseTest()
    {
        var operand = ParseFilter();
        while (IsIdentifier("is"))
        {
            int at = Peek().Offset;
            ++_current;
            bool negate = IsIdentifier("not");
            if (negate) ++_current;
            var test = ParsePrimary();
            if (test is not IdentifierNode id) throw new JinjaError("Expected identifier for the test", test.Offset);
            operand = new TestNode(at, operand, negate, id);
        }
        return operand;
    }

    private Node ParseFilter()
    {
        var operand = ParseUnarySign();
        while (Is(TokenType.Pipe))
        {
            int at = Peek().Offset;
            ++_current;
            var filter = ParsePrimary();
            if (filter is not IdentifierNode) throw new JinjaError("Expected identifier for the filter", filter.Offset);
            if (Is(TokenType.OpenParen)) filter = ParseCall(filter);
            operand = new FilterNode(at, operand, filter);
        }
        return operand;
    }

    private Node ParseUnarySign()
    {
        if (_current < _tokens.Count && _tokens[_current] is { Type: TokenType.UnaryOperator or TokenType.AdditiveBinaryOperator, Value: "-" or "+" } op)
        {
            _current++;
            return new UnaryNode(op.Offset, op.Value, Nested(ParseUnarySign));
        }
        return ParseCallMember();
    }

    private Node ParsePrimary()
    {
        var token = Peek();
        _current++;
        switch (token.Type)
        {
            case TokenType.NumericLiteral:
                {
                    double v = double.Parse(token.Value, NumberStyles.Float, CultureInfo.InvariantCulture);
                    return new NumberNode(token.Offset, v, token.Value.Contains('.', StringComparison.Ordinal));
                }
            case TokenType.StringLiteral:
                {
                    string value = token.Value;
                    while (Is(TokenType.StringLiteral)) value += _tokens[_current++].Value;
                    return new StringNode(token.Offset, value);
                }
            case TokenType.Identifier:
                return new IdentifierNode(token.Offset, token.Value);
            case TokenType.OpenParen:
                {
                    var expression = ParseExpressionSequence();
                    Expect(TokenType.CloseParen, "Expected closing parenthesis, got ${tokens[current].type} instead.");
                    return expression;
                }
            case TokenType.OpenSquareBracket:
                {
                    var values = new List<Node>();
                    while (!Is(TokenType.CloseSquareBracket))
                    {
                        if (_current >= _tokens.Count) throw new JinjaError("Unexpected end of template", _end);
                        values.Add(ParseExpression());
                        if (Is(TokenType.Comma)) ++_current;
                    }
                    ++_current;
                    return new ArrayNode(token.Offset, values, isTuple: false);
                }
            case TokenType.OpenCurlyBracket:
                {
                    var entries = new List<(Node, Node)>();
                    while (!Is(TokenType.CloseCurlyBracket))
                    {
                        if (_current >= _tokens.Count) throw new JinjaError("Unexpected end of template", _end);
                        var key = ParseExpression();
                        Expect(TokenType.Colon, "Expected colon between key and value in object literal");
                        entries.Add((key, ParseExpression()));
                        if (Is(TokenType.Comma)) ++_current;
                    }
                    ++_current;
                    return new ObjectNode(token.Offset, entries);
                }
            default:
                throw new JinjaError($"Unexpected token: {token.Type}", token.Offset);
        }
    }

    private static string KindOf(Node n) => n switch
    {
        ArrayNode { IsTuple: true } => "TupleLiteral",
        ArrayNode => "ArrayLiteral",
        StringNode => "StringLiteral",
        NumberNode { IsFloat: true } => "FloatLiteral",
        NumberNode => "IntegerLiteral",
        ObjectNode => "ObjectLiteral",
        _ => n.GetType().Name.Replace("Node", "", StringComparison.Ordinal),
    };
}
