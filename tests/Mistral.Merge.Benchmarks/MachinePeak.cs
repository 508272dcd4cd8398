using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// The machine's float32 FMA peak, measured: every thread runs 12 independent FMA chains at the GEMM's vector
/// width (<see cref="PackedGemmKernel.NativeBits"/>; 12 chains cover the 4-cycle latency of 2–3 FMA pipes, so the
/// loop is throughput-bound, not latency-bound), the threads start together and the time runs from the first thread's
/// start to the last one's end, each read by the workers themselves; best of 10 after about 0.2 s of warm-up.
/// (A stopwatch in the calling thread read wrong both ways on a 2-core machine: the caller, a third thread, could be
/// scheduled only after a worker had run — 388 against 313–327 GFLOP/s — and right after start-up the runtime's
/// background compilation shared the cores — 84 against 147–172.)
/// </summary>
public static class MachinePeak
{
    /// <summary>
    /// The vector instruction set the GEMM uses on this machine (its width: <see cref="PackedGemmKernel.NativeBits"/>),
    /// and the byte dot extension the q8_0 dot uses where the CPU has one (AVX-VNNI, ARM's DotProd: <see cref="Q8Dot.Best"/>).
    /// </summary>
    public static string InstructionSet =>
        PackedGemmKernel.NativeBits == 512 ? (Vector512.IsHardwareAccelerated ? "AVX-512F" : "AVX-512F, not .NET's preferred width")
        : Avx2.IsSupported && Fma.IsSupported ? (AvxVnni.IsSupported ? "AVX2+FMA+AVX-VNNI" : "AVX2+FMA")
        : AdvSimd.IsSupported ? (Dp.IsSupported ? "AdvSimd+DotProd" : "AdvSimd")
        : Vector128.IsHardwareAccelerated ? "SSE (no FMA)" : "scalar";

    private static int Lanes => PackedGemmKernel.NativeBits == 512 ? 16 : Vector256.IsHardwareAccelerated ? 8 : 4;

    /// <summary>GFLOP/s (2 per lane per FMA) of <paramref name="threads"/> threads running FMA chains at once.</summary>
    public static double FmaGflops(int threads)
    {
        const long iters = 10_000_000;
        for (int i = 0; i < 8; i++) RunOnce(iters, threads); // JIT, and let start-up's background work finish
        double best = 0;
        for (int rep = 0; rep < 10; rep++)
            best = Math.Max(best, threads * iters * 12.0 * Lanes * 2 / RunOnce(iters, threads) / 1e9);
        return best;
    }

    /// <summary>Seconds from the first worker's start to the last worker's end.</summary>
    private static double RunOnce(long iters, int threads)
    {
        using var start = new Barrier(threads);
        var sink = new float[threads];
        var begin = new long[threads];
        var end = new long[threads];
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            begin[t] = Stopwatch.GetTimestamp();
            sink[t] = Loop(iters);
            end[t] = Stopwatch.GetTimestamp();
        })).ToArray();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        return (double)(end.Max() - begin.Min()) / Stopwatch.Frequency;
    }

    private static float Loop(long iters) =>
        PackedGemmKernel.NativeBits == 512 ? Loop512(iters) : Vector256.IsHardwareAccelerated ? Loop256(iters) : Loop128(iters);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Loop512(long iters)
    {
        var a0 = Vector512.Create(1f); var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0;
        var a6 = a0; var a7 = a0; var a8 = a0; var a9 = a0; var a10 = a0; var a11 = a0;
        var m = Vector512.Create(0.999999f); var b = Vector512.Create(1e-7f);
        for (long i = 0; i < iters; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, b); a1 = Vector512.FusedMultiplyAdd(a1, m, b); a2 = Vector512.FusedMultiplyAdd(a2, m, b);
            a3 = Vector512.FusedMultiplyAdd(a3, m, b); a4 = Vector512.FusedMultiplyAdd(a4, m, b); a5 = Vector512.FusedMultiplyAdd(a5, m, b);
            a6 = Vector512.FusedMultiplyAdd(a6, m, b); a7 = Vector512.FusedMultiplyAdd(a7, m, b); a8 = Vector512.FusedMultiplyAdd(a8, m, b);
            a9 = Vector512.FusedMultiplyAdd(a9, m, b); a10 = Vector512.FusedMultiplyAdd(a10, m, b); a11 = Vector512.FusedMultiplyAdd(a11, m, b);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Loop256(long iters)
    {
        var a0 = Vector256.Create(1f); var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0;
        var a6 = a0; var a7 = a0; var a8 = a0; var a9 = a0; var a10 = a0; var a11 = a0;
        var m = Vector256.Create(0.999999f); var b = Vector256.Create(1e-7f);
        for (long i = 0; i < iters; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, m, b); a1 = Vector256.FusedMultiplyAdd(a1, m, b); a2 = Vector256.FusedMultiplyAdd(a2, m, b);
            a3 = Vector256.FusedMultiplyAdd(a3, m, b); a4 = Vector256.FusedMultiplyAdd(a4, m, b); a5 = Vector256.FusedMultiplyAdd(a5, m, b);
            a6 = Vector256.FusedMultiplyAdd(a6, m, b); a7 = Vector256.FusedMultiplyAdd(a7, m, b); a8 = Vector256.FusedMultiplyAdd(a8, m, b);
            a9 = Vector256.FusedMultiplyAdd(a9, m, b); a10 = Vector256.FusedMultiplyAdd(a10, m, b); a11 = Vector256.FusedMultiplyAdd(a11, m, b);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Loop128(long iters)
    {
        var a0 = Vector128.Create(1f); var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0;
        var a6 = a0; var a7 = a0; var a8 = a0; var a9 = a0; var a10 = a0; var a11 = a0;
        var m = Vector128.Create(0.999999f); var b = Vector128.Create(1e-7f);
        for (long i = 0; i < iters; i++)
        {
            a0 = Vector128.FusedMultiplyAdd(a0, m, b); a1 = Vector128.FusedMultiplyAdd(a1, m, b); a2 = Vector128.FusedMultiplyAdd(a2, m, b);
            a3 = Vector128.FusedMultiplyAdd(a3, m, b); a4 = Vector128.FusedMultiplyAdd(a4, m, b); a5 = Vector128.FusedMultiplyAdd(a5, m, b);
            a6 = Vector128.FusedMultiplyAdd(a6, m, b); a7 = Vector128.FusedMultiplyAdd(a7, m, b); a8 = Vector128.FusedMultiplyAdd(a8, m, b);
            a9 = Vector128.FusedMultiplyAdd(a9, m, b); a10 = Vector128.FusedMultiplyAdd(a10, m, b); a11 = Vector128.FusedMultiplyAdd(a11, m, b);
        }
        return Vector128.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}
