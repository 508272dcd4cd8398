using Mistral.Merge.Cuda.Native;

namespace Mistral.Merge.Tests.Cuda;

public class CudaErrorsTests
{
    [Fact]
    public void DriverErrorsNameTheCodeTheApiAndTheMeaning()
    {
        Assert.Equal("CUDA error CUDA_ERROR_OUT_OF_MEMORY in cuMemAlloc: out of memory", CudaErrors.FormatDriver(2, "cuMemAlloc_v2"));
        Assert.Equal("CUDA error CUDA_ERROR_NO_DEVICE in cuInit: no CUDA-capable device is detected", CudaErrors.FormatDriver(100, "cuInit"));
        Assert.Equal("CUDA error CUDA_ERROR_ILLEGAL_ADDRESS in cuStreamSynchronize: an illegal memory access was encountered",
            CudaErrors.FormatDriver(700, "cuStreamSynchronize"));
        Assert.Equal("CUDA error CUDA_ERROR_NO_BINARY_FOR_GPU in cuModuleLoadData: no kernel image is available for execution on the device",
            CudaErrors.FormatDriver(209, "cuModuleLoadData"));
    }

    [Fact]
    public void TheDriverOwnWordingWinsWhenAvailable()
    {
        Assert.Equal("CUDA error CUDA_ERROR_OUT_OF_MEMORY in cuMemAlloc: out of memory (driver)",
            CudaErrors.FormatDriver(2, "cuMemAlloc_v2", "CUDA_ERROR_OUT_OF_MEMORY", "out of memory (driver)"));
    }

    [Fact]
    public void UnknownDriverCodesStillMakeAMessage()
    {
        Assert.Equal("CUDA error CUDA_ERROR_12345 in cuLaunchKernel: unrecognised CUDA error code", CudaErrors.FormatDriver(12345, "cuLaunchKernel"));
    }

    [Theory]
    [InlineData(13, "cuBLAS status 13 (CUBLAS_STATUS_EXECUTION_FAILED) in cublasGemmEx")]
    [InlineData(3, "cuBLAS status 3 (CUBLAS_STATUS_ALLOC_FAILED) in cublasGemmEx")]
    [InlineData(7, "cuBLAS status 7 (CUBLAS_STATUS_INVALID_VALUE) in cublasGemmEx")]
    [InlineData(15, "cuBLAS status 15 (CUBLAS_STATUS_NOT_SUPPORTED) in cublasGemmEx")]
    [InlineData(99, "cuBLAS status 99 (CUBLAS_STATUS_UNKNOWN) in cublasGemmEx")]
    public void CublasStatuses(int status, string expected)
    {
        Assert.Equal(expected, CudaErrors.FormatCublas(status, "cublasGemmEx"));
        var e = Assert.Throws<MergeException>(() => CublasApi.Check(status, "cublasGemmEx"));
        Assert.Equal(expected, e.Message);
    }

    [Fact]
    public void CublasSuccessDoesNotThrow() => CublasApi.Check(0, "cublasGemmEx");

    [Fact]
    public void VersionedSymbolsAreShownByTheirApiName()
    {
        Assert.Equal("cuMemcpyHtoDAsync", CudaErrors.DisplayName("cuMemcpyHtoDAsync_v2"));
        Assert.Equal("cublasCreate", CudaErrors.DisplayName("cublasCreate_v2"));
        Assert.Equal("cuInit", CudaErrors.DisplayName("cuInit"));
        Assert.Equal("cuBLAS status 1 (CUBLAS_STATUS_NOT_INITIALIZED) in cublasCreate", CudaErrors.FormatCublas(1, "cublasCreate_v2"));
    }

    [Fact]
    public void NvrtcResults()
    {
        Assert.Equal("NVRTC_ERROR_COMPILATION", CudaErrors.NvrtcResultName(6));
        Assert.Equal("NVRTC_ERROR_INVALID_OPTION", CudaErrors.NvrtcResultName(5));
        Assert.Equal("NVRTC_ERROR_77", CudaErrors.NvrtcResultName(77));
        Assert.Equal("NVRTC error NVRTC_ERROR_COMPILATION in nvrtcCompileProgram: boom", CudaErrors.FormatNvrtc(6, "nvrtcCompileProgram", "boom"));
    }
}
