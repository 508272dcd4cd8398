using Mistral.Merge.Inference;

namespace Mistral.Merge.Cuda;

/// <summary>
/// One sequence's keys and values on the GPU: per layer, f32 [MaxLength, kvHeads, headDim] for K and for V.
/// Full length (a sliding window is applied by masking, not by a rolling buffer). Made by
/// <see cref="CudaTransformer.CreateCache"/>; usable only with the transformer that made it.
/// </summary>
public sealed class CudaKvCache : IKvCache
{
    internal CudaTransformer Owner { get; }
    internal DeviceBuffer[] K { get; }
    internal DeviceBuffer[] V { get; }
    public int Length { get; internal set; }
    public int MaxLength { get; }

    internal CudaKvCache(CudaTransformer owner, DeviceBuffer[] k, DeviceBuffer[] v, int maxLength)
    {
        Owner = owner; K = k; V = v; MaxLength = maxLength;
    }

    public void Reset() => Length = 0;

    public void Dispose()
    {
        foreach (var b in K) b.Dispose();
        foreach (var b in V) b.Dispose();
    }
}
