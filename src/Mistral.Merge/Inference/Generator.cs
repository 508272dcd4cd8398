using System.Diagnostics;

namespace Mistral.Merge.Inference;

public sealed record GenerationResult(int[] PromptIds, int[] Ids, string Text, bool StoppedAtEos, double PrefillSeconds, double DecodeSeconds)
{
    public double DecodeTokensPerSecond => Ids.Length > 1 && DecodeSeconds > 0 ? (Ids.Length - 1) / DecodeSeconds : 0;
    public double PrefillTokensPerSecond => PrefillSeconds > 0 ? PromptIds.Length / PrefillSeconds : 0;
}

/// <summary>
/// Autoregressive generation with a KV cache: the prompt in one batched forward (prefill), then one
/// token per step (decode) until EOS or the token budget. Text is streamed as it becomes stable.
/// </summary>
public static class Generator
{
    public static GenerationResult Generate(IBackend backend, ITokenizer tokenizer, int[] promptIds, int maxNewTokens,
        Sampler sampler, Action<string>? onText = null, IReadOnlyCollection<int>? stopIds = null, CancellationToken cancel = default)
    {
        if (promptIds.Length == 0) throw new MergeException("the prompt is empty (no tokens, not even BOS)");
        if (maxNewTokens < 0) throw new MergeException($"--max-new-tokens must be ≥ 0, got {maxNewTokens}");
        int vocab = backend.Shape.Vocab;
        // Every EOS of generation_config.json stops, as in transformers; the tokenizer's alone when none is given.
        var stop = stopIds is { Count: > 0 } ? new HashSet<int>(stopIds) : [tokenizer.EosId];
        using var cache = backend.CreateCache(promptIds.Length + Math.Max(1, maxNewTokens));
        var logits = new float[vocab];
        var history = new int[promptIds.Length + maxNewTokens];
        promptIds.CopyTo(history, 0);
        var positions = new int[promptIds.Length];
        for (int i = 0; i < positions.Length; i++) positions[i] = i;

        var sw = Stopwatch.StartNew();
        backend.Forward(promptIds, positions, cache, logits);                 // prefill
        LogitsGuard.Check(backend, logits, promptIds);
        MaskPaddedRows(logits, tokenizer.VocabSize);
        double prefill = sw.Elapsed.TotalSeconds;
        sw.Restart();

        var stream = new TextStream(tokenizer, promptIds);
        int n = 0;
        bool eosHit = false;
        int[] one = new int[1], pos = new int[1];
        while (n < maxNewTokens)
        {
            cancel.ThrowIfCancellationRequested();
            int next = sampler.Next(logits, history.AsSpan(0, promptIds.Length + n));
            if (stop.Contains(next)) { eosHit = true; break; }
            history[promptIds.Length + n++] = next;
            onText?.Invoke(stream.Push(history.AsSpan(promptIds.Length, n)));
            if (n == maxNewTokens) break;
            one[0] = next; pos[0] = cache.Length;
            backend.Forward(one, pos, cache, logits);                          // decode
            LogitsGuard.Check(backend, logits, history.AsSpan(0, promptIds.Length + n));
            MaskPaddedRows(logits, tokenizer.VocabSize);
        }
        var ids = history.AsSpan(promptIds.Length, n).ToArray();
        return new GenerationResult(promptIds, ids, tokenizer.Decode(ids), eosHit, prefill, sw.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Checkpoints often pad the embedding past the tokenizer (e.g. 32002 rows for 32000 pieces); those rows
    /// have no text, so they are never sampled (HF would emit them and fail to decode).
    /// </summary>
    internal static void MaskPaddedRows(Span<float> logits, int tokenizerVocab)
    {
        if (tokenizerVocab > 0 && tokenizerVocab < logits.Length) logits[tokenizerVocab..].Fill(float.NegativeInfinity);
    }

    /// <summary>Greedy ids by full recomputation (no cache reuse): the reference the cached path must equal.</summary>
    public static int[] GreedyRecompute(IBackend backend, int[] promptIds, int steps, int eos)
    {
        var ids = new List<int>(promptIds);
        var result = new List<int>();
        for (int s = 0; s < steps; s++)
        {
            using var cache = backend.CreateCache(ids.Count);
            var logits = new float[backend.Shape.Vocab];
            var positions = Enumerable.Range(0, ids.Count).ToArray();
            backend.Forward(ids.ToArray(), positions, cache, logits);
            int next = LogMath.ArgMax(logits);
            if (next == eos) break;
            ids.Add(next);
            result.Add(next);
        }
        return [.. result];
    }

    /// <summary>Turns a growing id list into text deltas: decode(prompt + ids) minus what was already shown.</summary>
    private sealed class TextStream(ITokenizer tokenizer, int[] prompt)
    {
        private readonly string _promptText = tokenizer.Decode(prompt);
        private int _shown;

        public string Push(ReadOnlySpan<int> generated)
        {
            var all = new int[prompt.Length + generated.Length];
            prompt.CopyTo(all, 0);
            generated.CopyTo(all.AsSpan(prompt.Length));
            var text = tokenizer.Decode(all);
            if (!text.StartsWith(_promptText, StringComparison.Ordinal)) text = _promptText + tokenizer.Decode(generated.ToArray());
            // hold back an unfinished UTF-8 sequence (byte-fallback pieces decode to U+FFFD until complete)
            int end = text.Length;
            while (end > _promptText.Length + _shown && text[end - 1] == '\uFFFD') end--;
            int from = _promptText.Length + _shown;
            if (end <= from) return "";
            _shown = end - _promptText.Length;
            return text[from..end];
        }
    }
}
