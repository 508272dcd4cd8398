using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Mistral.Merge.Numerics;

/// <summary>
/// The register-blocked micro-kernels of <see cref="Gemm"/>, one per vector width, each sized to its register
/// file: <c>acc[t·NR + j] (+)= Σ_p a[p·MR + t] · b[p·NR + j]</c> for t &lt; MR = <see cref="TokensFor"/> tokens and
/// j &lt; NR = <see cref="WeightsFor"/> weight rows, over p &lt; kc. <c>a</c> is a group of activations [kc][MR]
/// (<see cref="PackedInput"/>; one broadcast per token and step), <c>b</c> a micro-panel of weight rows widened to
/// float32 and transposed, [kc][NR] (vector loads), <c>acc</c> the tile [MR][NR], so each token's outputs are one
/// contiguous run, as in Y. This is BLIS's orientation (its AVX2 sgemm kernel is the same 6 × 16): both operands are
/// one sequential stream. With <c>first</c> the chains start at zero, otherwise at the stored tile: every output is
/// one float32 FMA chain over p in increasing order at every width, so all widths (and the scalar form) give the
/// same bits.
/// </summary>
public static unsafe class PackedGemmKernel
{
    /// <summary>Tokens per micro-tile (the broadcast side) at a vector width in bits (0 = scalar).</summary>
    public static int TokensFor(int bits) => bits == 512 ? 12 : 6;

    /// <summary>Weight rows per micro-tile (the vector side) at a vector width in bits (0 = scalar).</summary>
    public static int WeightsFor(int bits) => bits == 512 ? 32 : 16;

    /// <summary>
    /// K columns per slice (kc) at a vector width: the micro-panel [kc][NR] stays 16 KB (256 × 16 floats; 128 × 32
    /// on AVX-512) so that it and the token group streamed past it fit a 32 KB L1 (Zen 4, Skylake-SP) with room to
    /// spare. A 256-deep AVX-512 panel would be 32 KB — the whole L1 there — and be evicted by the token stream.
    /// The depth only decides where a chain is parked in the tile between slices, not its order: same bits.
    /// </summary>
    public static int DepthFor(int bits) => bits == 512 ? 128 : 256;

    /// <summary>
    /// The width the GEMM runs at on this machine (512, 256, 128 or 0): the widest it has. AVX-512 counts wherever
    /// the CPU has it, also where .NET does not prefer 512-bit vectors (Skylake-SP, Cascade Lake: there
    /// <c>Vector512.IsHardwareAccelerated</c> is false because 512-bit code lowers the clock, yet the Vector512
    /// operations still compile to zmm instructions): for an FMA-bound GEMM twice the work per instruction outweighs
    /// that, which is why BLAS libraries and llama.cpp use it there too. Memory-bound loops keep .NET's preference.
    /// </summary>
    public static int NativeBits => HasAvx512 ? 512 : Vector256.IsHardwareAccelerated ? 256 : Vector128.IsHardwareAccelerated ? 128 : 0;

    /// <summary>The AVX-512 subsets every Vector512 operation needs (F, BW, CD, DQ, VL: all Xeon Scalable and Zen 4 on).</summary>
    private static bool HasAvx512 => Vector512.IsHardwareAccelerated
        || Avx512F.IsSupported && Avx512BW.IsSupported && Avx512CD.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported;

    /// <summary>One micro-tile at width <paramref name="bits"/>: TokensFor(bits) tokens × WeightsFor(bits) weight rows.</summary>
    public static void Run(int bits, float* a, float* b, int kc, float* acc, bool first)
    {
        switch (bits)
        {
            case 512: Kernel512(a, b, kc, acc, first); break;
            case 256: Kernel256(a, b, kc, acc, first); break;
            case 128: Kernel128(a, b, kc, acc, first); break;
            default: Scalar(a, b, kc, acc, first, TokensFor(0), WeightsFor(0)); break;
        }
    }

    /// <summary>The scalar form (the reference the vector forms are tested against): a is [kc][mr], b [kc][nr], acc [mr][nr].</summary>
    internal static void Scalar(float* a, float* b, int kc, float* acc, bool first, int mr, int nr)
    {
        for (int t = 0; t < mr; t++)
            for (int j = 0; j < nr; j++)
            {
                float s = first ? 0f : acc[t * nr + j];
                for (int p = 0; p < kc; p++) s = MathF.FusedMultiplyAdd(b[p * nr + j], a[p * mr + t], s);
                acc[t * nr + j] = s;
            }
    }

    /// <summary>AVX-512 (32 zmm): 12 tokens × 32 weight rows = 24 accumulators + 2 weight loads + 1 broadcast.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel512(float* a, float* b, int kc, float* acc, bool first)
    {
        Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71, c80, c81, c90, c91, ca0, ca1, cb0, cb1;
        if (first)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = Vector512<float>.Zero;
            c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = Vector512<float>.Zero;
            c80 = c81 = c90 = c91 = ca0 = ca1 = cb0 = cb1 = Vector512<float>.Zero;
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
            c80 = Vector512.Load(acc + 256); c81 = Vector512.Load(acc + 272);
            c90 = Vector512.Load(acc + 288); c91 = Vector512.Load(acc + 304);
            ca0 = Vector512.Load(acc + 320); ca1 = Vector512.Load(acc + 336);
            cb0 = Vector512.Load(acc + 352); cb1 = Vector512.Load(acc + 368);
        }
        for (long p = 0; p < kc; p++, a += 12, b += 32)
        {
            var w0 = Vector512.Load(b + 0);
            var w1 = Vector512.Load(b + 16);
            var s = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(w0, s, c00); c01 = Vector512.FusedMultiplyAdd(w1, s, c01);
            s = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(w0, s, c10); c11 = Vector512.FusedMultiplyAdd(w1, s, c11);
            s = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(w0, s, c20); c21 = Vector512.FusedMultiplyAdd(w1, s, c21);
            s = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(w0, s, c30); c31 = Vector512.FusedMultiplyAdd(w1, s, c31);
            s = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(w0, s, c40); c41 = Vector512.FusedMultiplyAdd(w1, s, c41);
            s = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(w0, s, c50); c51 = Vector512.FusedMultiplyAdd(w1, s, c51);
            s = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(w0, s, c60); c61 = Vector512.FusedMultiplyAdd(w1, s, c61);
            s = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(w0, s, c70); c71 = Vector512.FusedMultiplyAdd(w1, s, c71);
            s = Vector512.Create(a[8]); c80 = Vector512.FusedMultiplyAdd(w0, s, c80); c81 = Vector512.FusedMultiplyAdd(w1, s, c81);
            s = Vector512.Create(a[9]); c90 = Vector512.FusedMultiplyAdd(w0, s, c90); c91 = Vector512.FusedMultiplyAdd(w1, s, c91);
            s = Vector512.Create(a[10]); ca0 = Vector512.FusedMultiplyAdd(w0, s, ca0); ca1 = Vector512.FusedMultiplyAdd(w1, s, ca1);
            s = Vector512.Create(a[11]); cb0 = Vector512.FusedMultiplyAdd(w0, s, cb0); cb1 = Vector512.FusedMultiplyAdd(w1, s, cb1);
        }
        c00.Store(acc + 0); c01.Store(acc + 16);
        c10.Store(acc + 32); c11.Store(acc + 48);
        c20.Store(acc + 64); c21.Store(acc + 80);
        c30.Store(acc + 96); c31.Store(acc + 112);
        c40.Store(acc + 128); c41.Store(acc + 144);
        c50.Store(acc + 160); c51.Store(acc + 176);
        c60.Store(acc + 192); c61.Store(acc + 208);
        c70.Store(acc + 224); c71.Store(acc + 240);
        c80.Store(acc + 256); c81.Store(acc + 272);
        c90.Store(acc + 288); c91.Store(acc + 304);
        ca0.Store(acc + 320); ca1.Store(acc + 336);
        cb0.Store(acc + 352); cb1.Store(acc + 368);
    }

    /// <summary>
    /// AVX2 (16 ymm): 6 tokens × 16 weight rows = 12 accumulators + 2 weight loads + 1 broadcast (BLIS's haswell
    /// sgemm tile). Unrolled by two steps (fewer loop instructions per FMA).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel256(float* a, float* b, int kc, float* acc, bool first)
    {
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (first)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = Vector256<float>.Zero;
            c40 = c41 = c50 = c51 = Vector256<float>.Zero;
        }
        else
        {
            c00 = Vector256.Load(acc + 0); c01 = Vector256.Load(acc + 8);
            c10 = Vector256.Load(acc + 16); c11 = Vector256.Load(acc + 24);
            c20 = Vector256.Load(acc + 32); c21 = Vector256.Load(acc + 40);
            c30 = Vector256.Load(acc + 48); c31 = Vector256.Load(acc + 56);
            c40 = Vector256.Load(acc + 64); c41 = Vector256.Load(acc + 72);
            c50 = Vector256.Load(acc + 80); c51 = Vector256.Load(acc + 88);
        }
        long p = 0;
        for (; p + 1 < kc; p += 2, a += 12, b += 32)
        {
            Step256(a, b, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
            Step256(a + 6, b + 16, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
        }
        if (p < kc) Step256(a, b, ref c00, ref c01, ref c10, ref c11, ref c20, ref c21, ref c30, ref c31, ref c40, ref c41, ref c50, ref c51);
        c00.Store(acc + 0); c01.Store(acc + 8);
        c10.Store(acc + 16); c11.Store(acc + 24);
        c20.Store(acc + 32); c21.Store(acc + 40);
        c30.Store(acc + 48); c31.Store(acc + 56);
        c40.Store(acc + 64); c41.Store(acc + 72);
        c50.Store(acc + 80); c51.Store(acc + 88);
    }

    /// <summary>One k step of <see cref="Kernel256"/> (inlined: the accumulators stay in registers, checked in the JIT output).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step256(float* a, float* b,
        ref Vector256<float> c00, ref Vector256<float> c01, ref Vector256<float> c10, ref Vector256<float> c11,
        ref Vector256<float> c20, ref Vector256<float> c21, ref Vector256<float> c30, ref Vector256<float> c31,
        ref Vector256<float> c40, ref Vector256<float> c41, ref Vector256<float> c50, ref Vector256<float> c51)
    {
        var w0 = Vector256.Load(b + 0);
        var w1 = Vector256.Load(b + 8);
        var s = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(w0, s, c00); c01 = Vector256.FusedMultiplyAdd(w1, s, c01);
        s = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(w0, s, c10); c11 = Vector256.FusedMultiplyAdd(w1, s, c11);
        s = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(w0, s, c20); c21 = Vector256.FusedMultiplyAdd(w1, s, c21);
        s = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(w0, s, c30); c31 = Vector256.FusedMultiplyAdd(w1, s, c31);
        s = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(w0, s, c40); c41 = Vector256.FusedMultiplyAdd(w1, s, c41);
        s = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(w0, s, c50); c51 = Vector256.FusedMultiplyAdd(w1, s, c51);
    }

    /// <summary>NEON (32 q registers): 6 tokens × 16 weight rows = 24 accumulators + 4 weight loads + 1 broadcast.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel128(float* a, float* b, int kc, float* acc, bool first)
    {
        Vector128<float> c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33, c40, c41, c42, c43, c50, c51, c52, c53;
        if (first)
        {
            c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = Vector128<float>.Zero;
            c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = Vector128<float>.Zero;
            c40 = c41 = c42 = c43 = c50 = c51 = c52 = c53 = Vector128<float>.Zero;
        }
        else
        {
            c00 = Vector128.Load(acc + 0); c01 = Vector128.Load(acc + 4); c02 = Vector128.Load(acc + 8); c03 = Vector128.Load(acc + 12);
            c10 = Vector128.Load(acc + 16); c11 = Vector128.Load(acc + 20); c12 = Vector128.Load(acc + 24); c13 = Vector128.Load(acc + 28);
            c20 = Vector128.Load(acc + 32); c21 = Vector128.Load(acc + 36); c22 = Vector128.Load(acc + 40); c23 = Vector128.Load(acc + 44);
            c30 = Vector128.Load(acc + 48); c31 = Vector128.Load(acc + 52); c32 = Vector128.Load(acc + 56); c33 = Vector128.Load(acc + 60);
            c40 = Vector128.Load(acc + 64); c41 = Vector128.Load(acc + 68); c42 = Vector128.Load(acc + 72); c43 = Vector128.Load(acc + 76);
            c50 = Vector128.Load(acc + 80); c51 = Vector128.Load(acc + 84); c52 = Vector128.Load(acc + 88); c53 = Vector128.Load(acc + 92);
        }
        for (long p = 0; p < kc; p++, a += 6, b += 16)
        {
            var w0 = Vector128.Load(b + 0);
            var w1 = Vector128.Load(b + 4);
            var w2 = Vector128.Load(b + 8);
            var w3 = Vector128.Load(b + 12);
            var s = Vector128.Create(a[0]); c00 = Vector128.FusedMultiplyAdd(w0, s, c00); c01 = Vector128.FusedMultiplyAdd(w1, s, c01); c02 = Vector128.FusedMultiplyAdd(w2, s, c02); c03 = Vector128.FusedMultiplyAdd(w3, s, c03);
            s = Vector128.Create(a[1]); c10 = Vector128.FusedMultiplyAdd(w0, s, c10); c11 = Vector128.FusedMultiplyAdd(w1, s, c11); c12 = Vector128.FusedMultiplyAdd(w2, s, c12); c13 = Vector128.FusedMultiplyAdd(w3, s, c13);
            s = Vector128.Create(a[2]); c20 = Vector128.FusedMultiplyAdd(w0, s, c20); c21 = Vector128.FusedMultiplyAdd(w1, s, c21); c22 = Vector128.FusedMultiplyAdd(w2, s, c22); c23 = Vector128.FusedMultiplyAdd(w3, s, c23);
            s = Vector128.Create(a[3]); c30 = Vector128.FusedMultiplyAdd(w0, s, c30); c31 = Vector128.FusedMultiplyAdd(w1, s, c31); c32 = Vector128.FusedMultiplyAdd(w2, s, c32); c33 = Vector128.FusedMultiplyAdd(w3, s, c33);
            s = Vector128.Create(a[4]); c40 = Vector128.FusedMultiplyAdd(w0, s, c40); c41 = Vector128.FusedMultiplyAdd(w1, s, c41); c42 = Vector128.FusedMultiplyAdd(w2, s, c42); c43 = Vector128.FusedMultiplyAdd(w3, s, c43);
            s = Vector128.Create(a[5]); c50 = Vector128.FusedMultiplyAdd(w0, s, c50); c51 = Vector128.FusedMultiplyAdd(w1, s, c51); c52 = Vector128.FusedMultiplyAdd(w2, s, c52); c53 = Vector128.FusedMultiplyAdd(w3, s, c53);
        }
        c00.Store(acc + 0); c01.Store(acc + 4); c02.Store(acc + 8); c03.Store(acc + 12);
        c10.Store(acc + 16); c11.Store(acc + 20); c12.Store(acc + 24); c13.Store(acc + 28);
        c20.Store(acc + 32); c21.Store(acc + 36); c22.Store(acc + 40); c23.Store(acc + 44);
        c30.Store(acc + 48); c31.Store(acc + 52); c32.Store(acc + 56); c33.Store(acc + 60);
        c40.Store(acc + 64); c41.Store(acc + 68); c42.Store(acc + 72); c43.Store(acc + 76);
        c50.Store(acc + 80); c51.Store(acc + 84); c52.Store(acc + 88); c53.Store(acc + 92);
    }
}
