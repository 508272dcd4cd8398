using System.Globalization;

namespace Mistral.Merge.Inference;

/// <summary>
/// Checks a forward pass's sequence length against the model and against memory before anything is allocated:
/// a context the model was not trained for (max_position_embeddings) is refused, and so is one whose logits,
/// KV cache and activations would not fit in the memory that is available now. Without these checks
/// `--ctx 1000000000` grew to gigabytes before "out of memory", and a 35,000-token prompt on a 512-token model
/// ran for hours.
/// </summary>
public static class ContextBudget
{
    /// <summary>The model's context in tokens (max_position_embeddings), or null when config.json does not say.</summary>
    public static int? ModelContext(TransformerModel m) => m.Config.MaxPositionEmbeddings > 0 ? m.Config.MaxPositionEmbeddings : null;

    /// <summary>Refuses an evaluation window of <paramref name="ctx"/> tokens (perplexity, compare: every window's logits are kept).</summary>
    public static void CheckWindow(TransformerModel m, int ctx, int textTokens, int models = 1)
    {
        if (ModelContext(m) is { } max && ctx > max)
            throw new MergeException($"--ctx {ctx} is beyond {m.Path}'s context of {max} tokens (max_position_embeddings in config.json); use --ctx {max} or less");
        int n = Math.Min(ctx, textTokens);
        CheckFits($"--ctx {ctx}", models * Bytes(m.Shape, n, n, allLogits: true));
    }

    /// <summary>
    /// The number of new tokens generation may produce after a prompt of <paramref name="promptTokens"/>: the
    /// request, cut to the model's context (<paramref name="clipped"/> tells). A prompt that fills the context is refused.
    /// </summary>
    public static int GenerationBudget(TransformerModel m, int promptTokens, int maxNewTokens, out bool clipped)
    {
        clipped = false;
        long total = (long)promptTokens + maxNewTokens;
        if (ModelContext(m) is { } max)
        {
            if (promptTokens >= max)
                throw new MergeException($"the prompt has {promptTokens} tokens but {m.Path}'s context is {max} tokens (max_position_embeddings); shorten the prompt");
            if (total > max) { clipped = true; maxNewTokens = max - promptTokens; total = max; }
        }
        else if (total > int.MaxValue / 2)
            throw new MergeException($"--max-new-tokens {maxNewTokens}: prompt and new tokens ({total}) are more than a forward pass can hold; ask for fewer");
        CheckFits($"a prompt of {promptTokens} tokens with --max-new-tokens {maxNewTokens}", Bytes(m.Shape, (int)total, promptTokens, allLogits: false));
        return maxNewTokens;
    }

    /// <summary>
    /// Estimated bytes of a forward pass over <paramref name="tokens"/> positions fed <paramref name="chunk"/> at a
    /// time: float32 KV cache (a rolling window for sliding-window models), the activations of one chunk, logits.
    /// </summary>
    public static long Bytes(TransformerShape s, int tokens, int chunk, bool allLogits)
    {
        long cached = s.SlidingWindow is { } w ? Math.Min(tokens, (long)w + CpuBackend.DefaultChunk) : tokens;
        long kv = 2L * s.Layers * cached * s.KvDim * sizeof(float);
        long width = 2L * s.Hidden + s.QDim + 2L * s.KvDim + 3L * s.Intermediate * Math.Max(1, s.ExpertsPerToken);
        long activations = (long)chunk * width * sizeof(float);
        long logits = (allLogits ? (long)chunk : 1) * s.Vocab * sizeof(float);
        return kv + activations + logits;
    }

    /// <summary>Refuses a need larger than the memory available now (MemAvailable on Linux, else the runtime's figure).</summary>
    public static void CheckFits(string what, long bytes)
    {
        long available = AvailableBytes();
        if (bytes > available)
            throw new MergeException($"{what} needs about {IO.ByteSize.Format(bytes)} of memory for the KV cache, activations and logits, but only {IO.ByteSize.Format(available)} is available");
    }

    public static long AvailableBytes()
    {
        try
        {
            if (OperatingSystem.IsLinux())
                foreach (var line in File.ReadLines("/proc/meminfo"))
                    if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    {
                        var kb = line["MemAvailable:".Length..].Trim().Split(' ')[0];
                        if (long.TryParse(kb, NumberStyles.Integer, CultureInfo.InvariantCulture, out var k)) return k * 1024;
                    }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }
}
