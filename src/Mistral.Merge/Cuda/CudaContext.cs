using Mistral.Merge.Cuda.Native;
using static Mistral.Merge.Cuda.Native.CudaConstants;

namespace Mistral.Merge.Cuda;

/// <summary>
/// An opened GPU: the device's primary context (made current on the calling thread by every public entry),
/// its properties, device/pinned allocations, streams and events, and — on first use — the compiled kernels
/// and a cuBLAS handle. Obtain one from <see cref="CudaRuntime.TryOpen"/>.
/// </summary>
public sealed unsafe class CudaContext : IDisposable
{
    internal CudaDriverApi Api { get; }
    internal NvrtcApi Nvrtc { get; }
    internal CublasApi CublasApi { get; }
    private readonly int _device;
    private nint _ctx;
    private CudaKernels? _kernels;
    private bool _disposed;

    public int Ordinal { get; }
    public string Name { get; }
    public int ComputeMajor { get; }
    public int ComputeMinor { get; }
    /// <summary>NVRTC target, e.g. "sm_90" for an H100.</summary>
    public string Arch => $"sm_{ComputeMajor}{ComputeMinor}";
    public int MultiprocessorCount { get; }
    public long TotalMemory { get; }
    public int MaxSharedMemoryPerBlockOptin { get; }
    /// <summary>Theoretical DRAM bandwidth from the memory clock and bus width (bytes/s; 0 when the driver does not say).</summary>
    public double TheoreticalBandwidth { get; }

    internal CudaContext(CudaDriverApi api, NvrtcApi nvrtc, CublasApi cublas, int device, int ordinal, string name, int major, int minor)
    {
        Api = api; Nvrtc = nvrtc; CublasApi = cublas;
        _device = device; Ordinal = ordinal; Name = name; ComputeMajor = major; ComputeMinor = minor;
        nint ctx;
        api.Check(api.cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain");
        _ctx = ctx;
        MakeCurrent();
        int sms, smem, clockKhz = 0, busBits = 0;
        api.Check(api.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device), "cuDeviceGetAttribute");
        api.Check(api.cuDeviceGetAttribute(&smem, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, device), "cuDeviceGetAttribute");
        // Informational only (deprecated on some newer drivers): ignore failures.
        api.cuDeviceGetAttribute(&clockKhz, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, device);
        api.cuDeviceGetAttribute(&busBits, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, device);
        nuint total;
        api.Check(api.cuDeviceTotalMem(&total, device), "cuDeviceTotalMem");
        MultiprocessorCount = sms; MaxSharedMemoryPerBlockOptin = smem; TotalMemory = (long)total;
        TheoreticalBandwidth = 2.0 * clockKhz * 1000.0 * busBits / 8.0;   // DDR: two transfers per clock
    }

    public override string ToString() => $"{Name} ({Arch}, {Mistral.Merge.IO.ByteSize.Format(TotalMemory)})";

    /// <summary>The primary context is current per thread: call before any driver call from a new thread.</summary>
    public void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Api.Check(Api.cuCtxSetCurrent(_ctx), "cuCtxSetCurrent");
    }

    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        nuint free, total;
        Api.Check(Api.cuMemGetInfo(&free, &total), "cuMemGetInfo_v2");
        return ((long)free, (long)total);
    }

    public DeviceBuffer Alloc(long bytes, string what)
    {
        MakeCurrent();
        if (bytes <= 0) bytes = 1;
        ulong p;
        int r = Api.cuMemAlloc(&p, (nuint)bytes);
        if (r != CUDA_SUCCESS)
            throw new MergeException($"{Api.Describe(r, "cuMemAlloc_v2")} (allocating {Mistral.Merge.IO.ByteSize.Format(bytes)} for {what})");
        return new DeviceBuffer(this, p, bytes);
    }

    public PinnedBuffer AllocPinned(long bytes)
    {
        MakeCurrent();
        void* p;
        Api.Check(Api.cuMemAllocHost(&p, (nuint)Math.Max(1, bytes)), "cuMemAllocHost_v2");
        return new PinnedBuffer(this, (byte*)p, bytes);
    }

    public CudaStream CreateStream()
    {
        MakeCurrent();
        nint s;
        Api.Check(Api.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        return new CudaStream(this, s);
    }

    public CudaEvent CreateEvent(bool timing = false)
    {
        MakeCurrent();
        nint e;
        Api.Check(Api.cuEventCreate(&e, timing ? CU_EVENT_DEFAULT : CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        return new CudaEvent(this, e);
    }

    public void Synchronize()
    {
        MakeCurrent();
        Api.Check(Api.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    /// <summary>The kernels, compiled by NVRTC for this device on first use (or read from the on-disk cache).</summary>
    public CudaKernels Kernels
    {
        get
        {
            MakeCurrent();
            return _kernels ??= CudaKernels.Load(this);
        }
    }

    public void Upload(DeviceBuffer dst, ReadOnlySpan<byte> src, long dstOffset = 0)
    {
        dst.CheckRange(dstOffset, src.Length);
        MakeCurrent();
        fixed (byte* p = src) Api.Check(Api.cuMemcpyHtoD(dst.Ptr + (ulong)dstOffset, p, (nuint)src.Length), "cuMemcpyHtoD_v2");
    }

    public void Download(DeviceBuffer src, Span<byte> dst, long srcOffset = 0)
    {
        src.CheckRange(srcOffset, dst.Length);
        MakeCurrent();
        fixed (byte* p = dst) Api.Check(Api.cuMemcpyDtoH(p, src.Ptr + (ulong)srcOffset, (nuint)dst.Length), "cuMemcpyDtoH_v2");
    }

    internal void Free(ulong ptr)
    {
        if (_disposed) return;
        Api.cuCtxSetCurrent(_ctx);
        Api.cuMemFree(ptr);   // errors on free are not actionable; a sticky error resurfaces on the next checked call
    }

    internal void FreeHost(byte* p)
    {
        if (_disposed) return;
        Api.cuCtxSetCurrent(_ctx);
        Api.cuMemFreeHost(p);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _kernels?.Dispose();
        _kernels = null;
        Api.cuCtxSetCurrent(_ctx);
        Api.cuCtxSynchronize();
        Api.cuDevicePrimaryCtxRelease(_device);
        _ctx = 0;
        _disposed = true;
    }
}
