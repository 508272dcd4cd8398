using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Mistral.Merge.Core;

/// <summary>Bulk, exact conversions between the float storage types and float32 (SIMD).</summary>
public static class Conversions
{
    /// <summary>bf16 → float32: a 16-bit shift, exact.</summary>
    public static void BFloat16ToSingle(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short");
        int i = 0;
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref uint d = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(dst));
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= src.Length - 32; i += 32)
            {
                var v = Vector512.LoadUnsafe(ref s, (nuint)i);
                var (lo, hi) = Vector512.Widen(v);
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 16));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= src.Length - 16; i += 16)
            {
                var v = Vector256.LoadUnsafe(ref s, (nuint)i);
                var (lo, hi) = Vector256.Widen(v);
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 8));
            }
        }
        for (; i < src.Length; i++) Unsafe.Add(ref d, i) = (uint)Unsafe.Add(ref s, i) << 16;
    }

    /// <summary>float32 → bf16 with round-to-nearest-even; NaN → 0x7FC0 (bit-exact with torch).</summary>
    public static void SingleToBFloat16(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short");
        int i = 0;
        ref uint s = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(src));
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        if (Vector512.IsHardwareAccelerated)
        {
            var bias = Vector512.Create(0x7FFFu);
            var one = Vector512.Create(1u);
            var absMask = Vector512.Create(0x7FFF_FFFFu);
            var inf = Vector512.Create(0x7F80_0000u);
            var nan = Vector512.Create(0x7FC0u);
            for (; i <= src.Length - 32; i += 32)
            {
                var a = Vector512.LoadUnsafe(ref s, (nuint)i);
                var b = Vector512.LoadUnsafe(ref s, (nuint)(i + 16));
                var ra = Round512(a, bias, one, absMask, inf, nan);
                var rb = Round512(b, bias, one, absMask, inf, nan);
                Vector512.Narrow(ra, rb).StoreUnsafe(ref d, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var bias = Vector256.Create(0x7FFFu);
            var one = Vector256.Create(1u);
            var absMask = Vector256.Create(0x7FFF_FFFFu);
            var inf = Vector256.Create(0x7F80_0000u);
            var nan = Vector256.Create(0x7FC0u);
            for (; i <= src.Length - 16; i += 16)
            {
                var a = Vector256.LoadUnsafe(ref s, (nuint)i);
                var b = Vector256.LoadUnsafe(ref s, (nuint)(i + 8));
                var ra = Round256(a, bias, one, absMask, inf, nan);
                var rb = Round256(b, bias, one, absMask, inf, nan);
                Vector256.Narrow(ra, rb).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < src.Length; i++)
            Unsafe.Add(ref d, i) = BFloat16.RoundToBits(BitConverter.UInt32BitsToSingle(Unsafe.Add(ref s, i)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Round512(Vector512<uint> u, Vector512<uint> bias, Vector512<uint> one,
        Vector512<uint> absMask, Vector512<uint> inf, Vector512<uint> nan)
    {
        var rounded = (u + bias + ((u >> 16) & one)) >> 16;
        var isNaN = Vector512.GreaterThan(u & absMask, inf);
        return Vector512.ConditionalSelect(isNaN, nan, rounded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Round256(Vector256<uint> u, Vector256<uint> bias, Vector256<uint> one,
        Vector256<uint> absMask, Vector256<uint> inf, Vector256<uint> nan)
    {
        var rounded = (u + bias + ((u >> 16) & one)) >> 16;
        var isNaN = Vector256.GreaterThan(u & absMask, inf);
        return Vector256.ConditionalSelect(isNaN, nan, rounded);
    }

    /// <summary>Widens <paramref name="src"/> bytes of type <paramref name="type"/> (F32/F16/BF16/F64) to float32.</summary>
    public static void ToSingle(ReadOnlySpan<byte> src, DType type, Span<float> dst)
    {
        switch (type)
        {
            case DType.F32: MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); break;
            case DType.BF16: BFloat16ToSingle(MemoryMarshal.Cast<byte, ushort>(src), dst); break;
            case DType.F16: TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src), dst); break;
            case DType.F64:
                {
                    var d = MemoryMarshal.Cast<byte, double>(src);
                    for (int i = 0; i < d.Length; i++) dst[i] = (float)d[i];
                    break;
                }
            default: throw new MergeException($"dtype {type} has no float math (only F32, F16, BF16 and F64 can be read as float)");
        }
    }

    /// <summary>Rounds float32 values once to <paramref name="type"/> (F32/F16/BF16), writing raw little-endian bytes.</summary>
    public static void FromSingle(ReadOnlySpan<float> src, DType type, Span<byte> dst)
    {
        switch (type)
        {
            case DType.F32: MemoryMarshal.AsBytes(src).CopyTo(dst); break;
            case DType.BF16: SingleToBFloat16(src, MemoryMarshal.Cast<byte, ushort>(dst)); break;
            case DType.F16: TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<byte, Half>(dst)); break;
            default: throw new MergeException($"cannot write float data as dtype {type} (only F32, F16 and BF16)");
        }
    }
}
