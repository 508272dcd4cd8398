using Mistral.Merge.Models;

namespace Mistral.Merge.Cuda;

/// <summary>
/// The direct surface of the GPU forward pass (<see cref="CudaTransformer"/>), used by the GPU tests and the CUDA
/// benchmark. The commands reach the GPU through <see cref="CudaBackend"/>, the CUDA implementation of the shared
/// <c>Inference.IBackend</c>.
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
