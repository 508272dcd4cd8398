using Mistral.Merge.Models;

namespace Mistral.Merge.Cuda;

/// <summary>
/// The small surface the CLI needs from a forward pass (perplexity, generate, compare). The CPU forward pass and its
/// IBackend are written in parallel on branch `inference`; until the two meet, this is the CUDA side's adapter
/// interface: a CPU implementation (or an IBackend adapter) of these five members is all `--device` needs.
/// </summary>
public interface IForwardModel : IDisposable
{
    ModelConfig Config { get; }
    /// <summary>Tokens currently in the KV cache.</summary>
    int Position { get; }
    /// <summary>Forgets the KV cache.</summary>
    void Reset();
    /// <summary>Appends tokens; returns the last position's logits [vocab], or all [tokens × vocab].</summary>
    float[] Forward(ReadOnlySpan<int> tokens, bool allLogits = false);
    /// <summary>From an empty cache: element i = −log p(tokens[i+1] | tokens[..i]) (tokens.Length − 1 values).</summary>
    float[] TokenNll(ReadOnlySpan<int> tokens);
    /// <summary>From an empty cache: up to <paramref name="steps"/> argmax tokens after the prompt (stops after EOS).</summary>
    int[] Greedy(ReadOnlySpan<int> prompt, int steps, int? eos = null);
}
