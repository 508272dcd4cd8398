using static Mistral.Merge.Cuda.Native.CudaConstants;

namespace Mistral.Merge.Cuda.Native;

/// <summary>cuBLAS entry points, signatures from cublas_api.h (cublasStatus_t/cudaDataType/cublasComputeType_t = int).</summary>
internal sealed unsafe class CublasApi
{
    private const string Lib = "libcublas";

    public readonly delegate* unmanaged<nint*, int> cublasCreate;
    public readonly delegate* unmanaged<nint, int> cublasDestroy;
    public readonly delegate* unmanaged<nint, nint, int> cublasSetStream;
    // cublasGemmEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, computeType, algo)
    public readonly delegate* unmanaged<nint, int, int, int, int, int, void*, void*, int, int, void*, int, int, void*, void*, int, int, int, int, int> cublasGemmEx;
    // cublasGemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB,
    //                            beta, C, Ctype, ldc, strideC, batchCount, computeType, algo)
    public readonly delegate* unmanaged<nint, int, int, int, int, int, void*, void*, int, int, long, void*, int, int, long, void*, void*, int, int, long, int, int, int, int> cublasGemmStridedBatchedEx;

    public CublasApi(nint lib)
    {
        cublasCreate = (delegate* unmanaged<nint*, int>)CudaLibraries.Export(lib, Lib, "cublasCreate_v2");
        cublasDestroy = (delegate* unmanaged<nint, int>)CudaLibraries.Export(lib, Lib, "cublasDestroy_v2");
        cublasSetStream = (delegate* unmanaged<nint, nint, int>)CudaLibraries.Export(lib, Lib, "cublasSetStream_v2");
        cublasGemmEx = (delegate* unmanaged<nint, int, int, int, int, int, void*, void*, int, int, void*, int, int, void*, void*, int, int, int, int, int>)
            CudaLibraries.Export(lib, Lib, "cublasGemmEx");
        cublasGemmStridedBatchedEx = (delegate* unmanaged<nint, int, int, int, int, int, void*, void*, int, int, long, void*, int, int, long, void*, void*, int, int, long, int, int, int, int>)
            CudaLibraries.Export(lib, Lib, "cublasGemmStridedBatchedEx");
    }

    public static void Check(int status, string function)
    {
        if (status == CUBLAS_STATUS_SUCCESS) return;
        throw new MergeException(CudaErrors.FormatCublas(status, function));
    }
}
