using System.Runtime.InteropServices;

namespace Mistral.Merge.Tests;

/// <summary>A fact that needs Linux (FIFOs, /proc, flock, renameat2, statx); skipped with the reason elsewhere.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute() { if (!OperatingSystem.IsLinux()) Skip = "needs Linux (/proc, flock, renameat2, mkfifo, /dev/zero)"; }
}

/// <summary>A fact that needs x86-64 Linux (the SIGBUS handler is x86-64 machine code); skipped with the reason elsewhere.</summary>
public sealed class LinuxX64FactAttribute : FactAttribute
{
    public LinuxX64FactAttribute()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) Skip = "needs x86-64 Linux (the SIGBUS handler is written for it)";
    }
}

/// <summary>A fact that needs AVX2 (kernels written for it, their AVX-512 forms checked too where the CPU has it); skipped with the reason elsewhere.</summary>
public sealed class Avx2FactAttribute : FactAttribute
{
    public Avx2FactAttribute() { if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) Skip = "needs AVX2 (elsewhere the fp16 GEMV widens through .NET, covered by the GEMV tests)"; }
}

/// <summary><see cref="Avx2FactAttribute"/> for a theory.</summary>
public sealed class Avx2TheoryAttribute : TheoryAttribute
{
    public Avx2TheoryAttribute() { if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) Skip = "needs AVX2 (elsewhere the fp16 GEMV widens through .NET, covered by the GEMV tests)"; }
}
