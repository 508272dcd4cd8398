namespace Mistral.Merge.Core;

/// <summary>
/// The one error type meant for a person: a single line naming the file, tensor or recipe line.
/// The CLI prints <see cref="Exception.Message"/> on stderr and exits non-zero; anything else
/// escaping the library is a bug.
/// </summary>
public class MergeException : Exception
{
    public MergeException(string message) : base(message) { }
    public MergeException(string message, Exception inner) : base(message, inner) { }
}
