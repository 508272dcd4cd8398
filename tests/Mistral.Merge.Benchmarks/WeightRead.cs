using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// The read baseline of the decode figures: a vectorized sum over a matrix's bytes, dealt out on a worker pool in
/// the jobs the GEMV deals its rows in (<see cref="Gemv.Schedule"/>), each job one sequential stream. (A former
/// baseline split each matrix into one half per thread under Parallel.For; it read 5–10 % slower than 64-row jobs
/// on the same bytes, so the GEMV appeared to stream above 100 % of it.) With <c>prefetch</c>, each step also prefetches the line
/// <see cref="PrefetchDistance"/> bytes ahead (x86): on a 2-core Xeon that read 10–15 % faster than the plain loop,
/// which is why the GEMV prefetches; the baselines take the faster of the two.
/// </summary>
internal sealed unsafe class WeightRead(WorkerPool pool) : IParallelWork
{
    private const int PrefetchDistance = 2048; // one stream per job: 1536–3072 read fastest on the Xeon (Gemv.PrefetchDistance: 2048 there, 4096 on AMD)
    private WeightMatrix _m;
    private bool _prefetch;
    private int[] _matrix = [], _from = [], _to = [];
    private static Vector256<uint> _sink;

    /// <summary>Reads every byte of <paramref name="m"/> once, prefetching ahead where asked and the CPU is x86.</summary>
    public void Read(WeightMatrix m, bool prefetch)
    {
        _m = m;
        _prefetch = prefetch && Sse.IsSupported;
        pool.Run(this, Gemv.Schedule([m.Rows], pool.Threads, ref _matrix, ref _from, ref _to));
    }

    public void Execute(int job, int worker)
    {
        long rowBytes = _m.RowBytes;
        byte* p = _m.Data + _from[job] * rowBytes;
        byte* end = _m.Data + _to[job] * rowBytes;
        Vector256<uint> a = default, b = default;
        bool prefetch = _prefetch; // a predictable branch per 64 bytes: nothing beside the memory stream
        for (; p + 64 <= end; p += 64)
        {
            if (prefetch) Sse.Prefetch0(p + PrefetchDistance);
            a += Vector256.Load((uint*)p); b += Vector256.Load((uint*)(p + 32));
        }
        if ((a + b) == Vector256.Create(0xDEADBEEFu)) _sink += a; // keeps the loads
    }
}
