using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Mistral.Merge.Numerics;

/// <summary>
/// The register-tile micro-kernel of the MoE similarity GEMM (the forward pass's <see cref="Gemm"/> has its own,
/// <see cref="PackedGemmKernel"/>), used by <see cref="SimilarityGemm"/>: <c>acc[8][32] (+)= Σ_p a(r, p) · b[p][0..32]</c>
/// over <c>kc</c> steps, with one broadcast of a(r, p) and two FMAs per step and row. <c>b</c> is a packed
/// panel [kc][32]; a(r, p) sits at <c>a[r·rowStride + p·stepStride]</c> (a row-major weight block:
/// rowStride = ld, stepStride = 1; a packed [kc][8] panel: rowStride = 1, stepStride = 8). Every output is one
/// float32 FMA chain over p in increasing order at every vector width (Vector512, four 4×16 Vector256 quadrants, four
/// Vector128 quarters, or scalar), so all widths give the same bits.
/// </summary>
public static unsafe class GemmKernel
{
    public const int Rows = 8, Cols = 32;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile8x32(float* a, int rowStride, int stepStride, float* b, int kc, float* acc, bool first)
    {
        if (Vector512.IsHardwareAccelerated) { Tile512(a, rowStride, stepStride, b, kc, acc, first); return; }
        if (Vector256.IsHardwareAccelerated)
        {
            float* a4 = a + 4 * rowStride;
            Tile256(a, rowStride, stepStride, b, kc, acc, first);
            Tile256(a4, rowStride, stepStride, b, kc, acc + 4 * Cols, first);
            Tile256(a, rowStride, stepStride, b + 16, kc, acc + 16, first);
            Tile256(a4, rowStride, stepStride, b + 16, kc, acc + 4 * Cols + 16, first);
            return;
        }
        if (Vector128.IsHardwareAccelerated)
        {
            for (int j = 0; j < Cols; j += 8) Tile128(a, rowStride, stepStride, b + j, kc, acc + j, first);
            return;
        }
        Scalar(a, rowStride, stepStride, b, kc, acc, first);
    }

    /// <summary>The scalar form (also the reference the vector forms are tested against).</summary>
    internal static void Scalar(float* a, int rowStride, int stepStride, float* b, int kc, float* acc, bool first)
    {
        for (int r = 0; r < Rows; r++)
            for (int j = 0; j < Cols; j++)
            {
                float s = first ? 0f : acc[r * Cols + j];
                for (int p = 0; p < kc; p++) s = MathF.FusedMultiplyAdd(a[(long)r * rowStride + (long)p * stepStride], b[p * Cols + j], s);
                acc[r * Cols + j] = s;
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Tile512(float* a, int rowStride, int stepStride, float* b, int kc, float* acc, bool first)
    {
        Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (first)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = Vector512<float>.Zero;
            c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = Vector512<float>.Zero;
        }
        else
        {
            c00 = Vector512.Load(acc + 0); c01 = Vector512.Load(acc + 16);
            c10 = Vector512.Load(acc + 32); c11 = Vector512.Load(acc + 48);
            c20 = Vector512.Load(acc + 64); c21 = Vector512.Load(acc + 80);
            c30 = Vector512.Load(acc + 96); c31 = Vector512.Load(acc + 112);
            c40 = Vector512.Load(acc + 128); c41 = Vector512.Load(acc + 144);
            c50 = Vector512.Load(acc + 160); c51 = Vector512.Load(acc + 176);
            c60 = Vector512.Load(acc + 192); c61 = Vector512.Load(acc + 208);
            c70 = Vector512.Load(acc + 224); c71 = Vector512.Load(acc + 240);
        }
        float* a0 = a, a1 = a + rowStride, a2 = a + 2 * rowStride, a3 = a + 3 * rowStride;
        float* a4 = a + 4 * rowStride, a5 = a + 5 * rowStride, a6 = a + 6 * rowStride, a7 = a + 7 * rowStride;
        long o = 0;
        for (int p = 0; p < kc; p++, o += stepStride, b += Cols)
        {
            var x0 = Vector512.Load(b);
            var x1 = Vector512.Load(b + 16);
            var s = Vector512.Create(a0[o]); c00 = Vector512.FusedMultiplyAdd(x0, s, c00); c01 = Vector512.FusedMultiplyAdd(x1, s, c01);
            s = Vector512.Create(a1[o]); c10 = Vector512.FusedMultiplyAdd(x0, s, c10); c11 = Vector512.FusedMultiplyAdd(x1, s, c11);
            s = Vector512.Create(a2[o]); c20 = Vector512.FusedMultiplyAdd(x0, s, c20); c21 = Vector512.FusedMultiplyAdd(x1, s, c21);
            s = Vector512.Create(a3[o]); c30 = Vector512.FusedMultiplyAdd(x0, s, c30); c31 = Vector512.FusedMultiplyAdd(x1, s, c31);
            s = Vector512.Create(a4[o]); c40 = Vector512.FusedMultiplyAdd(x0, s, c40); c41 = Vector512.FusedMultiplyAdd(x1, s, c41);
            s = Vector512.Create(a5[o]); c50 = Vector512.FusedMultiplyAdd(x0, s, c50); c51 = Vector512.FusedMultiplyAdd(x1, s, c51);
            s = Vector512.Create(a6[o]); c60 = Vector512.FusedMultiplyAdd(x0, s, c60); c61 = Vector512.FusedMultiplyAdd(x1, s, c61);
            s = Vector512.Create(a7[o]); c70 = Vector512.FusedMultiplyAdd(x0, s, c70); c71 = Vector512.FusedMultiplyAdd(x1, s, c71);
        }
        c00.Store(acc + 0); c01.Store(acc + 16); c10.Store(acc + 32); c11.Store(acc + 48);
        c20.Store(acc + 64); c21.Store(acc + 80); c30.Store(acc + 96); c31.Store(acc + 112);
        c40.Store(acc + 128); c41.Store(acc + 144); c50.Store(acc + 160); c51.Store(acc + 176);
        c60.Store(acc + 192); c61.Store(acc + 208); c70.Store(acc + 224); c71.Store(acc + 240);
    }

    // AVX2 (16 ymm): 4 rows × 16 columns per call (8 accumulators + 2 loads + 1 broadcast); Tile8x32 runs the four
    // quadrants. 8 rows × 16 (16 accumulators) spilled three of them to the stack in every step.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Tile256(float* a, int rowStride, int stepStride, float* b, int kc, float* acc, bool first)
    {
        const int S = Cols;
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31;
        if (first) c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = Vector256<float>.Zero;
        else
        {
            c00 = Vector256.Load(acc); c01 = Vector256.Load(acc + 8);
            c10 = Vector256.Load(acc + S); c11 = Vector256.Load(acc + S + 8);
            c20 = Vector256.Load(acc + 2 * S); c21 = Vector256.Load(acc + 2 * S + 8);
            c30 = Vector256.Load(acc + 3 * S); c31 = Vector256.Load(acc + 3 * S + 8);
        }
        float* a0 = a, a1 = a + rowStride, a2 = a + 2 * rowStride, a3 = a + 3 * rowStride;
        long o = 0;
        for (int p = 0; p < kc; p++, o += stepStride, b += S)
        {
            var x0 = Vector256.Load(b);
            var x1 = Vector256.Load(b + 8);
            var s = Vector256.Create(a0[o]); c00 = Vector256.FusedMultiplyAdd(x0, s, c00); c01 = Vector256.FusedMultiplyAdd(x1, s, c01);
            s = Vector256.Create(a1[o]); c10 = Vector256.FusedMultiplyAdd(x0, s, c10); c11 = Vector256.FusedMultiplyAdd(x1, s, c11);
            s = Vector256.Create(a2[o]); c20 = Vector256.FusedMultiplyAdd(x0, s, c20); c21 = Vector256.FusedMultiplyAdd(x1, s, c21);
            s = Vector256.Create(a3[o]); c30 = Vector256.FusedMultiplyAdd(x0, s, c30); c31 = Vector256.FusedMultiplyAdd(x1, s, c31);
        }
        c00.Store(acc); c01.Store(acc + 8); c10.Store(acc + S); c11.Store(acc + S + 8);
        c20.Store(acc + 2 * S); c21.Store(acc + 2 * S + 8); c30.Store(acc + 3 * S); c31.Store(acc + 3 * S + 8);
    }

    // Without Vector256 (ARM64 NEON): 8 rows × 8 columns per call (b and acc keep their row stride of 32).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Tile128(float* a, int rowStride, int stepStride, float* b, int kc, float* acc, bool first)
    {
        const int S = Cols;
        Vector128<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (first)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = Vector128<float>.Zero;
            c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = Vector128<float>.Zero;
        }
        else
        {
            c00 = Vector128.Load(acc); c01 = Vector128.Load(acc + 4);
            c10 = Vector128.Load(acc + S); c11 = Vector128.Load(acc + S + 4);
            c20 = Vector128.Load(acc + 2 * S); c21 = Vector128.Load(acc + 2 * S + 4);
            c30 = Vector128.Load(acc + 3 * S); c31 = Vector128.Load(acc + 3 * S + 4);
            c40 = Vector128.Load(acc + 4 * S); c41 = Vector128.Load(acc + 4 * S + 4);
            c50 = Vector128.Load(acc + 5 * S); c51 = Vector128.Load(acc + 5 * S + 4);
            c60 = Vector128.Load(acc + 6 * S); c61 = Vector128.Load(acc + 6 * S + 4);
            c70 = Vector128.Load(acc + 7 * S); c71 = Vector128.Load(acc + 7 * S + 4);
        }
        float* a0 = a, a1 = a + rowStride, a2 = a + 2 * rowStride, a3 = a + 3 * rowStride;
        float* a4 = a + 4 * rowStride, a5 = a + 5 * rowStride, a6 = a + 6 * rowStride, a7 = a + 7 * rowStride;
        long o = 0;
        for (int p = 0; p < kc; p++, o += stepStride, b += S)
        {
            var x0 = Vector128.Load(b);
            var x1 = Vector128.Load(b + 4);
            var s = Vector128.Create(a0[o]); c00 = Vector128.FusedMultiplyAdd(x0, s, c00); c01 = Vector128.FusedMultiplyAdd(x1, s, c01);
            s = Vector128.Create(a1[o]); c10 = Vector128.FusedMultiplyAdd(x0, s, c10); c11 = Vector128.FusedMultiplyAdd(x1, s, c11);
            s = Vector128.Create(a2[o]); c20 = Vector128.FusedMultiplyAdd(x0, s, c20); c21 = Vector128.FusedMultiplyAdd(x1, s, c21);
            s = Vector128.Create(a3[o]); c30 = Vector128.FusedMultiplyAdd(x0, s, c30); c31 = Vector128.FusedMultiplyAdd(x1, s, c31);
            s = Vector128.Create(a4[o]); c40 = Vector128.FusedMultiplyAdd(x0, s, c40); c41 = Vector128.FusedMultiplyAdd(x1, s, c41);
            s = Vector128.Create(a5[o]); c50 = Vector128.FusedMultiplyAdd(x0, s, c50); c51 = Vector128.FusedMultiplyAdd(x1, s, c51);
            s = Vector128.Create(a6[o]); c60 = Vector128.FusedMultiplyAdd(x0, s, c60); c61 = Vector128.FusedMultiplyAdd(x1, s, c61);
            s = Vector128.Create(a7[o]); c70 = Vector128.FusedMultiplyAdd(x0, s, c70); c71 = Vector128.FusedMultiplyAdd(x1, s, c71);
        }
        c00.Store(acc); c01.Store(acc + 4); c10.Store(acc + S); c11.Store(acc + S + 4);
        c20.Store(acc + 2 * S); c21.Store(acc + 2 * S + 4); c30.Store(acc + 3 * S); c31.Store(acc + 3 * S + 4);
        c40.Store(acc + 4 * S); c41.Store(acc + 4 * S + 4); c50.Store(acc + 5 * S); c51.Store(acc + 5 * S + 4);
        c60.Store(acc + 6 * S); c61.Store(acc + 6 * S + 4); c70.Store(acc + 7 * S); c71.Store(acc + 7 * S + 4);
    }
}
