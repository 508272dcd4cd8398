using System.Runtime.InteropServices;
using static Mistral.Merge.Cuda.Native.CudaConstants;

namespace Mistral.Merge.Cuda.Native;

/// <summary>
/// The CUDA driver API functions this backend uses, as unmanaged function pointers resolved from libcuda.so.1.
/// Signatures follow cuda.h (CUresult = int, CUdevice = int, CUdeviceptr = unsigned long long, size_t = nuint,
/// handles = pointers); the versioned symbols (_v2) are the ones cuda.h's #defines map the plain names to.
/// Every call goes through <see cref="Check"/>, which turns a non-zero CUresult into a one-line MergeException.
/// </summary>
internal sealed unsafe class CudaDriverApi
{
    private const string Lib = "libcuda.so.1";

    public readonly delegate* unmanaged<uint, int> cuInit;
    public readonly delegate* unmanaged<int*, int> cuDriverGetVersion;
    public readonly delegate* unmanaged<int*, int> cuDeviceGetCount;
    public readonly delegate* unmanaged<int*, int, int> cuDeviceGet;
    public readonly delegate* unmanaged<int*, int, int, int> cuDeviceGetAttribute;
    public readonly delegate* unmanaged<byte*, int, int, int> cuDeviceGetName;
    public readonly delegate* unmanaged<nuint*, int, int> cuDeviceTotalMem;
    public readonly delegate* unmanaged<nint*, int, int> cuDevicePrimaryCtxRetain;
    public readonly delegate* unmanaged<int, int> cuDevicePrimaryCtxRelease;
    public readonly delegate* unmanaged<nint, int> cuCtxSetCurrent;
    public readonly delegate* unmanaged<int> cuCtxSynchronize;
    public readonly delegate* unmanaged<nuint*, nuint*, int> cuMemGetInfo;
    public readonly delegate* unmanaged<ulong*, nuint, int> cuMemAlloc;
    public readonly delegate* unmanaged<ulong, int> cuMemFree;
    public readonly delegate* unmanaged<void**, nuint, int> cuMemAllocHost;
    public readonly delegate* unmanaged<void*, int> cuMemFreeHost;
    public readonly delegate* unmanaged<void*, nuint, uint, int> cuMemHostRegister;
    public readonly delegate* unmanaged<void*, int> cuMemHostUnregister;
    public readonly delegate* unmanaged<ulong, void*, nuint, int> cuMemcpyHtoD;
    public readonly delegate* unmanaged<void*, ulong, nuint, int> cuMemcpyDtoH;
    public readonly delegate* unmanaged<ulong, void*, nuint, nint, int> cuMemcpyHtoDAsync;
    public readonly delegate* unmanaged<void*, ulong, nuint, nint, int> cuMemcpyDtoHAsync;
    public readonly delegate* unmanaged<ulong, ulong, nuint, nint, int> cuMemcpyDtoDAsync;
    public readonly delegate* unmanaged<ulong, byte, nuint, nint, int> cuMemsetD8Async;
    public readonly delegate* unmanaged<nint*, uint, int> cuStreamCreate;
    public readonly delegate* unmanaged<nint, int> cuStreamDestroy;
    public readonly delegate* unmanaged<nint, int> cuStreamSynchronize;
    public readonly delegate* unmanaged<nint, nint, uint, int> cuStreamWaitEvent;
    public readonly delegate* unmanaged<nint*, uint, int> cuEventCreate;
    public readonly delegate* unmanaged<nint, int> cuEventDestroy;
    public readonly delegate* unmanaged<nint, nint, int> cuEventRecord;
    public readonly delegate* unmanaged<nint, int> cuEventSynchronize;
    public readonly delegate* unmanaged<float*, nint, nint, int> cuEventElapsedTime;
    public readonly delegate* unmanaged<nint*, void*, int> cuModuleLoadData;
    public readonly delegate* unmanaged<nint, int> cuModuleUnload;
    public readonly delegate* unmanaged<nint*, nint, byte*, int> cuModuleGetFunction;
    public readonly delegate* unmanaged<nint, int, int, int> cuFuncSetAttribute;
    // cuLaunchKernel(f, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedMemBytes, hStream, kernelParams, extra)
    public readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> cuLaunchKernel;
    public readonly delegate* unmanaged<int, byte**, int> cuGetErrorName;
    public readonly delegate* unmanaged<int, byte**, int> cuGetErrorString;

    public CudaDriverApi(nint lib)
    {
        // The error functions first, so that later failures can be described.
        cuGetErrorName = (delegate* unmanaged<int, byte**, int>)CudaLibraries.Export(lib, Lib, "cuGetErrorName");
        cuGetErrorString = (delegate* unmanaged<int, byte**, int>)CudaLibraries.Export(lib, Lib, "cuGetErrorString");
        cuInit = (delegate* unmanaged<uint, int>)CudaLibraries.Export(lib, Lib, "cuInit");
        cuDriverGetVersion = (delegate* unmanaged<int*, int>)CudaLibraries.Export(lib, Lib, "cuDriverGetVersion");
        cuDeviceGetCount = (delegate* unmanaged<int*, int>)CudaLibraries.Export(lib, Lib, "cuDeviceGetCount");
        cuDeviceGet = (delegate* unmanaged<int*, int, int>)CudaLibraries.Export(lib, Lib, "cuDeviceGet");
        cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)CudaLibraries.Export(lib, Lib, "cuDeviceGetAttribute");
        cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)CudaLibraries.Export(lib, Lib, "cuDeviceGetName");
        cuDeviceTotalMem = (delegate* unmanaged<nuint*, int, int>)CudaLibraries.Export(lib, Lib, "cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, int>)CudaLibraries.Export(lib, Lib, "cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease = (delegate* unmanaged<int, int>)CudaLibraries.Export(lib, Lib, "cuDevicePrimaryCtxRelease_v2");
        cuCtxSetCurrent = (delegate* unmanaged<nint, int>)CudaLibraries.Export(lib, Lib, "cuCtxSetCurrent");
        cuCtxSynchronize = (delegate* unmanaged<int>)CudaLibraries.Export(lib, Lib, "cuCtxSynchronize");
        cuMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)CudaLibraries.Export(lib, Lib, "cuMemGetInfo_v2");
        cuMemAlloc = (delegate* unmanaged<ulong*, nuint, int>)CudaLibraries.Export(lib, Lib, "cuMemAlloc_v2");
        cuMemFree = (delegate* unmanaged<ulong, int>)CudaLibraries.Export(lib, Lib, "cuMemFree_v2");
        cuMemAllocHost = (delegate* unmanaged<void**, nuint, int>)CudaLibraries.Export(lib, Lib, "cuMemAllocHost_v2");
        cuMemFreeHost = (delegate* unmanaged<void*, int>)CudaLibraries.Export(lib, Lib, "cuMemFreeHost");
        cuMemHostRegister = (delegate* unmanaged<void*, nuint, uint, int>)CudaLibraries.Export(lib, Lib, "cuMemHostRegister_v2");
        cuMemHostUnregister = (delegate* unmanaged<void*, int>)CudaLibraries.Export(lib, Lib, "cuMemHostUnregister");
        cuMemcpyHtoD = (delegate* unmanaged<ulong, void*, nuint, int>)CudaLibraries.Export(lib, Lib, "cuMemcpyHtoD_v2");
        cuMemcpyDtoH = (delegate* unmanaged<void*, ulong, nuint, int>)CudaLibraries.Export(lib, Lib, "cuMemcpyDtoH_v2");
        cuMemcpyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, nint, int>)CudaLibraries.Export(lib, Lib, "cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync = (delegate* unmanaged<void*, ulong, nuint, nint, int>)CudaLibraries.Export(lib, Lib, "cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync = (delegate* unmanaged<ulong, ulong, nuint, nint, int>)CudaLibraries.Export(lib, Lib, "cuMemcpyDtoDAsync_v2");
        cuMemsetD8Async = (delegate* unmanaged<ulong, byte, nuint, nint, int>)CudaLibraries.Export(lib, Lib, "cuMemsetD8Async");
        cuStreamCreate = (delegate* unmanaged<nint*, uint, int>)CudaLibraries.Export(lib, Lib, "cuStreamCreate");
        cuStreamDestroy = (delegate* unmanaged<nint, int>)CudaLibraries.Export(lib, Lib, "cuStreamDestroy_v2");
        cuStreamSynchronize = (delegate* unmanaged<nint, int>)CudaLibraries.Export(lib, Lib, "cuStreamSynchronize");
        cuStreamWaitEvent = (delegate* unmanaged<nint, nint, uint, int>)CudaLibraries.Export(lib, Lib, "cuStreamWaitEvent");
        cuEventCreate = (delegate* unmanaged<nint*, uint, int>)CudaLibraries.Export(lib, Lib, "cuEventCreate");
        cuEventDestroy = (delegate* unmanaged<nint, int>)CudaLibraries.Export(lib, Lib, "cuEventDestroy_v2");
        cuEventRecord = (delegate* unmanaged<nint, nint, int>)CudaLibraries.Export(lib, Lib, "cuEventRecord");
        cuEventSynchronize = (delegate* unmanaged<nint, int>)CudaLibraries.Export(lib, Lib, "cuEventSynchronize");
        // CUDA 12.8 added cuEventElapsedTime_v2 (same signature) and CUDA 13 headers map the plain name to it.
        cuEventElapsedTime = (delegate* unmanaged<float*, nint, nint, int>)CudaLibraries.ExportAny(lib, Lib, "cuEventElapsedTime_v2", "cuEventElapsedTime");
        cuModuleLoadData = (delegate* unmanaged<nint*, void*, int>)CudaLibraries.Export(lib, Lib, "cuModuleLoadData");
        cuModuleUnload = (delegate* unmanaged<nint, int>)CudaLibraries.Export(lib, Lib, "cuModuleUnload");
        cuModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)CudaLibraries.Export(lib, Lib, "cuModuleGetFunction");
        cuFuncSetAttribute = (delegate* unmanaged<nint, int, int, int>)CudaLibraries.Export(lib, Lib, "cuFuncSetAttribute");
        cuLaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)
            CudaLibraries.Export(lib, Lib, "cuLaunchKernel");
    }

    /// <summary>Throws "CUDA error NAME in function: description" for any non-success CUresult.</summary>
    public void Check(int result, string function)
    {
        if (result == CUDA_SUCCESS) return;
        throw new MergeException(Describe(result, function));
    }

    public string Describe(int result, string function)
    {
        byte* name = null, text = null;
        string? n = cuGetErrorName(result, &name) == CUDA_SUCCESS && name != null ? Marshal.PtrToStringUTF8((nint)name) : null;
        string? t = cuGetErrorString(result, &text) == CUDA_SUCCESS && text != null ? Marshal.PtrToStringUTF8((nint)text) : null;
        return CudaErrors.FormatDriver(result, function, n, t);
    }
}
