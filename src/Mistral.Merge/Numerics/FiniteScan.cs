using System.Numerics;
using System.Runtime.InteropServices;

namespace Mistral.Merge.Numerics;

/// <summary>NaN / ±Inf / all-zero counts of one tensor (or a part of it).</summary>
public readonly record struct ValueCounts(long NaN, long PosInf, long NegInf, bool AllZero)
{
    public bool AnyNonFinite => NaN + PosInf + NegInf > 0;
    public ValueCounts Add(ValueCounts o) => new(NaN + o.NaN, PosInf + o.PosInf, NegInf + o.NegInf, AllZero && o.AllZero);
}

/// <summary>
/// Vectorized finiteness scans. Each works on the raw bits: the largest magnitude with the sign bit
/// cleared is one unsigned max per vector, and it answers "any NaN/Inf?" (≥ the Inf pattern), "any
/// NaN?" (&gt; it) and "all zero?" (= 0) at once, without converting stored values to float32.
/// </summary>
public static class FiniteScan
{
    /// <summary>Bits of +Inf in float32.</summary>
    public const uint InfBits = 0x7F80_0000;

    /// <summary>The largest |x| of float32 data as raw bits (sign cleared).</summary>
    public static uint MaxAbsBits(ReadOnlySpan<float> x) => MaxAbs(MemoryMarshal.Cast<float, uint>(x), 0x7FFF_FFFFu);

    public static bool AllFinite(ReadOnlySpan<float> x) => MaxAbsBits(x) < InfBits;

    /// <summary>
    /// The smallest float32 magnitude (as bits) that rounds to Inf in <paramref name="type"/>
    /// (round to nearest even): 65520 for f16, the midpoint above bf16's largest finite value for bf16.
    /// </summary>
    public static uint OverflowBits(DType type) => type switch
    {
        DType.F16 => 0x477F_F000,
        DType.BF16 => 0x7F7F_8000,
        _ => InfBits,
    };

    /// <summary>Whether stored values of a float dtype are all finite (other dtypes are always finite).</summary>
    public static bool AllFinite(ReadOnlySpan<byte> data, DType type)
    {
        if (!HasFloatBits(type)) return true;
        var (max, inf, _) = MaxAbsRaw(data, type);
        return max < inf;
    }

    /// <summary>Counts NaN, +Inf and −Inf of stored values and says whether all are zero (±0).</summary>
    public static ValueCounts Count(ReadOnlySpan<byte> data, DType type)
    {
        if (!HasFloatBits(type)) return new(0, 0, 0, !data.ContainsAnyExcept((byte)0));
        var (max, inf, bits) = MaxAbsRaw(data, type);
        if (max < inf) return new(0, 0, 0, max == 0);
        // Rare: only a chunk that holds a NaN or Inf is counted element by element.
        long nan = 0, pos = 0, neg = 0;
        int size = bits / 8;
        ulong sign = 1UL << (bits - 1), abs = sign - 1;
        for (int i = 0; i < data.Length; i += size)
        {
            ulong u = size switch
            {
                2 => MemoryMarshal.Read<ushort>(data[i..]),
                4 => MemoryMarshal.Read<uint>(data[i..]),
                _ => MemoryMarshal.Read<ulong>(data[i..]),
            };
            ulong a = u & abs;
            if (a > inf) nan++;
            else if (a == inf) { if ((u & sign) != 0) neg++; else pos++; }
        }
        return new(nan, pos, neg, false);
    }

    public static bool HasFloatBits(DType type) => type is DType.F32 or DType.F16 or DType.BF16 or DType.F64;

    private static (ulong Max, ulong Inf, int Bits) MaxAbsRaw(ReadOnlySpan<byte> data, DType type) => type switch
    {
        DType.F32 => (MaxAbs(MemoryMarshal.Cast<byte, uint>(data), 0x7FFF_FFFFu), InfBits, 32),
        DType.BF16 => (MaxAbs(MemoryMarshal.Cast<byte, ushort>(data), (ushort)0x7FFF), 0x7F80, 16),
        DType.F16 => (MaxAbs(MemoryMarshal.Cast<byte, ushort>(data), (ushort)0x7FFF), 0x7C00, 16),
        DType.F64 => (MaxAbs(MemoryMarshal.Cast<byte, ulong>(data), 0x7FFF_FFFF_FFFF_FFFFUL), 0x7FF0_0000_0000_0000UL, 64),
        _ => throw new ArgumentException($"dtype {type} has no float bits"),
    };

    private static T MaxAbs<T>(ReadOnlySpan<T> u, T absMask) where T : unmanaged, IBinaryInteger<T>, IUnsignedNumber<T>
    {
        int i = 0;
        T max = T.Zero;
        if (Vector.IsHardwareAccelerated && u.Length >= Vector<T>.Count)
        {
            var vectors = MemoryMarshal.Cast<T, Vector<T>>(u);
            var mask = new Vector<T>(absMask);
            var acc = Vector<T>.Zero;
            foreach (var v in vectors) acc = Vector.Max(acc, v & mask);
            for (int k = 0; k < Vector<T>.Count; k++) max = T.Max(max, acc[k]);
            i = vectors.Length * Vector<T>.Count;
        }
        for (; i < u.Length; i++) max = T.Max(max, u[i] & absMask);
        return max;
    }
}
