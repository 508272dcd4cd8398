using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Mistral.Merge.Numerics;

/// <summary>
/// The first similarity kernel, kept as the benchmark baseline (no packing, so cheap for tiny products).
/// <c>C[n, m] += A[n, k] · B[m, k]ᵀ</c> in float32 (row-major, both operands along k): a blocked,
/// multithreaded dot-product GEMM. 4×4 register tiles of 16 SIMD accumulators (Vector512 where the CPU
/// has it, else Vector256, else Vector128 on ARM64 NEON) run over k chunks that keep a 64-row A block and a 256-row B block in L2;
/// the <see cref="WorkerPool"/>'s threads own disjoint row blocks of C. Accumulation is float32 (per-lane partial sums, as BLAS does).
/// </summary>
public static unsafe class DotProductGemm
{
    private const int RowBlock = 64, ColBlock = 256, KBlock = 512;

    public static void MultiplyAddNT(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int n, int m, int k, int maxThreads = -1)
    {
        if ((long)n * k > a.Length || (long)m * k > b.Length || (long)n * m > c.Length)
            throw new ArgumentException("GEMM operand sizes do not match n, m, k");
        if (n == 0 || m == 0 || k == 0) return;
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
        {
            nint ia = (nint)pa, ib = (nint)pb, ic = (nint)pc;
            int blocks = (n + RowBlock - 1) / RowBlock;
            WorkerPool.For(maxThreads, blocks, (blk, _) =>
            {
                int r0 = blk * RowBlock, r1 = Math.Min(n, r0 + RowBlock);
                RowBlockProduct((float*)ia, (float*)ib, (float*)ic, r0, r1, m, k);
            });
        }
    }

    private static void RowBlockProduct(float* a, float* b, float* c, int r0, int r1, int m, int k)
    {
        for (int c0 = 0; c0 < m; c0 += ColBlock)
        {
            int c1 = Math.Min(m, c0 + ColBlock);
            for (int k0 = 0; k0 < k; k0 += KBlock)
            {
                int kc = Math.Min(KBlock, k - k0);
                int i = r0;
                for (; i + 4 <= r1; i += 4)
                {
                    int j = c0;
                    for (; j + 4 <= c1; j += 4)
                        Tile4x4(a + (long)i * k + k0, b + (long)j * k + k0, k, kc, c + (long)i * m + j, m);
                    for (; j < c1; j++)
                        for (int r = 0; r < 4; r++)
                            c[(long)(i + r) * m + j] += Dot(a + (long)(i + r) * k + k0, b + (long)j * k + k0, kc);
                }
                for (; i < r1; i++)
                    for (int j = c0; j < c1; j++)
                        c[(long)i * m + j] += Dot(a + (long)i * k + k0, b + (long)j * k + k0, kc);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Tile4x4(float* a, float* b, int ld, int kc, float* c, int ldc, SimdWidth width = 0)
    {
        if (width == 0) width = Simd.Widest;
        float* a0 = a, a1 = a + ld, a2 = a + 2L * ld, a3 = a + 3L * ld;
        float* b0 = b, b1 = b + ld, b2 = b + 2L * ld, b3 = b + 3L * ld;
        int p = 0;
        float s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        float s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        if (width >= SimdWidth.V512 && kc >= 16)
        {
            Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
            Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
            Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
            for (; p + 16 <= kc; p += 16)
            {
                var x0 = Vector512.Load(a0 + p); var x1 = Vector512.Load(a1 + p);
                var x2 = Vector512.Load(a2 + p); var x3 = Vector512.Load(a3 + p);
                var y = Vector512.Load(b0 + p);
                c00 = Vector512.FusedMultiplyAdd(x0, y, c00); c10 = Vector512.FusedMultiplyAdd(x1, y, c10);
                c20 = Vector512.FusedMultiplyAdd(x2, y, c20); c30 = Vector512.FusedMultiplyAdd(x3, y, c30);
                y = Vector512.Load(b1 + p);
                c01 = Vector512.FusedMultiplyAdd(x0, y, c01); c11 = Vector512.FusedMultiplyAdd(x1, y, c11);
                c21 = Vector512.FusedMultiplyAdd(x2, y, c21); c31 = Vector512.FusedMultiplyAdd(x3, y, c31);
                y = Vector512.Load(b2 + p);
                c02 = Vector512.FusedMultiplyAdd(x0, y, c02); c12 = Vector512.FusedMultiplyAdd(x1, y, c12);
                c22 = Vector512.FusedMultiplyAdd(x2, y, c22); c32 = Vector512.FusedMultiplyAdd(x3, y, c32);
                y = Vector512.Load(b3 + p);
                c03 = Vector512.FusedMultiplyAdd(x0, y, c03); c13 = Vector512.FusedMultiplyAdd(x1, y, c13);
                c23 = Vector512.FusedMultiplyAdd(x2, y, c23); c33 = Vector512.FusedMultiplyAdd(x3, y, c33);
            }
            s00 = Vector512.Sum(c00); s01 = Vector512.Sum(c01); s02 = Vector512.Sum(c02); s03 = Vector512.Sum(c03);
            s10 = Vector512.Sum(c10); s11 = Vector512.Sum(c11); s12 = Vector512.Sum(c12); s13 = Vector512.Sum(c13);
            s20 = Vector512.Sum(c20); s21 = Vector512.Sum(c21); s22 = Vector512.Sum(c22); s23 = Vector512.Sum(c23);
            s30 = Vector512.Sum(c30); s31 = Vector512.Sum(c31); s32 = Vector512.Sum(c32); s33 = Vector512.Sum(c33);
        }
        else if (width >= SimdWidth.V256 && kc >= 8)
        {
            Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
            Vector256<float> c20 = default, c21 = default, c22 = default, c23 = default;
            Vector256<float> c30 = default, c31 = default, c32 = default, c33 = default;
            for (; p + 8 <= kc; p += 8)
            {
                var x0 = Vector256.Load(a0 + p); var x1 = Vector256.Load(a1 + p);
                var x2 = Vector256.Load(a2 + p); var x3 = Vector256.Load(a3 + p);
                var y = Vector256.Load(b0 + p);
                c00 = Vector256.FusedMultiplyAdd(x0, y, c00); c10 = Vector256.FusedMultiplyAdd(x1, y, c10);
                c20 = Vector256.FusedMultiplyAdd(x2, y, c20); c30 = Vector256.FusedMultiplyAdd(x3, y, c30);
                y = Vector256.Load(b1 + p);
                c01 = Vector256.FusedMultiplyAdd(x0, y, c01); c11 = Vector256.FusedMultiplyAdd(x1, y, c11);
                c21 = Vector256.FusedMultiplyAdd(x2, y, c21); c31 = Vector256.FusedMultiplyAdd(x3, y, c31);
                y = Vector256.Load(b2 + p);
                c02 = Vector256.FusedMultiplyAdd(x0, y, c02); c12 = Vector256.FusedMultiplyAdd(x1, y, c12);
                c22 = Vector256.FusedMultiplyAdd(x2, y, c22); c32 = Vector256.FusedMultiplyAdd(x3, y, c32);
                y = Vector256.Load(b3 + p);
                c03 = Vector256.FusedMultiplyAdd(x0, y, c03); c13 = Vector256.FusedMultiplyAdd(x1, y, c13);
                c23 = Vector256.FusedMultiplyAdd(x2, y, c23); c33 = Vector256.FusedMultiplyAdd(x3, y, c33);
            }
            s00 = Vector256.Sum(c00); s01 = Vector256.Sum(c01); s02 = Vector256.Sum(c02); s03 = Vector256.Sum(c03);
            s10 = Vector256.Sum(c10); s11 = Vector256.Sum(c11); s12 = Vector256.Sum(c12); s13 = Vector256.Sum(c13);
            s20 = Vector256.Sum(c20); s21 = Vector256.Sum(c21); s22 = Vector256.Sum(c22); s23 = Vector256.Sum(c23);
            s30 = Vector256.Sum(c30); s31 = Vector256.Sum(c31); s32 = Vector256.Sum(c32); s33 = Vector256.Sum(c33);
        }
        else if (width >= SimdWidth.V128 && kc >= 4)
        {
            Vector128<float> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector128<float> c10 = default, c11 = default, c12 = default, c13 = default;
            Vector128<float> c20 = default, c21 = default, c22 = default, c23 = default;
            Vector128<float> c30 = default, c31 = default, c32 = default, c33 = default;
            for (; p + 4 <= kc; p += 4)
            {
                var x0 = Vector128.Load(a0 + p); var x1 = Vector128.Load(a1 + p);
                var x2 = Vector128.Load(a2 + p); var x3 = Vector128.Load(a3 + p);
                var y = Vector128.Load(b0 + p);
                c00 = Vector128.FusedMultiplyAdd(x0, y, c00); c10 = Vector128.FusedMultiplyAdd(x1, y, c10);
                c20 = Vector128.FusedMultiplyAdd(x2, y, c20); c30 = Vector128.FusedMultiplyAdd(x3, y, c30);
                y = Vector128.Load(b1 + p);
                c01 = Vector128.FusedMultiplyAdd(x0, y, c01); c11 = Vector128.FusedMultiplyAdd(x1, y, c11);
                c21 = Vector128.FusedMultiplyAdd(x2, y, c21); c31 = Vector128.FusedMultiplyAdd(x3, y, c31);
                y = Vector128.Load(b2 + p);
                c02 = Vector128.FusedMultiplyAdd(x0, y, c02); c12 = Vector128.FusedMultiplyAdd(x1, y, c12);
                c22 = Vector128.FusedMultiplyAdd(x2, y, c22); c32 = Vector128.FusedMultiplyAdd(x3, y, c32);
                y = Vector128.Load(b3 + p);
                c03 = Vector128.FusedMultiplyAdd(x0, y, c03); c13 = Vector128.FusedMultiplyAdd(x1, y, c13);
                c23 = Vector128.FusedMultiplyAdd(x2, y, c23); c33 = Vector128.FusedMultiplyAdd(x3, y, c33);
            }
            s00 = Vector128.Sum(c00); s01 = Vector128.Sum(c01); s02 = Vector128.Sum(c02); s03 = Vector128.Sum(c03);
            s10 = Vector128.Sum(c10); s11 = Vector128.Sum(c11); s12 = Vector128.Sum(c12); s13 = Vector128.Sum(c13);
            s20 = Vector128.Sum(c20); s21 = Vector128.Sum(c21); s22 = Vector128.Sum(c22); s23 = Vector128.Sum(c23);
            s30 = Vector128.Sum(c30); s31 = Vector128.Sum(c31); s32 = Vector128.Sum(c32); s33 = Vector128.Sum(c33);
        }
        for (; p < kc; p++)
        {
            float x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
            float y0 = b0[p], y1 = b1[p], y2 = b2[p], y3 = b3[p];
            s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
            s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
            s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
            s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3;
        }
        c[0] += s00; c[1] += s01; c[2] += s02; c[3] += s03;
        c += ldc; c[0] += s10; c[1] += s11; c[2] += s12; c[3] += s13;
        c += ldc; c[0] += s20; c[1] += s21; c[2] += s22; c[3] += s23;
        c += ldc; c[0] += s30; c[1] += s31; c[2] += s32; c[3] += s33;
    }

    private static float Dot(float* x, float* y, int len)
    {
        return System.Numerics.Tensors.TensorPrimitives.Dot(new ReadOnlySpan<float>(x, len), new ReadOnlySpan<float>(y, len));
    }
}
