namespace Mistral.Merge.Inference;

/// <summary>
/// The keys and values of the positions a backend has seen for one sequence. Opaque to callers:
/// each backend keeps it where its kernels want it (CPU memory, GPU memory).
/// </summary>
public interface IKvCache : IDisposable
{
    /// <summary>Positions stored so far: the next token must have position <see cref="Length"/>.</summary>
    int Length { get; }
    /// <summary>Most positions this cache can take (int.MaxValue for a rolling sliding-window cache).</summary>
    int MaxLength { get; }
    /// <summary>Forgets everything (start of a new sequence); keeps the memory.</summary>
    void Reset();
}

/// <summary>
/// A forward pass over one model. The CPU backend is the reference; every other backend must agree
/// with it. A call appends <c>tokens</c> (at <c>positions</c> = cache.Length, cache.Length+1, …) to the
/// cache and writes logits for its last <c>r = logits.Length / vocab</c> tokens (1 ≤ r ≤ tokens.Length): every
/// token (prefill for compare), the last one (decode, generate's prompt), or the scored tail of a perplexity
/// window. A backend may skip work for the rows no logits are asked for; the cache gets every token either way.
/// </summary>
public interface IBackend : IDisposable
{
    string Name { get; }
    TransformerShape Shape { get; }
    /// <summary>Threads for the host-side work around the forward pass (scoring a window's logits): the CPU backend's own count.</summary>
    int HostThreads { get; }
    /// <summary>A cache for sequences of up to <paramref name="maxTokens"/> positions (sliding-window models: rolling, unbounded).</summary>
    IKvCache CreateCache(int maxTokens);
    void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, IKvCache cache, Span<float> logits);
}

/// <summary>The one reading of <see cref="IBackend.Forward"/>'s logits argument, shared by the backends.</summary>
public static class ForwardLogits
{
    /// <summary>r, the number of last tokens whose logits <paramref name="length"/> floats hold; throws unless whole rows with 1 ≤ r ≤ tokens.</summary>
    public static int Rows(int length, int vocab, int tokens)
    {
        if (length % vocab != 0 || length / vocab < 1 || length / vocab > tokens)
            throw new ArgumentException($"logits must hold r×{vocab} values for 1 ≤ r ≤ {tokens}", nameof(length));
        return length / vocab;
    }
}
