namespace Mistral.Merge.Cuda;

/// <summary>Compute dtype of the weights and GEMM inputs on the GPU (accumulation is always f32).</summary>
public enum CudaPrecision { BF16, F32 }

public sealed class CudaTransformerOptions
{
    /// <summary>BF16 (default; F32 checkpoints are rounded on upload) or F32 (exact path for F32 checkpoints).</summary>
    public CudaPrecision Precision { get; init; } = CudaPrecision.BF16;
    /// <summary>Keep only two layers on the GPU and stream the others in, overlapped with compute (--offload).</summary>
    public bool Offload { get; init; }
    /// <summary>KV-cache capacity in tokens; 0 = min(max_position_embeddings, 4096).</summary>
    public int MaxSequence { get; init; }
    /// <summary>Tokens per prefill chunk (activation buffers are sized for this).</summary>
    public int ChunkTokens { get; init; } = 512;
    /// <summary>Bytes of GPU memory left free when deciding whether a model fits.</summary>
    public long ReserveBytes { get; init; } = 512L << 20;
    /// <summary>Host threads that pack (convert) layers for upload (<c>--threads</c>): 0 = all logical processors.</summary>
    public int Threads { get; init; }
}
