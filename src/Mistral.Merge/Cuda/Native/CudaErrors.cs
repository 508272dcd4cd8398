namespace Mistral.Merge.Cuda.Native;

/// <summary>
/// Turns CUDA driver, NVRTC and cuBLAS status codes into one-line <see cref="MergeException"/> messages:
/// "CUDA error CUDA_ERROR_OUT_OF_MEMORY in cuMemAlloc: out of memory",
/// "cuBLAS status 13 (CUBLAS_STATUS_EXECUTION_FAILED) in cublasGemmEx". The driver's own
/// cuGetErrorName/cuGetErrorString are preferred; the tables below are the fallback (and what tests check).
/// </summary>
public static class CudaErrors
{
    // cuda.h, enum cudaError_enum: the codes a user of this backend can plausibly meet, with the driver's wording.
    private static readonly Dictionary<int, (string Name, string Text)> DriverCodes = new()
    {
        [0] = ("CUDA_SUCCESS", "no error"),
        [1] = ("CUDA_ERROR_INVALID_VALUE", "invalid argument"),
        [2] = ("CUDA_ERROR_OUT_OF_MEMORY", "out of memory"),
        [3] = ("CUDA_ERROR_NOT_INITIALIZED", "initialization error"),
        [4] = ("CUDA_ERROR_DEINITIALIZED", "driver shutting down"),
        [34] = ("CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"),
        [35] = ("CUDA_ERROR_INSUFFICIENT_DRIVER", "CUDA driver version is insufficient for CUDA runtime version"),
        [100] = ("CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"),
        [101] = ("CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"),
        [200] = ("CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"),
        [201] = ("CUDA_ERROR_INVALID_CONTEXT", "invalid device context"),
        [209] = ("CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"),
        [218] = ("CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"),
        [222] = ("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain."),
        [400] = ("CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"),
        [500] = ("CUDA_ERROR_NOT_FOUND", "named symbol not found"),
        [700] = ("CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"),
        [701] = ("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"),
        [702] = ("CUDA_ERROR_LAUNCH_TIMEOUT", "the launch timed out and was terminated"),
        [712] = ("CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED", "part or all of the requested memory range is already mapped"),
        [719] = ("CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"),
        [801] = ("CUDA_ERROR_NOT_SUPPORTED", "operation not supported"),
        [803] = ("CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"),
        [804] = ("CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", "forward compatibility was attempted on non supported HW"),
        [999] = ("CUDA_ERROR_UNKNOWN", "unknown error"),
    };

    // cublas_api.h, enum cublasStatus_t (complete).
    private static readonly Dictionary<int, string> CublasCodes = new()
    {
        [0] = "CUBLAS_STATUS_SUCCESS",
        [1] = "CUBLAS_STATUS_NOT_INITIALIZED",
        [3] = "CUBLAS_STATUS_ALLOC_FAILED",
        [7] = "CUBLAS_STATUS_INVALID_VALUE",
        [8] = "CUBLAS_STATUS_ARCH_MISMATCH",
        [11] = "CUBLAS_STATUS_MAPPING_ERROR",
        [13] = "CUBLAS_STATUS_EXECUTION_FAILED",
        [14] = "CUBLAS_STATUS_INTERNAL_ERROR",
        [15] = "CUBLAS_STATUS_NOT_SUPPORTED",
        [16] = "CUBLAS_STATUS_LICENSE_ERROR",
    };

    // nvrtc.h, enum nvrtcResult (complete up to CUDA 12.x).
    private static readonly string[] NvrtcCodes =
    [
        "NVRTC_SUCCESS", "NVRTC_ERROR_OUT_OF_MEMORY", "NVRTC_ERROR_PROGRAM_CREATION_FAILURE", "NVRTC_ERROR_INVALID_INPUT",
        "NVRTC_ERROR_INVALID_PROGRAM", "NVRTC_ERROR_INVALID_OPTION", "NVRTC_ERROR_COMPILATION",
        "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE", "NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION",
        "NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION", "NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID", "NVRTC_ERROR_INTERNAL_ERROR",
        "NVRTC_ERROR_TIME_FILE_WRITE_FAILED",
    ];

    /// <summary>Fallback name/description for a CUresult when the driver cannot tell (or for tests).</summary>
    public static (string Name, string Text) DriverCode(int code) =>
        DriverCodes.TryGetValue(code, out var e) ? e : ($"CUDA_ERROR_{code}", "unrecognised CUDA error code");

    public static string CublasStatusName(int status) => CublasCodes.TryGetValue(status, out var n) ? n : "CUBLAS_STATUS_UNKNOWN";

    public static string NvrtcResultName(int result) => result >= 0 && result < NvrtcCodes.Length ? NvrtcCodes[result] : $"NVRTC_ERROR_{result}";

    /// <summary>"CUDA error NAME in function: text" — <paramref name="function"/> is shown without the _v2 ABI suffix.</summary>
    public static string FormatDriver(int code, string function, string? name = null, string? text = null)
    {
        var fallback = DriverCode(code);
        return $"CUDA error {name ?? fallback.Name} in {DisplayName(function)}: {text ?? fallback.Text}";
    }

    public static string FormatCublas(int status, string function) =>
        $"cuBLAS status {status} ({CublasStatusName(status)}) in {DisplayName(function)}";

    public static string FormatNvrtc(int result, string function, string? text = null) =>
        $"NVRTC error {NvrtcResultName(result)} in {DisplayName(function)}" + (text is null ? "" : $": {text}");

    /// <summary>cuMemAlloc_v2 → cuMemAlloc: users know the API names, not the versioned ABI symbols.</summary>
    public static string DisplayName(string function) =>
        function.EndsWith("_v2", StringComparison.Ordinal) || function.EndsWith("_v3", StringComparison.Ordinal) ? function[..^3] : function;
}
