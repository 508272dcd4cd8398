using System.Runtime.Intrinsics;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// The read baseline of the decode figures: a vectorized sum over a matrix's bytes, dealt out on a worker pool in
/// jobs of 64 rows as the GEMV deals its rows, each job one sequential stream. (The former baseline split each
/// matrix into one half per thread under Parallel.For; it read 5–10 % slower than this on the same bytes, so the
/// GEMV appeared to stream above 100 % of it.)
/// </summary>
internal sealed unsafe class WeightRead(WorkerPool pool) : IParallelWork
{
    private const int RowsPerJob = 64;
    private WeightMatrix _m;
    private static Vector256<uint> _sink;

    /// <summary>Reads every byte of <paramref name="m"/> once.</summary>
    public void Read(WeightMatrix m)
    {
        _m = m;
        pool.Run(this, (m.Rows + RowsPerJob - 1) / RowsPerJob);
    }

    public void Execute(int job, int worker)
    {
        long rowBytes = _m.RowBytes;
        byte* p = _m.Data + job * RowsPerJob * rowBytes;
        byte* end = _m.Data + Math.Min(_m.Rows, (job + 1) * RowsPerJob) * rowBytes;
        Vector256<uint> a = default, b = default;
        for (; p + 64 <= end; p += 64) { a += Vector256.Load((uint*)p); b += Vector256.Load((uint*)(p + 32)); }
        if ((a + b) == Vector256.Create(0xDEADBEEFu)) _sink += a; // keeps the loads
    }
}
