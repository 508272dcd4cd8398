using System.Runtime.InteropServices;
using static Mistral.Merge.Cuda.Native.CudaConstants;

namespace Mistral.Merge.Cuda.Native;

/// <summary>NVRTC (runtime compilation) entry points, signatures from nvrtc.h; nvrtcResult = int, nvrtcProgram = pointer.</summary>
internal sealed unsafe class NvrtcApi
{
    private const string Lib = "libnvrtc";

    public readonly delegate* unmanaged<int*, int*, int> nvrtcVersion;
    // nvrtcCreateProgram(prog*, src, name, numHeaders, headers, includeNames)
    public readonly delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int> nvrtcCreateProgram;
    public readonly delegate* unmanaged<nint*, int> nvrtcDestroyProgram;
    public readonly delegate* unmanaged<nint, int, byte**, int> nvrtcCompileProgram;
    public readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetPTXSize;
    public readonly delegate* unmanaged<nint, byte*, int> nvrtcGetPTX;
    public readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetCUBINSize;
    public readonly delegate* unmanaged<nint, byte*, int> nvrtcGetCUBIN;
    public readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetProgramLogSize;
    public readonly delegate* unmanaged<nint, byte*, int> nvrtcGetProgramLog;
    public readonly delegate* unmanaged<int, byte*> nvrtcGetErrorString;

    public NvrtcApi(nint lib)
    {
        nvrtcGetErrorString = (delegate* unmanaged<int, byte*>)CudaLibraries.Export(lib, Lib, "nvrtcGetErrorString");
        nvrtcVersion = (delegate* unmanaged<int*, int*, int>)CudaLibraries.Export(lib, Lib, "nvrtcVersion");
        nvrtcCreateProgram = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int>)CudaLibraries.Export(lib, Lib, "nvrtcCreateProgram");
        nvrtcDestroyProgram = (delegate* unmanaged<nint*, int>)CudaLibraries.Export(lib, Lib, "nvrtcDestroyProgram");
        nvrtcCompileProgram = (delegate* unmanaged<nint, int, byte**, int>)CudaLibraries.Export(lib, Lib, "nvrtcCompileProgram");
        nvrtcGetPTXSize = (delegate* unmanaged<nint, nuint*, int>)CudaLibraries.Export(lib, Lib, "nvrtcGetPTXSize");
        nvrtcGetPTX = (delegate* unmanaged<nint, byte*, int>)CudaLibraries.Export(lib, Lib, "nvrtcGetPTX");
        nvrtcGetCUBINSize = (delegate* unmanaged<nint, nuint*, int>)CudaLibraries.Export(lib, Lib, "nvrtcGetCUBINSize");
        nvrtcGetCUBIN = (delegate* unmanaged<nint, byte*, int>)CudaLibraries.Export(lib, Lib, "nvrtcGetCUBIN");
        nvrtcGetProgramLogSize = (delegate* unmanaged<nint, nuint*, int>)CudaLibraries.Export(lib, Lib, "nvrtcGetProgramLogSize");
        nvrtcGetProgramLog = (delegate* unmanaged<nint, byte*, int>)CudaLibraries.Export(lib, Lib, "nvrtcGetProgramLog");
    }

    public void Check(int result, string function)
    {
        if (result == NVRTC_SUCCESS) return;
        byte* s = nvrtcGetErrorString(result);
        throw new MergeException(CudaErrors.FormatNvrtc(result, function, s == null ? null : Marshal.PtrToStringUTF8((nint)s)));
    }

    public (int Major, int Minor) Version()
    {
        int major, minor;
        Check(nvrtcVersion(&major, &minor), "nvrtcVersion");
        return (major, minor);
    }
}
