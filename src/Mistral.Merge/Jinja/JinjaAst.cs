namespace Mistral.Merge.Jinja;

/// <summary>The syntax tree of @huggingface/jinja (same node kinds); <see cref="Offset"/> locates errors.</summary>
internal abstract class Node(int offset)
{
    public int Offset { get; } = offset;
    /// <summary>Child nodes, for the walk that finds which macros read <c>kwargs</c>/<c>varargs</c>.</summary>
    public virtual IEnumerable<Node?> Children() => [];
}

internal sealed class ProgramNode(List<Node> body) : Node(0)
{
    public List<Node> Body { get; } = body;
    public override IEnumerable<Node?> Children() => Body;
}

internal sealed class IfNode(int offset, Node test, List<Node> body, List<Node> alternate) : Node(offset)
{
    public Node Test { get; } = test;
    public List<Node> Body { get; } = body;
    public List<Node> Alternate { get; } = alternate;
    public override IEnumerable<Node?> Children() => [Test, .. Body, .. Alternate];
}

internal sealed class ForNode(int offset, Node loopVar, Node iterable, List<Node> body, List<Node> defaultBlock) : Node(offset)
{
    public Node LoopVar { get; } = loopVar;
    public Node Iterable { get; } = iterable;
    public List<Node> Body { get; } = body;
    public List<Node> DefaultBlock { get; } = defaultBlock;
    public override IEnumerable<Node?> Children() => [LoopVar, Iterable, .. Body, .. DefaultBlock];
}

internal sealed class BreakNode(int offset) : Node(offset);
internal sealed class ContinueNode(int offset) : Node(offset);

internal sealed class SetNode(int offset, Node assignee, Node? value, List<Node> body) : Node(offset)
{
    public Node Assignee { get; } = assignee;
    public Node? Value { get; } = value;
    public List<Node> Body { get; } = body;
    public override IEnumerable<Node?> Children() => [Assignee, Value, .. Body];
}

internal sealed class MacroNode(int offset, IdentifierNode name, List<Node> args, List<Node> body) : Node(offset)
{
    public IdentifierNode Name { get; } = name;
    public List<Node> Args { get; } = args;
    public List<Node> Body { get; } = body;
    public override IEnumerable<Node?> Children() => [Name, .. Args, .. Body];
}

internal sealed class CommentNode(int offset) : Node(offset);

internal sealed class MemberNode(int offset, Node obj, Node property, bool computed) : Node(offset)
{
    public Node Object { get; } = obj;
    public Node Property { get; } = property;
    public bool Computed { get; } = computed;
    public override IEnumerable<Node?> Children() => [Object, Property];
}

internal sealed class CallNode(int offset, Node callee, List<Node> args) : Node(offset)
{
    public Node Callee { get; } = callee;
    public List<Node> Args { get; } = args;
    public override IEnumerable<Node?> Children() => [Callee, .. Args];
}

internal sealed class IdentifierNode(int offset, string name) : Node(offset)
{
    public string Name { get; } = name;
}

internal sealed class NumberNode(int offset, double value, bool isFloat) : Node(offset)
{
    public double Value { get; } = value;
    public bool IsFloat { get; } = isFloat;
}

internal sealed class StringNode(int offset, string value) : Node(offset)
{
    public string Value { get; } = value;
}

internal sealed class ArrayNode(int offset, List<Node> items, bool isTuple) : Node(offset)
{
    public List<Node> Items { get; } = items;
    public bool IsTuple { get; } = isTuple;
    public override IEnumerable<Node?> Children() => Items;
}

internal sealed class ObjectNode(int offset, List<(Node Key, Node Value)> entries) : Node(offset)
{
    public List<(Node Key, Node Value)> Entries { get; } = entries;
    public override IEnumerable<Node?> Children() => Entries.SelectMany(e => new[] { e.Key, e.Value });
}

internal sealed class BinaryNode(int offset, string op, Node left, Node right) : Node(offset)
{
    public string Op { get; } = op;
    public Node Left { get; } = left;
    public Node Right { get; } = right;
    public override IEnumerable<Node?> Children() => [Left, Right];
}

internal sealed class FilterNode(int offset, Node operand, Node filter) : Node(offset)
{
    public Node Operand { get; } = operand;
    /// <summary>An <see cref="IdentifierNode"/> or a <see cref="CallNode"/> (a filter with arguments).</summary>
    public Node Filter { get; } = filter;
    public override IEnumerable<Node?> Children() => [Operand, Filter];
}

internal sealed class FilterBlockNode(int offset, Node filter, List<Node> body) : Node(offset)
{
    public Node Filter { get; } = filter;
    public List<Node> Body { get; } = body;
    public override IEnumerable<Node?> Children() => [Filter, .. Body];
}

/// <summary><c>x if test</c> without else (in a for loop: the loop filter).</summary>
internal sealed class SelectNode(int offset, Node lhs, Node test) : Node(offset)
{
    public Node Lhs { get; } = lhs;
    public Node Test { get; } = test;
    public override IEnumerable<Node?> Children() => [Lhs, Test];
}

internal sealed class TestNode(int offset, Node operand, bool negate, IdentifierNode test) : Node(offset)
{
    public Node Operand { get; } = operand;
    public bool Negate { get; } = negate;
    public IdentifierNode Test { get; } = test;
    public override IEnumerable<Node?> Children() => [Operand, Test];
}

internal sealed class UnaryNode(int offset, string op, Node argument) : Node(offset)
{
    public string Op { get; } = op;
    public Node Argument { get; } = argument;
    public override IEnumerable<Node?> Children() => [Argument];
}

internal sealed class SliceNode(int offset, Node? start, Node? stop, Node? step) : Node(offset)
{
    public Node? Start { get; } = start;
    public Node? Stop { get; } = stop;
    public Node? Step { get; } = step;
    public override IEnumerable<Node?> Children() => [Start, Stop, Step];
}

internal sealed class KeywordArgumentNode(int offset, IdentifierNode key, Node value) : Node(offset)
{
    public IdentifierNode Key { get; } = key;
    public Node Value { get; } = value;
    public override IEnumerable<Node?> Children() => [Key, Value];
}

internal sealed class SpreadNode(int offset, Node argument, bool keywords) : Node(offset)
{
    public Node Argument { get; } = argument;
    /// <summary><c>**kwargs</c> rather than <c>*args</c>.</summary>
    public bool Keywords { get; } = keywords;
    public override IEnumerable<Node?> Children() => [Argument];
}

internal sealed class CallBlockNode(int offset, CallNode call, List<Node>? callerArgs, List<Node> body) : Node(offset)
{
    public CallNode Call { get; } = call;
    public List<Node>? CallerArgs { get; } = callerArgs;
    public List<Node> Body { get; } = body;
    public override IEnumerable<Node?> Children() => [Call, .. CallerArgs ?? [], .. Body];
}

internal sealed class TernaryNode(int offset, Node condition, Node whenTrue, Node whenFalse) : Node(offset)
{
    public Node Condition { get; } = condition;
    public Node WhenTrue { get; } = whenTrue;
    public Node WhenFalse { get; } = whenFalse;
    public override IEnumerable<Node?> Children() => [Condition, WhenTrue, WhenFalse];
}
