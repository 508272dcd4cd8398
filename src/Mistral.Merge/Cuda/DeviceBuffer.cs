namespace Mistral.Merge.Cuda;

/// <summary>Device memory from cuMemAlloc, freed on dispose.</summary>
public sealed class DeviceBuffer : IDisposable
{
    private readonly CudaContext _ctx;
    public ulong Ptr { get; private set; }
    public long Bytes { get; }

    internal DeviceBuffer(CudaContext ctx, ulong ptr, long bytes) { _ctx = ctx; Ptr = ptr; Bytes = bytes; }

    /// <summary>Address of byte <paramref name="offset"/>.</summary>
    public ulong At(long offset)
    {
        CheckRange(offset, 0);
        return Ptr + (ulong)offset;
    }

    internal void CheckRange(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(Ptr == 0, this);
        if (offset < 0 || length < 0 || offset + length > Bytes)
            throw new ArgumentOutOfRangeException(nameof(offset), $"device range [{offset}, {offset + length}) outside a {Bytes}-byte buffer");
    }

    public void Dispose()
    {
        if (Ptr == 0) return;
        _ctx.Free(Ptr);
        Ptr = 0;
    }
}

/// <summary>Page-locked host memory from cuMemAllocHost (DMA-able: async copies really overlap), freed on dispose.</summary>
public sealed unsafe class PinnedBuffer : IDisposable
{
    private readonly CudaContext _ctx;
    private byte* _p;
    public long Bytes { get; }

    internal PinnedBuffer(CudaContext ctx, byte* p, long bytes) { _ctx = ctx; _p = p; Bytes = bytes; }

    public byte* Pointer => _p != null ? _p : throw new ObjectDisposedException(nameof(PinnedBuffer));

    public Span<byte> Span(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > Bytes) throw new ArgumentOutOfRangeException(nameof(offset));
        return new Span<byte>(Pointer + offset, length);
    }

    public void Dispose()
    {
        if (_p == null) return;
        _ctx.FreeHost(_p);
        _p = null;
    }
}
