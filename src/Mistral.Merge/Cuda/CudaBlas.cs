using Mistral.Merge.Cuda.Native;
using static Mistral.Merge.Cuda.Native.CudaConstants;

namespace Mistral.Merge.Cuda;

/// <summary>
/// cuBLAS handle bound to one stream, with the one product the forward pass needs:
/// Y[tokens, out] (f32) = X[tokens, in] · W[out, in]ᵀ (+ beta · Y), all row-major as PyTorch stores them.
/// Row-major Y = X Wᵀ is column-major Yᵀ = W·Xᵀ viewed through the transposes: cublasGemmEx(transa = T on
/// W's buffer [in × out col-major], transb = N on X's buffer [in × tokens col-major], m = out, n = tokens, k = in).
/// BF16 inputs use CUBLAS_COMPUTE_32F (f32 accumulation on tensor cores); F32 inputs use CUBLAS_COMPUTE_32F_PEDANTIC
/// (no TF32 or other reduced-precision shortcuts).
/// </summary>
public sealed unsafe class CudaBlas : IDisposable
{
    private readonly CudaContext _ctx;
    private nint _handle;

    public CudaBlas(CudaContext ctx, CudaStream stream)
    {
        _ctx = ctx;
        ctx.MakeCurrent();
        nint h;
        CublasApi.Check(ctx.CublasApi.cublasCreate(&h), "cublasCreate_v2");
        _handle = h;
        CublasApi.Check(ctx.CublasApi.cublasSetStream(h, stream.Handle), "cublasSetStream_v2");
    }

    public void SetStream(CudaStream stream) => CublasApi.Check(_ctx.CublasApi.cublasSetStream(_handle, stream.Handle), "cublasSetStream_v2");

    /// <summary>Y = X·Wᵀ + beta·Y. <paramref name="bf16"/>: W and X are bf16 (else f32); Y is always f32.</summary>
    public void Linear(bool bf16, ulong w, ulong x, ulong y, int tokens, int outDim, int inDim, float beta = 0f)
    {
        if (tokens == 0) return;
        float alpha = 1f;
        int type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
        int compute = bf16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
        int st = _ctx.CublasApi.cublasGemmEx(_handle, CUBLAS_OP_T, CUBLAS_OP_N, outDim, tokens, inDim,
            &alpha, (void*)w, type, inDim, (void*)x, type, inDim, &beta, (void*)y, CUDA_R_32F, outDim, compute, CUBLAS_GEMM_DEFAULT);
        CublasApi.Check(st, "cublasGemmEx");
    }

    /// <summary>
    /// Batched Y_b = X_b·W_bᵀ for <paramref name="batch"/> equally shaped problems laid out at fixed strides
    /// (elements). Used by the GEMM-peak measurement of the benchmark.
    /// </summary>
    public void LinearBatched(bool bf16, ulong w, long strideW, ulong x, long strideX, ulong y, long strideY, int tokens, int outDim, int inDim, int batch)
    {
        float alpha = 1f, beta = 0f;
        int type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
        int compute = bf16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
        int st = _ctx.CublasApi.cublasGemmStridedBatchedEx(_handle, CUBLAS_OP_T, CUBLAS_OP_N, outDim, tokens, inDim,
            &alpha, (void*)w, type, inDim, strideW, (void*)x, type, inDim, strideX, &beta, (void*)y, CUDA_R_32F, outDim, strideY,
            batch, compute, CUBLAS_GEMM_DEFAULT);
        CublasApi.Check(st, "cublasGemmStridedBatchedEx");
    }

    public void Dispose()
    {
        if (_handle == 0) return;
        _ctx.CublasApi.cublasDestroy(_handle);
        _handle = 0;
    }
}
