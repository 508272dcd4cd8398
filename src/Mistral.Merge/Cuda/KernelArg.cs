namespace Mistral.Merge.Cuda;

/// <summary>
/// One kernel argument as its raw bits (a device pointer, int, long long or float). cuLaunchKernel takes an
/// array of pointers to the argument values; each value lives in an 8-byte little-endian slot, so a pointer to
/// the slot is also a valid pointer to a 4-byte int/float.
/// </summary>
public readonly struct KernelArg
{
    public ulong Bits { get; }
    private KernelArg(ulong bits) => Bits = bits;

    public static implicit operator KernelArg(ulong devicePtr) => new(devicePtr);
    public static implicit operator KernelArg(long v) => new(unchecked((ulong)v));
    public static implicit operator KernelArg(int v) => new(unchecked((uint)v));
    public static implicit operator KernelArg(float v) => new(BitConverter.SingleToUInt32Bits(v));
    public static KernelArg Ptr(DeviceBuffer b, long offset = 0) => new(b.At(offset));
}

/// <summary>Grid or block dimensions.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public static implicit operator Dim3(int x) => new((uint)x);
}
