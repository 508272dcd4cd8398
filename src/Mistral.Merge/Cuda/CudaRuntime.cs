using Mistral.Merge.Cuda.Native;
using static Mistral.Merge.Cuda.Native.CudaConstants;

namespace Mistral.Merge.Cuda;

/// <summary>
/// The one door to the GPU. <see cref="TryOpen"/> loads libcuda/NVRTC/cuBLAS lazily, initialises the driver,
/// picks device 0 (or $MISTRAL_MERGE_CUDA_DEVICE), checks it can run this backend (compute capability 8.0+,
/// for bf16 tensor-core GEMMs) and retains its primary context. It never throws: without a driver, device or
/// toolkit it returns false with one plain sentence saying why.
/// </summary>
public static class CudaRuntime
{
    public const int MinComputeMajor = 8;

    public static unsafe bool TryOpen(out CudaContext? context, out string whyNot)
    {
        context = null;
        whyNot = "";
        try
        {
            var driverLib = CudaLibraries.LoadDriver();
            if (!driverLib.Ok) { whyNot = driverLib.WhyNot!; return false; }
            var api = new CudaDriverApi(driverLib.Handle);

            int r = api.cuInit(0);
            if (r == CUDA_ERROR_NO_DEVICE) { whyNot = "no CUDA device: the NVIDIA driver is installed but reports no GPU (" + api.Describe(r, "cuInit") + ")"; return false; }
            if (r != CUDA_SUCCESS) { whyNot = "the NVIDIA driver failed to initialise: " + api.Describe(r, "cuInit"); return false; }

            int count = 0;
            api.Check(api.cuDeviceGetCount(&count), "cuDeviceGetCount");
            if (count == 0) { whyNot = "no CUDA device visible (check CUDA_VISIBLE_DEVICES)"; return false; }

            int ordinal = 0;
            var env = Environment.GetEnvironmentVariable("MISTRAL_MERGE_CUDA_DEVICE");
            if (!string.IsNullOrWhiteSpace(env) && (!int.TryParse(env, out ordinal) || ordinal < 0 || ordinal >= count))
            { whyNot = $"MISTRAL_MERGE_CUDA_DEVICE={env} is not a device ordinal in 0..{count - 1}"; return false; }

            int device;
            api.Check(api.cuDeviceGet(&device, ordinal), "cuDeviceGet");
            int major, minor;
            api.Check(api.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), "cuDeviceGetAttribute");
            api.Check(api.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), "cuDeviceGetAttribute");
            string name = DeviceName(api, device);
            if (major < MinComputeMajor)
            { whyNot = $"{name} has compute capability {major}.{minor}; this backend needs {MinComputeMajor}.0 or newer (bf16 tensor cores)"; return false; }

            var nvrtcLib = CudaLibraries.LoadNvrtc();
            if (!nvrtcLib.Ok) { whyNot = nvrtcLib.WhyNot!; return false; }
            var cublasLib = CudaLibraries.LoadCublas();
            if (!cublasLib.Ok) { whyNot = cublasLib.WhyNot!; return false; }
            var nvrtc = new NvrtcApi(nvrtcLib.Handle);
            var cublas = new CublasApi(cublasLib.Handle);

            context = new CudaContext(api, nvrtc, cublas, device, ordinal, name, major, minor);
            return true;
        }
        catch (MergeException e) { whyNot = e.Message; return false; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException or InvalidOperationException)
        { whyNot = "CUDA libraries could not be used: " + e.Message.Split('\n')[0]; return false; }
    }

    /// <summary>Opens the GPU or throws a MergeException with the reason (for --device cuda).</summary>
    public static CudaContext Open()
    {
        if (TryOpen(out var ctx, out var why)) return ctx!;
        throw new MergeException("--device cuda: CUDA is not usable here: " + why);
    }

    private static unsafe string DeviceName(CudaDriverApi api, int device)
    {
        byte* buf = stackalloc byte[256];
        api.Check(api.cuDeviceGetName(buf, 256, device), "cuDeviceGetName");
        return System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)buf) ?? "CUDA device";
    }
}
