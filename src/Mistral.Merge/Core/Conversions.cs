using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Mistral.Merge.Core;

/// <summary>Bulk, exact conversions between the float storage types and float32 (SIMD).</summary>
public static class Conversions
{
    /// <summary>bf16 → float32: a 16-bit shift, exact.</summary>
    public static void BFloat16ToSingle(ReadOnlySpan<ushort> src, Span<float> dst) => BFloat16ToSingle(src, dst, 0);

    internal static void BFloat16ToSingle(ReadOnlySpan<ushort> src, Span<float> dst, SimdWidth width)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short");
        Simd.Widen(src, MemoryMarshal.Cast<float, uint>(dst), default(ShiftUp16), width);
    }

    /// <summary>float32 → bf16 with round-to-nearest-even; NaN → 0x7FC0 (bit-exact with torch and <see cref="BFloat16.RoundToBits"/>).</summary>
    public static void SingleToBFloat16(ReadOnlySpan<float> src, Span<ushort> dst) => SingleToBFloat16(src, dst, 0);

    internal static void SingleToBFloat16(ReadOnlySpan<float> src, Span<ushort> dst, SimdWidth width)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short");
        Simd.Narrow(MemoryMarshal.Cast<float, uint>(src), dst, default(RoundToBFloat16), width);
    }

    /// <summary>bf16 bits → float32 bits.</summary>
    private readonly struct ShiftUp16 : IUInt32Op
    {
        public uint Invoke(uint x) => x << 16;
        public Vector128<uint> Invoke(Vector128<uint> x) => x << 16;
        public Vector256<uint> Invoke(Vector256<uint> x) => x << 16;
        public Vector512<uint> Invoke(Vector512<uint> x) => x << 16;
    }

    /// <summary>
    /// float32 bits → bf16 bits in the low half: adding 0x7FFF plus the lowest kept bit rounds half-way cases to
    /// the even neighbour; NaN (magnitude above the infinity pattern) → the canonical quiet NaN 0x7FC0.
    /// </summary>
    private readonly struct RoundToBFloat16 : IUInt32Op
    {
        public uint Invoke(uint u) => (u & 0x7FFF_FFFFu) > 0x7F80_0000u ? 0x7FC0u : (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
        public Vector128<uint> Invoke(Vector128<uint> u) =>
            Vector128.ConditionalSelect(Vector128.GreaterThan(u & Vector128.Create(0x7FFF_FFFFu), Vector128.Create(0x7F80_0000u)),
                Vector128.Create(0x7FC0u), (u + Vector128.Create(0x7FFFu) + ((u >> 16) & Vector128<uint>.One)) >> 16);
        public Vector256<uint> Invoke(Vector256<uint> u) =>
            Vector256.ConditionalSelect(Vector256.GreaterThan(u & Vector256.Create(0x7FFF_FFFFu), Vector256.Create(0x7F80_0000u)),
                Vector256.Create(0x7FC0u), (u + Vector256.Create(0x7FFFu) + ((u >> 16) & Vector256<uint>.One)) >> 16);
        public Vector512<uint> Invoke(Vector512<uint> u) =>
            Vector512.ConditionalSelect(Vector512.GreaterThan(u & Vector512.Create(0x7FFF_FFFFu), Vector512.Create(0x7F80_0000u)),
                Vector512.Create(0x7FC0u), (u + Vector512.Create(0x7FFFu) + ((u >> 16) & Vector512<uint>.One)) >> 16);
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
