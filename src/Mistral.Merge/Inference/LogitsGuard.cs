using Mistral.Merge.Numerics;

namespace Mistral.Merge.Inference;

/// <summary>A backend that can say where a forward pass first turns non-finite (a slow diagnostic re-run).</summary>
public interface ILayerDiagnostics
{
    /// <summary>The model, as the error names it (its folder).</summary>
    string ModelName { get; }

    /// <summary>
    /// Runs <paramref name="tokens"/> as a fresh sequence (positions 0..n−1) checking the last token's hidden
    /// state after every block; returns where it first holds NaN/Inf, e.g. "layer 3 (mlp output)".
    /// </summary>
    string LocateNonFinite(ReadOnlySpan<int> tokens);
}

/// <summary>
/// The evaluators' guard (perplexity, compare, generate, on every backend): one vectorized scan of the
/// logits after each forward call. Only when it fires is the model diagnosed, by re-running the
/// sequence up to the first bad position with per-layer checks, and the run fails with one line.
/// </summary>
public static class LogitsGuard
{
    /// <param name="logits">Rows for the last <c>logits.Length / vocab</c> tokens of <paramref name="sequence"/>.</param>
    /// <param name="sequence">The tokens fed since the cache was empty, through the last row's token.</param>
    /// <param name="offset">Added to positions in the message (where the window starts in the text).</param>
    public static void Check(IBackend backend, ReadOnlySpan<float> logits, ReadOnlySpan<int> sequence, int offset = 0)
    {
        if (FiniteScan.AllFinite(logits)) return;
        int vocab = backend.Shape.Vocab;
        int row = 0;
        while (FiniteScan.AllFinite(logits.Slice(row * vocab, vocab))) row++;
        int position = sequence.Length - logits.Length / vocab + row;
        var diagnostics = backend as ILayerDiagnostics;
        string where = diagnostics?.LocateNonFinite(sequence[..(position + 1)]) ?? "the logits";
        throw new MergeException($"{diagnostics?.ModelName ?? backend.Name}: non-finite values appear at {where} at token position {offset + position}; the model's weights are probably broken");
    }
}
