using System.Diagnostics;
using System.Runtime.InteropServices;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// The prefill GEMM alone (<see cref="Gemm"/>, bf16 weights) on the Mistral-7B projection shapes at 128 and 512
/// tokens, as GFLOP/s and as a fraction of <see cref="MachinePeak.FmaGflops"/> measured in the same run. The
/// weights are synthesized in memory (one shape at a time), so it needs no model on disk.
/// </summary>
public static unsafe class GemmBenchmark
{
    public static readonly (string Name, int N, int K)[] Shapes =
    [
        ("q_proj", 4096, 4096), ("k_proj", 1024, 4096), ("gate_proj", 14336, 4096), ("down_proj", 4096, 14336), ("lm_head", 32000, 4096),
    ];

    public static int Run(string[] args)
    {
        int threads = BenchmarkArgs.Int(args, "--threads", CpuTopology.PhysicalCoreCount);
        double peak = MachinePeak.FmaGflops(threads);
        Console.WriteLine($"{MachinePeak.InstructionSet}, {threads} threads: measured FMA peak {peak:0.0} GFLOP/s");
        Report(threads, peak, [128, 512]);
        return 0;
    }

    /// <summary>
    /// A second of small GEMMs before anything is timed, so that the tiered JIT has compiled the GEMM's
    /// packing and item loops at full optimization (the micro-kernels are compiled so from the start): without it the
    /// first shape (128 × q_proj) read 45–70 % of the peak in every run and 75 % once warm.
    /// </summary>
    private static void WarmUp(Gemm gemm, PackedInput packed)
    {
        const int m = 128, n = 1024, k = 1024;
        var w = (ushort*)NativeMemory.AlignedAlloc((nuint)n * k * 2, 64);
        try
        {
            new Span<ushort>(w, n * k).Fill(0x3C00);
            var x = new float[m * k];
            var y = new float[m * n];
            packed.Pack(x, m, k);
            var weight = new WeightMatrix((byte*)w, DType.BF16, n, k);
            var sw = Stopwatch.StartNew();
            fixed (float* py = y)
                while (sw.Elapsed.TotalSeconds < 1) gemm.Multiply(packed, weight, py, n);
        }
        finally { NativeMemory.AlignedFree(w); }
    }

    /// <summary>Prints one line per shape and token count: the best of 3 multiplications.</summary>
    public static void Report(int threads, double peak, int[] tokenCounts)
    {
        using var pool = new WorkerPool(threads);
        using var gemm = new Gemm(pool);
        using var packed = new PackedInput();
        var rng = new Random(2);
        WarmUp(gemm, packed);
        foreach (var (name, n, k) in Shapes)
        {
            long count = (long)n * k;
            var w = (ushort*)NativeMemory.AlignedAlloc((nuint)(count * 2), 64);
            try
            {
                var pattern = new ushort[65537]; // odd length: rows do not repeat in step
                for (int j = 0; j < pattern.Length; j++) pattern[j] = (ushort)(BitConverter.SingleToUInt32Bits((float)(rng.NextDouble() - 0.5)) >> 16);
                for (long j = 0; j < count; j++) w[j] = pattern[j % pattern.Length];
                var weight = new WeightMatrix((byte*)w, DType.BF16, n, k);
                foreach (int m in tokenCounts)
                {
                    var x = new float[(long)m * k];
                    for (int j = 0; j < x.Length; j++) x[j] = (float)rng.NextDouble() - 0.5f;
                    var y = new float[(long)m * n];
                    packed.Pack(x, m, k);
                    double best = double.MaxValue;
                    fixed (float* py = y)
                        for (int rep = 0; rep < 3; rep++)
                        {
                            var sw = Stopwatch.StartNew();
                            gemm.Multiply(packed, weight, py, n);
                            best = Math.Min(best, sw.Elapsed.TotalSeconds);
                        }
                    double g = 2.0 * m * n * k / best / 1e9;
                    Console.WriteLine($"[GEMM only] {m,3} × {name,-9} [{n,5}, {k,5}] bf16: {g,6:0.0} GFLOP/s ({g / peak * 100,3:0}% of the measured FMA peak)");
                }
            }
            finally { NativeMemory.AlignedFree(w); }
        }
    }
}
