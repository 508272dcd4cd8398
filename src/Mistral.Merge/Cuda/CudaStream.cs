namespace Mistral.Merge.Cuda;

/// <summary>A non-blocking CUDA stream: kernels, cuBLAS calls and async copies queued on it run in order.</summary>
public sealed unsafe class CudaStream : IDisposable
{
    private readonly CudaContext _ctx;
    public nint Handle { get; private set; }

    internal CudaStream(CudaContext ctx, nint handle) { _ctx = ctx; Handle = handle; }

    public void Synchronize() => _ctx.Api.Check(_ctx.Api.cuStreamSynchronize(Handle), "cuStreamSynchronize");

    /// <summary>Work queued on this stream after this call waits until <paramref name="e"/> has completed.</summary>
    public void Wait(CudaEvent e) => _ctx.Api.Check(_ctx.Api.cuStreamWaitEvent(Handle, e.Handle, 0), "cuStreamWaitEvent");

    public void CopyToDeviceAsync(ulong dst, byte* src, long bytes) =>
        _ctx.Api.Check(_ctx.Api.cuMemcpyHtoDAsync(dst, src, (nuint)bytes, Handle), "cuMemcpyHtoDAsync_v2");

    public void CopyToHostAsync(byte* dst, ulong src, long bytes) =>
        _ctx.Api.Check(_ctx.Api.cuMemcpyDtoHAsync(dst, src, (nuint)bytes, Handle), "cuMemcpyDtoHAsync_v2");

    public void CopyDeviceAsync(ulong dst, ulong src, long bytes) =>
        _ctx.Api.Check(_ctx.Api.cuMemcpyDtoDAsync(dst, src, (nuint)bytes, Handle), "cuMemcpyDtoDAsync_v2");

    public void ZeroAsync(ulong dst, long bytes) =>
        _ctx.Api.Check(_ctx.Api.cuMemsetD8Async(dst, 0, (nuint)bytes, Handle), "cuMemsetD8Async");

    public void Dispose()
    {
        if (Handle == 0) return;
        _ctx.Api.cuStreamDestroy(Handle);
        Handle = 0;
    }
}

/// <summary>A CUDA event: a marker in a stream that other streams or the host can wait for (and time).</summary>
public sealed unsafe class CudaEvent : IDisposable
{
    private readonly CudaContext _ctx;
    public nint Handle { get; private set; }

    internal CudaEvent(CudaContext ctx, nint handle) { _ctx = ctx; Handle = handle; }

    public void Record(CudaStream stream) => _ctx.Api.Check(_ctx.Api.cuEventRecord(Handle, stream.Handle), "cuEventRecord");

    public void Synchronize() => _ctx.Api.Check(_ctx.Api.cuEventSynchronize(Handle), "cuEventSynchronize");

    /// <summary>Milliseconds between <paramref name="start"/> and this event (both created with timing).</summary>
    public float ElapsedSince(CudaEvent start)
    {
        float ms;
        _ctx.Api.Check(_ctx.Api.cuEventElapsedTime(&ms, start.Handle, Handle), "cuEventElapsedTime");
        return ms;
    }

    public void Dispose()
    {
        if (Handle == 0) return;
        _ctx.Api.cuEventDestroy(Handle);
        Handle = 0;
    }
}
