namespace Mistral.Merge.Cuda.Native;

/// <summary>
/// Numeric constants of the CUDA driver API, NVRTC and cuBLAS that this backend uses. Values are ABI-stable;
/// each block names the header (and enum) it comes from. They were looked up in copies of the headers
/// (cuda.h 11.6 as vendored by ggerganov/llama.cpp include/cuda/cuda.h, cublas_api.h, library_types.h, nvrtc.h),
/// not written from memory.
/// </summary>
internal static class CudaConstants
{
    // cuda.h, enum cudaError_enum (CUresult)
    public const int CUDA_SUCCESS = 0;
    public const int CUDA_ERROR_INVALID_VALUE = 1;
    public const int CUDA_ERROR_OUT_OF_MEMORY = 2;
    public const int CUDA_ERROR_NOT_INITIALIZED = 3;
    public const int CUDA_ERROR_STUB_LIBRARY = 34;
    public const int CUDA_ERROR_INSUFFICIENT_DRIVER = 35;
    public const int CUDA_ERROR_NO_DEVICE = 100;
    public const int CUDA_ERROR_INVALID_DEVICE = 101;
    public const int CUDA_ERROR_NO_BINARY_FOR_GPU = 209;
    public const int CUDA_ERROR_ILLEGAL_ADDRESS = 700;
    public const int CUDA_ERROR_LAUNCH_FAILED = 719;
    public const int CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803;

    // cuda.h, enum CUdevice_attribute_enum
    public const int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8;
    public const int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    public const int CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36;       // kHz
    public const int CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37;  // bits
    public const int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    public const int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    public const int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

    // cuda.h, enum CUfunction_attribute_enum
    public const int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

    // cuda.h, CUstream_flags_enum / CUevent_flags_enum / #define CU_MEMHOSTREGISTER_PORTABLE
    public const uint CU_STREAM_NON_BLOCKING = 0x1;
    public const uint CU_EVENT_DEFAULT = 0x0;
    public const uint CU_EVENT_DISABLE_TIMING = 0x2;
    public const uint CU_MEMHOSTREGISTER_PORTABLE = 0x01;

    // nvrtc.h, enum nvrtcResult
    public const int NVRTC_SUCCESS = 0;
    public const int NVRTC_ERROR_COMPILATION = 6;

    // cublas_api.h, enum cublasStatus_t
    public const int CUBLAS_STATUS_SUCCESS = 0;

    // cublas_api.h, enum cublasOperation_t
    public const int CUBLAS_OP_N = 0;
    public const int CUBLAS_OP_T = 1;

    // library_types.h, enum cudaDataType_t (cudaDataType)
    public const int CUDA_R_32F = 0;
    public const int CUDA_R_16BF = 14;

    // cublas_api.h, enum cublasComputeType_t
    public const int CUBLAS_COMPUTE_32F = 68;
    public const int CUBLAS_COMPUTE_32F_PEDANTIC = 69;

    // cublas_api.h, enum cublasGemmAlgo_t
    public const int CUBLAS_GEMM_DEFAULT = -1;
}
