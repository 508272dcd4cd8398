using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Numerics;

/// <summary>
/// One micro-panel of <see cref="Gemm"/>'s weights: W[r0 .. r0+nr, k0 .. k0+kc) widened to float32 and transposed
/// to [kc][NR] (the kernel's vector side: NR consecutive floats per k), rows past nr zero. The rows are widened
/// into a scratch block by <see cref="WeightMatrix.WidenRow"/> (every dtype and block quantization), then
/// transposed in 8 × 8 register blocks on AVX, 4 × 4 on ARM64 NEON (scalar elsewhere, and for a kc not a multiple of
/// the block); bf16 and q8_0 on AVX2 are widened in registers on the way (no scratch pass).
/// </summary>
internal static unsafe class WeightPanel
{
    /// <param name="rows">scratch of NR × <see cref="Gemm.MaxKBlock"/> floats</param>
    /// <param name="dst">the micro-panel, kc × NR floats</param>
    public static void Pack(WeightMatrix w, int r0, int nr, int k0, int kc, int NR, float* rows, float* dst)
    {
        const int ld = Gemm.MaxKBlock;
        if (w.Type == DType.BF16 && !w.IsQuantized && nr == NR && kc % 8 == 0 && Avx2.IsSupported)
        {
            // bf16 straight from W: 8 weights of a row widened in one register (zero-extend, shift), then transposed.
            for (int h = 0; h < NR; h += 8)
            {
                ushort* src = (ushort*)w.At(r0 + h, k0);
                for (int i = 0; i < kc; i += 8) Transpose8(Bf16Rows(src + i, w.Cols), dst + i * NR + h, NR);
            }
            return;
        }
        if (w.Quant == BlockQuant.Q8_0 && nr == NR && kc % Q8_0.BlockSize == 0 && Avx2.IsSupported)
        {
            // q8_0 straight from W, as bf16: per block of 32 columns, 8 bytes of a row widened and scaled in one
            // register (q·d, the product Q8_0.Dequantize forms), then transposed.
            long rb = w.RowBytes;
            for (int h = 0; h < NR; h += 8)
            {
                byte* src = w.At(r0 + h, k0);
                for (int i = 0; i < kc; i += Q8_0.BlockSize, src += Q8_0.BlockBytes)
                {
                    var (d0, d1, d2, d3, d4, d5, d6, d7) = (Scale(src), Scale(src + rb), Scale(src + 2 * rb), Scale(src + 3 * rb),
                        Scale(src + 4 * rb), Scale(src + 5 * rb), Scale(src + 6 * rb), Scale(src + 7 * rb));
                    for (int c = 0; c < Q8_0.BlockSize; c += 8)
                    {
                        byte* q = src + 2 + c;
                        Transpose8((Q8(q, d0), Q8(q + rb, d1), Q8(q + 2 * rb, d2), Q8(q + 3 * rb, d3),
                            Q8(q + 4 * rb, d4), Q8(q + 5 * rb, d5), Q8(q + 6 * rb, d6), Q8(q + 7 * rb, d7)), dst + (i + c) * NR + h, NR);
                    }
                }
            }
            return;
        }
        for (int r = 0; r < nr; r++) w.WidenRow(r0 + r, k0, kc, new Span<float>(rows + r * ld, kc));
        for (int r = nr; r < NR; r++) new Span<float>(rows + r * ld, kc).Clear();
        if (Avx.IsSupported && kc % 8 == 0)
        {
            for (int h = 0; h < NR; h += 8)
                for (int i = 0; i < kc; i += 8) Transpose8(rows + h * ld + i, ld, dst + i * NR + h, NR);
            return;
        }
        if (AdvSimd.Arm64.IsSupported && kc % 4 == 0)
        {
            for (int h = 0; h < NR; h += 4)
                for (int i = 0; i < kc; i += 4) Transpose4(rows + h * ld + i, ld, dst + i * NR + h, NR);
            return;
        }
        for (int i = 0; i < kc; i++)
            for (int j = 0; j < NR; j++) dst[i * NR + j] = rows[j * ld + i];
    }

    /// <summary>
    /// NEON: the 4 × 4 block at <paramref name="src"/> (row stride <paramref name="lds"/>) transposed to
    /// <paramref name="dst"/> (row stride <paramref name="ldd"/>): trn1/trn2 on 32-bit lanes, then zip1/zip2 on 64-bit
    /// halves. Tested under qemu-user (tests/arm64/run.sh); x86 never takes it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4(float* src, int lds, float* dst, int ldd)
    {
        var r0 = AdvSimd.LoadVector128(src); var r1 = AdvSimd.LoadVector128(src + lds);
        var r2 = AdvSimd.LoadVector128(src + 2 * lds); var r3 = AdvSimd.LoadVector128(src + 3 * lds);
        var t0 = AdvSimd.Arm64.TransposeEven(r0, r1).AsUInt64(); var t1 = AdvSimd.Arm64.TransposeOdd(r0, r1).AsUInt64();
        var t2 = AdvSimd.Arm64.TransposeEven(r2, r3).AsUInt64(); var t3 = AdvSimd.Arm64.TransposeOdd(r2, r3).AsUInt64();
        AdvSimd.Store(dst, AdvSimd.Arm64.ZipLow(t0, t2).AsSingle());
        AdvSimd.Store(dst + ldd, AdvSimd.Arm64.ZipLow(t1, t3).AsSingle());
        AdvSimd.Store(dst + 2 * ldd, AdvSimd.Arm64.ZipHigh(t0, t2).AsSingle());
        AdvSimd.Store(dst + 3 * ldd, AdvSimd.Arm64.ZipHigh(t1, t3).AsSingle());
    }

    /// <summary>The 8 × 8 block at <paramref name="src"/> (row stride <paramref name="lds"/>) transposed to <paramref name="dst"/> (row stride <paramref name="ldd"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8(float* src, int lds, float* dst, int ldd) => Transpose8(
        (Avx.LoadVector256(src), Avx.LoadVector256(src + lds), Avx.LoadVector256(src + 2 * lds), Avx.LoadVector256(src + 3 * lds),
         Avx.LoadVector256(src + 4 * lds), Avx.LoadVector256(src + 5 * lds), Avx.LoadVector256(src + 6 * lds), Avx.LoadVector256(src + 7 * lds)),
        dst, ldd);

    /// <summary>8 bf16 values of each of 8 rows (row stride <paramref name="ld"/> elements), widened exactly to float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>) Bf16Rows(ushort* src, long ld) =>
        (Bf16(src), Bf16(src + ld), Bf16(src + 2 * ld), Bf16(src + 3 * ld), Bf16(src + 4 * ld), Bf16(src + 5 * ld), Bf16(src + 6 * ld), Bf16(src + 7 * ld));

    /// <summary>A q8_0 block's fp16 scale (its first two bytes), broadcast.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Scale(byte* block) => Vector256.Create(Fp16.Read(new ReadOnlySpan<byte>(block, 2)));

    /// <summary>8 int8 weights at <paramref name="q"/> times their block's scale.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Q8(byte* q, Vector256<float> d) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32((sbyte*)q)) * d;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Bf16(ushort* p) => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(p), 16).AsSingle();

    /// <summary>Rows r0..r7 written as the columns of the 8 × 8 block at <paramref name="dst"/> (row stride <paramref name="ldd"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8((Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>) rows, float* dst, int ldd)
    {
        var (r0, r1, r2, r3, r4, r5, r6, r7) = rows;
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }
}

/// <summary>
/// Prefetches the cache lines of W[r0 .. r0+nr, k0 .. k0+kc) (quantized: the blocks of those columns) in
/// <paramref name="steps"/> equal portions, one per <see cref="Step"/>; a default instance does nothing.
/// </summary>
internal unsafe struct WeightPrefetch
{
    private readonly WeightMatrix _w;
    private readonly int _r0, _k0, _linesPerRow, _perStep;
    private int _line, _lines;

    public WeightPrefetch(WeightMatrix w, int r0, int nr, int k0, int kc, int steps)
    {
        _w = w; _r0 = r0; _k0 = k0;
        long bytes = w.At(0, k0 + kc) - w.At(0, k0);
        _linesPerRow = (int)((bytes + 63) / 64);
        _lines = Sse.IsSupported ? nr * _linesPerRow : 0;
        _perStep = (_lines + steps - 1) / Math.Max(1, steps);
    }

    public void Step()
    {
        for (int end = Math.Min(_lines, _line + _perStep); _line < end; _line++)
            Sse.Prefetch0(_w.At(_r0 + _line / _linesPerRow, _k0) + _line % _linesPerRow * 64);
    }
}
