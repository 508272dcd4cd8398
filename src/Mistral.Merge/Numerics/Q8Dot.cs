using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Numerics;

/// <summary>
/// The decode dot product of Q8_0 weights as llama.cpp computes it (ggml-cpu's <c>ggml_vec_dot_q8_0_q8_0</c>, b4747):
/// the activation x is first quantized to Q8_0 blocks itself (<see cref="QuantizeActivation"/>, ggml's x86
/// <c>quantize_row_q8_0</c>), then each block pair is an exact integer dot product and the row sum is
/// <c>Σ_b (d_w·d_x) · Σ_j qw_j·qx_j</c> in float32. The integer part is kept as ggml's AVX2 code keeps it: 8 lanes,
/// lane i the sum over bytes 4i..4i+3 of the block, each lane an FMA chain over the blocks, then ggml's
/// <c>hsum_float_8</c> order ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). Every path here (AVX2/AVX-VNNI at 256 bits,
/// ARM64's SDOT — whose lane i is exactly that sum of 4 products —, a portable Vector128 one for ARM64 without the
/// dot-product extension and older x86, the scalar reference) computes exactly those lanes in that
/// order, so all give the same bits — and the same bits as llama.cpp's AVX2 build. (ggml has no 512-bit form of
/// this dot; AVX-512 machines run the 256-bit one, as llama.cpp does, and it is bound by memory anyway.)
/// </summary>
public static unsafe class Q8Dot
{
    /// <summary>
    /// Quantizes x[0..cols) (cols a multiple of 32) into Q8_0 blocks at <paramref name="dst"/> and their scales,
    /// widened back from fp16, into <paramref name="scales"/> (one per block, so the dot loop converts no fp16 of x).
    /// ggml's x86 form: <c>d = amax/127</c> stored as fp16, <c>id = amax ? 127/amax : 0</c>, <c>q = round(x·id)</c> with
    /// ties to even (<c>_mm256_round_ps(_MM_ROUND_NEAREST)</c>) — not the weights' <c>quantize_row_q8_0_ref</c>
    /// (<c>1/d</c>, ties away from zero). Element-wise, so the vector and scalar forms agree bit for bit.
    /// </summary>
    public static void QuantizeActivation(float* x, int cols, byte* dst, float* scales, bool vector = true)
    {
        int nb = cols / Q8_0.BlockSize;
        for (int b = 0; b < nb; b++, x += 32, dst += Q8_0.BlockBytes)
        {
            float amax = 0;
            if (vector && Vector256.IsHardwareAccelerated)
            {
                var m = Vector256.Max(Vector256.Max(Vector256.Abs(Vector256.Load(x)), Vector256.Abs(Vector256.Load(x + 8))),
                    Vector256.Max(Vector256.Abs(Vector256.Load(x + 16)), Vector256.Abs(Vector256.Load(x + 24))));
                amax = Max8(m);
            }
            else for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / 127f;
            ushort dh = Fp16.ToBits(d);
            *(ushort*)dst = dh;
            scales[b] = Half(dh);
            float id = amax != 0f ? 127f / amax : 0f;
            sbyte* q = (sbyte*)(dst + 2);
            if (vector && Vector256.IsHardwareAccelerated)
            {
                var s = Vector256.Create(id);
                var i0 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x) * s));
                var i1 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + 8) * s));
                var i2 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + 16) * s));
                var i3 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + 24) * s));
                Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q);
            }
            else for (int j = 0; j < 32; j++) q[j] = (sbyte)(int)MathF.Round(x[j] * id, MidpointRounding.ToEven);
        }
    }

    private static float Max8(Vector256<float> m)
    {
        var h = Vector128.Max(m.GetLower(), m.GetUpper());
        float r = 0;
        for (int i = 0; i < 4; i++) r = MathF.Max(r, h[i]);
        return r;
    }

    /// <summary>fp16 bits → float for a block scale: exact for zero, subnormals and normals; inf/NaN take the slow path.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(ushort h)
    {
        if ((h & 0x7C00) == 0x7C00) return Fp16.FromBits(h);
        // The 15 value bits shifted into float position read as 2^-112 times the value; scaling by 2^112 is exact.
        float v = BitConverter.UInt32BitsToSingle((uint)(h & 0x7FFF) << 13) * 5.192296858534828e33f;
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(v) | ((uint)(h & 0x8000) << 16));
    }

    /// <summary>The path a dot product runs: the widest the CPU has, or one forced by a test.</summary>
    public enum Path { Auto, Scalar, V128, Avx2, AvxVnni, ArmDot }

    /// <summary>Row of Q8_0 weight blocks · the quantized activation (<paramref name="xq"/> blocks, <paramref name="xd"/> their scales).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(byte* w, byte* xq, float* xd, int nb, Path path = Path.Auto)
    {
        if (path == Path.Auto) path = Best;
        return path switch
        {
            // the statics are read here, not in the loops' methods: a static read there made the JIT keep the
            // accumulator on the stack, around the class-initialization check's possible call
            Path.AvxVnni => DotVnni(w, xq, xd, nb, HalfTable, Gemv.PrefetchDistanceQ8),
            Path.Avx2 => DotAvx2(w, xq, xd, nb, HalfTable, Gemv.PrefetchDistanceQ8),
            Path.ArmDot => DotArm(w, xq, xd, nb),
            Path.V128 => DotV128(w, xq, xd, nb),
            _ => DotScalar(w, xq, xd, nb),
        };
    }

    /// <summary>The path <see cref="Path.Auto"/> takes on this CPU.</summary>
    public static Path Best { get; } = AvxVnni.IsSupported ? Path.AvxVnni : Avx2.IsSupported ? Path.Avx2
        : Dp.IsSupported ? Path.ArmDot : Vector128.IsHardwareAccelerated ? Path.V128 : Path.Scalar;

    /// <summary>Whether this CPU can run <paramref name="path"/> (tests run every one it can).</summary>
    public static bool IsSupported(Path path) => path switch
    {
        Path.AvxVnni => AvxVnni.IsSupported,
        Path.Avx2 => Avx2.IsSupported,
        Path.ArmDot => Dp.IsSupported,
        Path.V128 => Vector128.IsHardwareAccelerated,
        _ => true,
    };

    /// <summary>
    /// fp16 bits → float32 for every half (256 KiB, ggml's <c>ggml_table_f32_f16</c>): a weight block's scale is one
    /// broadcast load from here instead of a conversion. Only the few exponents real scales use stay in cache.
    /// </summary>
    private static readonly float* HalfTable = BuildHalfTable();

    private static float* BuildHalfTable()
    {
        var t = (float*)NativeMemory.AlignedAlloc(65536 * sizeof(float), 64); // lives as long as the process
        for (int h = 0; h < 65536; h++) t[h] = Fp16.FromBits((ushort)h);
        return t;
    }

    /// <summary>The table's widening of <paramref name="h"/> (tests compare it with <see cref="Fp16.FromBits"/>).</summary>
    public static float TableHalf(ushort h) => HalfTable[h];

    /// <summary>
    /// Four fp16 bit patterns (in the low 16 bits of each lane) → float32, <see cref="Half"/> without its branch: the value bits scaled by 2^112
    /// (exact for zero, subnormals, normals); an all-ones exponent lands on 2^16·1.m, and setting every exponent bit
    /// turns it into inf/NaN with the same mantissa; then the sign.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Halves(Vector128<int> h)
    {
        var v = (Vector128.ShiftLeft(h & Vector128.Create(0x7FFF), 13).AsSingle() * Vector128.Create(5.192296858534828e33f)).AsInt32();
        var special = Vector128.Equals(h & Vector128.Create(0x7C00), Vector128.Create(0x7C00)) & Vector128.Create(0x7F800000);
        return (v | special | Vector128.ShiftLeft(h & Vector128.Create(0x8000), 16)).AsSingle();
    }

    /// <summary>
    /// The 8 lane sums of one block pair as floats, from |x| (unsigned) and w·sign(x): maddubs + madd, or one VNNI
    /// dpbusd — the same integers as ggml's |w|·sign(x, w), pair by pair (no int16 saturation: |q| ≤ 127). Taking the
    /// sign onto w leaves one sign per row, |x| being shared by the rows; it needs x ≠ -128, which activation
    /// quantization never writes (|q| ≤ 127). A weight byte of -128 (which ggml's quantizer never writes either) times a
    /// negative x would come out negated, the sign wrapping; ggml and the scalar reference compute it exactly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Sums(Vector256<byte> ax, Vector256<sbyte> wsx, bool vnni)
    {
        var sums = vnni ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ax, wsx)
            : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ax, wsx), Vector256.Create((short)1));
        return Avx.ConvertToVector256Single(sums);
    }

    private static float DotScalar(byte* w, byte* xq, float* xd, int nb)
    {
        float* acc = stackalloc float[8];
        for (int i = 0; i < 8; i++) acc[i] = 0;
        for (int b = 0; b < nb; b++, w += Q8_0.BlockBytes, xq += Q8_0.BlockBytes)
        {
            float d = Half(*(ushort*)w) * xd[b];
            sbyte* qw = (sbyte*)(w + 2), qx = (sbyte*)(xq + 2);
            for (int lane = 0; lane < 8; lane++)
            {
                int s = 0;
                for (int t = 4 * lane; t < 4 * lane + 4; t++) s += qw[t] * qx[t];
                acc[lane] = MathF.FusedMultiplyAdd(d, s, acc[lane]);
            }
        }
        return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    }

    /// <summary>ggml's hsum_float_8: (l0+l4, l1+l5, l2+l6, l3+l7) → (t0+t2, t1+t3) → sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Hsum(Vector128<float> lo, Vector128<float> hi)
    {
        var t = lo + hi;
        return (t.GetElement(0) + t.GetElement(2)) + (t.GetElement(1) + t.GetElement(3));
    }

    /// <summary>
    /// Portable: each int32 lane holds 4 consecutive bytes; shifting each byte to the top and back (arithmetic)
    /// sign-extends it, so lane i's 4 products add up exactly as ggml's lane i.
    /// </summary>
    private static float DotV128(byte* w, byte* xq, float* xd, int nb)
    {
        Vector128<float> lo = default, hi = default;
        for (int b = 0; b < nb; b++, w += Q8_0.BlockBytes, xq += Q8_0.BlockBytes)
        {
            var d = Vector128.Create(Half(*(ushort*)w) * xd[b]);
            lo = Vector128.FusedMultiplyAdd(d, Vector128.ConvertToSingle(Lanes(Vector128.Load((int*)(w + 2)), Vector128.Load((int*)(xq + 2)))), lo);
            hi = Vector128.FusedMultiplyAdd(d, Vector128.ConvertToSingle(Lanes(Vector128.Load((int*)(w + 18)), Vector128.Load((int*)(xq + 18)))), hi);
        }
        return Hsum(lo, hi);
    }

    /// <summary>
    /// ARM64 with the dot-product extension (FEAT_DotProd: Neoverse, Graviton 2+, Ampere Altra, Apple M1+): one SDOT
    /// (ggml's <c>vdotq_s32</c>) gives 4 lanes, lane i the sum of the products of bytes 4i..4i+3 — ggml's lanes
    /// exactly, as the portable <see cref="DotV128"/> builds them with 16 shifts and 4 multiplies.
    /// </summary>
    private static float DotArm(byte* w, byte* xq, float* xd, int nb)
    {
        Vector128<float> lo = default, hi = default;
        for (int b = 0; b < nb; b++, w += Q8_0.BlockBytes, xq += Q8_0.BlockBytes)
            AccumulateBlockArm(w, xd[b], Vector128.Load((sbyte*)(xq + 2)), Vector128.Load((sbyte*)(xq + 18)), ref lo, ref hi);
        return Hsum(lo, hi);
    }

    /// <summary>lo/hi += (d_w·d_x) · the lanes of one weight block (at <paramref name="wb"/>: its scale, then 32 bytes) against x's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateBlockArm(byte* wb, float dx, Vector128<sbyte> xlo, Vector128<sbyte> xhi, ref Vector128<float> lo, ref Vector128<float> hi)
    {
        var d = Vector128.Create(HalfTable[*(ushort*)wb] * dx);
        lo = Vector128.FusedMultiplyAdd(d, BlockLanes(wb + 2, xlo), lo);
        hi = Vector128.FusedMultiplyAdd(d, BlockLanes(wb + 18, xhi), hi);
    }

    /// <summary>The 4 lane sums of 16 weight bytes at <paramref name="qw"/> against 16 bytes of x, as floats (one SDOT).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> BlockLanes(byte* qw, Vector128<sbyte> qx) =>
        Vector128.ConvertToSingle(Dp.DotProduct(Vector128<int>.Zero, Vector128.Load((sbyte*)qw), qx));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Lanes(Vector128<int> a, Vector128<int> b) =>
        ((a << 24) >> 24) * ((b << 24) >> 24) + ((a << 16) >> 24) * ((b << 16) >> 24)
        + ((a << 8) >> 24) * ((b << 8) >> 24) + (a >> 24) * (b >> 24);

    /// <summary>One row · x on AVX2 (ggml's mul_sum_i8_pairs_float with the sign taken onto w): one FMA chain over the blocks, prefetching the row <see cref="Gemv.PrefetchDistanceQ8"/> ahead.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float DotAvx2(byte* w, byte* xq, float* xd, int nb, float* table, int ahead) => DotWide(w, xq, xd, nb, table, ahead, vnni: false);

    /// <summary>The AVX2 form with the byte dot in one VNNI instruction (ggml's <c>_mm256_dpbusd_epi32</c> variant): the same integers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float DotVnni(byte* w, byte* xq, float* xd, int nb, float* table, int ahead) => DotWide(w, xq, xd, nb, table, ahead, vnni: true);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float DotWide(byte* w, byte* xq, float* xd, int nb, float* table, int ahead, bool vnni)
    {
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++, w += Q8_0.BlockBytes, xq += Q8_0.BlockBytes)
        {
            Sse.Prefetch0(w + ahead); // AVX2 implies SSE; every block, as the decode GEMV reads the row once
            var qx = Avx.LoadVector256((sbyte*)(xq + 2));
            var d = Avx.BroadcastScalarToVector256(table + *(ushort*)w) * Vector256.Create(xd[b]);
            acc = Fma.MultiplyAdd(d, Sums(Avx2.Abs(qx), Avx2.Sign(Avx.LoadVector256((sbyte*)(w + 2)), qx), vnni), acc);
        }
        return Hsum(acc.GetLower(), acc.GetUpper());
    }
}
