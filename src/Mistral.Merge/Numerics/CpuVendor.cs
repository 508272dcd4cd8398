using System.Runtime.Intrinsics.X86;

namespace Mistral.Merge.Numerics;

/// <summary>
/// The x86 CPU's vendor from CPUID leaf 0 ("AuthenticAMD", "GenuineIntel", ...), for the few tuning constants
/// measured to differ between vendors (the decode GEMV's prefetch leads, <see cref="Gemv.PrefetchDistance"/>).
/// Empty on other architectures. Only speed depends on it, never a result.
/// </summary>
public static class CpuVendor
{
    /// <summary>The 12-character vendor string, or "" where CPUID is not available.</summary>
    public static string Id { get; } = Read();

    /// <summary>AMD, or Hygon (licensed Zen cores).</summary>
    public static bool IsAmd => Id is "AuthenticAMD" or "HygonGenuine";

    private static unsafe string Read()
    {
        if (!X86Base.IsSupported) return "";
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        int* regs = stackalloc int[] { ebx, edx, ecx }; // the string's order
        return new string((sbyte*)regs, 0, 12);
    }
}
