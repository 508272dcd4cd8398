using Mistral.Merge.Core;

namespace Mistral.Merge.Jinja;

/// <summary>A template that does not parse, or raises while rendering (raise_exception included): one line naming the
/// template and the line:column (of the original text) where it went wrong. <see cref="Reason"/> is the message
/// @huggingface/jinja gives for the same failure.</summary>
public sealed class JinjaException(string source, int line, int column, string reason)
    : MergeException($"chat template {source}, line {line}:{column}: {reason}")
{
    public string Template { get; } = source;
    public int Line { get; } = line;
    public int Column { get; } = column;
    public string Reason { get; } = reason;
}

/// <summary>An error inside the lexer, parser or interpreter; <see cref="Offset"/> (into the original text) is filled
/// in by the innermost node being evaluated when it escapes.</summary>
internal sealed class JinjaError(string message, int offset = -1) : Exception(message)
{
    public int Offset { get; set; } = offset;
}

/// <summary>break / continue, unwinding to the enclosing for loop (as the reference's BreakControl/ContinueControl).</summary>
internal sealed class LoopControl(bool isBreak) : Exception
{
    public bool IsBreak { get; } = isBreak;
}
