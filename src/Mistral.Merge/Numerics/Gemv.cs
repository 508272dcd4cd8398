using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Numerics;

/// <summary>
/// y[N] = W · x for a weight W [N, K] in its stored dtype: the decode projection, bound by how fast the weights
/// stream from memory. Per call, x is prepared once (bf16: split into even/odd halves per vector chunk, see
/// <see cref="SplitEvenOdd"/>; Q8_0: quantized to Q8_0 blocks, see <see cref="Q8Dot"/>), then the rows are dealt out
/// to the pool in jobs that shrink as the call proceeds (<see cref="Schedule"/>). bf16 rows are read two at a time
/// from the two halves of a job (two prefetched streams sharing x, <see cref="Dot2Bf16Split"/>), widened in
/// registers by a shift and a mask; q8_0 rows one after another, one prefetched stream
/// (<see cref="PrefetchDistance"/>); f16 rows widened exactly in registers on x86 (<see cref="F16Dot"/>: two rows
/// half a job apart at 512 bits, one at 256), elsewhere through a per-worker row buffer; f32 rows four side by side
/// sharing each load of x. Float accumulation in float32; nothing is allocated once the buffers have grown to the
/// widest matrix.
/// </summary>
public sealed unsafe class Gemv : IParallelWork, IDisposable
{
    private readonly WorkerPool _pool;
    private readonly float*[] _rowBuf;   // per worker: 4 widened f16 rows
    private readonly int[] _rowBufCapacity;
    private readonly SimdWidth _width = Simd.Widest;
    private float* _xs;                  // bf16: x split even/odd per chunk
    private byte* _xq;                   // Q8_0: x as Q8_0 blocks
    private float* _xd;                  // Q8_0: their scales as float32
    private int _xCapacity;
    private float* _x;
    // a group sharing x (Multiply with several matrices): each one's matrix, output and row count
    private readonly WeightMatrix[] _group = new WeightMatrix[MaxGroup];
    private readonly nint[] _groupY = new nint[MaxGroup];
    private readonly int[] _groupRows = new int[MaxGroup];
    private int _groupCount;
    // the call's jobs (Schedule): each one's matrix in the group and rows [from, to)
    private int[] _jobMatrix = new int[64], _jobFrom = new int[64], _jobTo = new int[64];
    private int _jobs;

    /// <summary>
    /// How far ahead of its loads the x86 decode dot of a bf16 row prefetches the row into L1, in bytes (q8_0:
    /// <see cref="PrefetchDistanceQ8"/>). Each row is one sequential stream (rows are read one after another, see
    /// <see cref="Run"/>). The best lead differs by vendor and by how busy the memory is: on a 2-core Intel Xeon a
    /// single stream read fastest 1536–3072 bytes ahead (10–15 % above no prefetch); on a 2-core AMD EPYC (Zen 5)
    /// the bf16 row read at 62 / 66–67 / 69 GB/s 2048 / 4096 / 8192 bytes ahead while the memory was quiet and at 48 /
    /// 46–47 / 43–45 while it was shared, so 4096 there. docs/performance.md has the runs. A prefetch never faults,
    /// so lines past a matrix's last row are harmless; ARM64 (no prefetch intrinsic in .NET) relies on its hardware
    /// prefetchers. Speed only: no bit depends on it.
    /// </summary>
    internal static readonly int PrefetchDistance = CpuVendor.IsAmd ? 4096 : 2048;

    /// <summary>
    /// <see cref="PrefetchDistance"/> for a q8_0 row (<see cref="Q8Dot.Dot"/>), whose dot spends more cycles per byte:
    /// on the Zen 5 EPYC 40 / 50 / 58 GB/s at 2048 / 4096 / 8192 bytes ahead (quiet) and 41 / 44 / 44.5 (shared), 29
    /// without; 2048 elsewhere, as for bf16.
    /// </summary>
    internal static readonly int PrefetchDistanceQ8 = CpuVendor.IsAmd ? 8192 : 2048;

    /// <summary>The most matrices one <see cref="Multiply(float*, ReadOnlySpan{WeightMatrix}, ReadOnlySpan{nint})"/> takes.</summary>
    public const int MaxGroup = 3;

    public Gemv(WorkerPool pool)
    {
        _pool = pool;
        _rowBuf = new float*[pool.Threads];
        _rowBufCapacity = new int[pool.Threads];
    }

    /// <summary>y[0..N) = W · x[0..K).</summary>
    public void Multiply(WeightMatrix w, float* x, float* y)
    {
        _group[0] = w; _groupY[0] = (nint)y; _groupRows[0] = w.Rows; _groupCount = 1;
        _jobs = Schedule(_groupRows.AsSpan(0, 1), _pool.Threads, ref _jobMatrix, ref _jobFrom, ref _jobTo);
        Prepare(w, x);
        Dispatch();
    }

    /// <summary>
    /// y_i = W_i · x for up to <see cref="MaxGroup"/> matrices of one width and storage that share x (q/k/v, gate/up):
    /// x is prepared once and all their rows go out in one pool run, so neither a second preparation nor a wait at
    /// the end of each matrix. Each y_i gets the bits <see cref="Multiply(WeightMatrix, float*, float*)"/> gives it.
    /// </summary>
    public void Multiply(float* x, ReadOnlySpan<WeightMatrix> ws, ReadOnlySpan<nint> ys)
    {
        if (ws.Length == 0 || ws.Length > MaxGroup || ys.Length != ws.Length) throw new ArgumentException($"a GEMV group has 1..{MaxGroup} matrices, one output each");
        for (int i = 1; i < ws.Length; i++)
            if (ws[i].Cols != ws[0].Cols || ws[i].Type != ws[0].Type || ws[i].Quant != ws[0].Quant)
            {
                for (int j = 0; j < ws.Length; j++) Multiply(ws[j], x, (float*)ys[j]);
                return;
            }
        _groupCount = ws.Length;
        for (int i = 0; i < ws.Length; i++) { _group[i] = ws[i]; _groupY[i] = ys[i]; _groupRows[i] = ws[i].Rows; }
        _jobs = Schedule(_groupRows.AsSpan(0, ws.Length), _pool.Threads, ref _jobMatrix, ref _jobFrom, ref _jobTo);
        Prepare(ws[0], x);
        Dispatch();
    }

    /// <summary>
    /// Deals the rows of a call's matrices (<paramref name="rows"/>: each one's row count, in order) into pool jobs
    /// that shrink as the call proceeds, OpenMP's "guided" schedule: each job takes 1/(2·threads) of the rows still
    /// left in the whole call, rounded down to a multiple of 16, but not fewer than <see cref="RowsPerJobFor"/> of
    /// them, and never past its matrix's end. So each thread starts on one long sequential stream (a quarter of
    /// gate_proj on 2 threads) and the call still ends in small jobs that keep every thread busy to the end. On a
    /// 2-core Zen 5 long streams read 4–7 % faster than 64-row jobs (docs/performance.md). Every job starts at a
    /// multiple of 16 rows from its matrix's start, so the f32/f16 four-row kernels see the same rows as before;
    /// each row is computed alone, so the schedule changes no bit. Writes job j as (matrix[j], from[j], to[j]),
    /// growing the arrays when needed, and returns the number of jobs.
    /// </summary>
    public static int Schedule(ReadOnlySpan<int> rows, int threads, ref int[] matrix, ref int[] from, ref int[] to)
    {
        long left = 0;
        foreach (int r in rows) left += r;
        int min = RowsPerJobFor(left, threads), jobs = 0;
        for (int m = 0; m < rows.Length; m++)
            for (int r = 0; r < rows[m];)
            {
                int take = (int)Math.Min(rows[m] - r, Math.Max(min, left / (2 * threads) & ~15L));
                if (jobs == matrix.Length)
                {
                    int size = Math.Max(16, 2 * jobs);
                    Array.Resize(ref matrix, size); Array.Resize(ref from, size); Array.Resize(ref to, size);
                }
                matrix[jobs] = m; from[jobs] = r; to[jobs] = r + take;
                jobs++;
                r += take; left -= take;
            }
        return jobs;
    }

    /// <summary>
    /// The smallest pool job for a call over <paramref name="rows"/> rows (<see cref="Schedule"/>): 64, halved (down
    /// to 16, a multiple of the 4-row kernels) while that gives fewer than 8 jobs per thread, so that on many cores a
    /// narrow matrix (o_proj's 4096 rows are 64 jobs of 64: two per thread on 32 cores) still keeps every thread busy
    /// to the end. Each row is computed alone, so the size changes no bit.
    /// </summary>
    public static int RowsPerJobFor(long rows, int threads)
    {
        int r = 64;
        while (r > 16 && rows / r < 8L * threads) r /= 2;
        return r;
    }

    /// <summary>Grows the buffers for <paramref name="w"/>'s storage and prepares x for it (split or quantized).</summary>
    private void Prepare(WeightMatrix w, float* x)
    {
        _x = x;
        if (w.Type == DType.F16)
            for (int i = 0; i < _pool.Threads; i++)
                if (_rowBufCapacity[i] < 4 * w.Cols)
                {
                    NativeMemory.AlignedFree(_rowBuf[i]);
                    _rowBuf[i] = (float*)NativeMemory.AlignedAlloc((nuint)(4 * w.Cols) * sizeof(float), 64);
                    _rowBufCapacity[i] = 4 * w.Cols;
                }
        if (w.Type == DType.BF16 || w.Quant == BlockQuant.Q8_0)
        {
            if (_xCapacity < w.Cols)
            {
                FreeX();
                int c = Math.Max(w.Cols, 64);
                _xs = (float*)NativeMemory.AlignedAlloc((nuint)c * sizeof(float), 64);
                _xq = (byte*)NativeMemory.AlignedAlloc((nuint)Q8_0.ByteCount(c + 31), 64);
                _xd = (float*)NativeMemory.AlignedAlloc((nuint)(c / Q8_0.BlockSize + 1) * sizeof(float), 64);
                _xCapacity = c;
            }
            if (w.Type == DType.BF16) SplitEvenOdd(x, w.Cols, _xs, _width);
            else Q8Dot.QuantizeActivation(x, w.Cols, _xq, _xd);
        }
    }

    private void Dispatch()
    {
        int jobs = _jobs;
        long size = 0;
        for (int i = 0; i < _groupCount; i++) size += (long)_group[i].Rows * _group[i].Cols;
        // Tiny matrices are not worth waking the workers for.
        if (size < 32768) for (int j = 0; j < jobs; j++) Execute(j, 0);
        else _pool.Run(this, jobs);
    }

    public void Multiply(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length < w.Cols || y.Length < w.Rows) throw new ArgumentException("GEMV vector too short");
        fixed (float* px = x) fixed (float* py = y) Multiply(w, px, py);
    }

    void IParallelWork.Execute(int index, int worker) => Execute(index, worker);

    private void Execute(int index, int worker)
    {
        int g = _jobMatrix[index];
        Run(_group[g], (float*)_groupY[g], _jobFrom[index], _jobTo[index], worker);
    }

    /// <summary>Rows [n0, n1) of y = W · x.</summary>
    private void Run(WeightMatrix w, float* y, int n0, int n1, int worker)
    {
        int K = w.Cols;
        int n = n0;
        if (w.Quant == BlockQuant.Q8_0)
        {
            // One row at a time, not four side by side sharing x: four interleaved streams read memory at 32 GB/s on
            // a Zen 5 EPYC where one stream reads at 57–59 (same bits: each row is its own chain either way).
            int nb = K / Q8_0.BlockSize;
            for (; n < n1; n++) y[n] = Q8Dot.Dot(w.At(n, 0), _xq, _xd, nb);
            return;
        }
        if (w.IsQuantized)
        {
            for (; n < n1; n++) y[n] = QuantizedDot.Row(w, n, _x);
            return;
        }
        switch (w.Type)
        {
            case DType.BF16:
                {
                    // Two rows at a time, half the job apart, sharing each load of x: two sequential streams (see
                    // Dot2Bf16Split). Not neighbouring rows: two streams that each skip every other row read down_proj
                    // at 0.72–0.80 of a plain read on the Zen 5 where rows half a job apart read at 0.90–0.96.
                    int half = (n1 - n0) / 2;
                    for (int i = 0; i < half; i++)
                        Dot2Bf16Split((ushort*)w.At(n0 + i, 0), (ushort*)w.At(n0 + half + i, 0), K, _xs, _x, _width, y + n0 + i, y + n0 + half + i);
                    if ((n1 - n0) % 2 != 0) y[n1 - 1] = Dot1Bf16Split((ushort*)w.At(n1 - 1, 0), K, _xs, _x, _width);
                    break;
                }
            case DType.F32:
                for (; n + 4 <= n1; n += 4)
                    Dot4F32((float*)w.At(n, 0), K, _x, y + n);
                for (; n < n1; n++) y[n] = Dot1F32((float*)w.At(n, 0), _x, K);
                break;
            default: // F16
                if (_width >= SimdWidth.V512 && Avx512F.IsSupported)
                {
                    // widened in registers (F16Dot), two rows half the job apart as for bf16
                    int half = (n1 - n0) / 2;
                    for (int i = 0; i < half; i++)
                    {
                        int m0 = n0 + i, m1 = n0 + half + i;
                        int special = F16Dot.Dot2x512((ushort*)w.At(m0, 0), (ushort*)w.At(m1, 0), K, _x, PrefetchDistance, y + m0, y + m1);
                        if ((special & 1) != 0) y[m0] = F16RowExact(w, m0, worker);
                        if ((special & 2) != 0) y[m1] = F16RowExact(w, m1, worker);
                    }
                    if ((n1 - n0) % 2 != 0) y[n1 - 1] = F16RowExact(w, n1 - 1, worker);
                    break;
                }
                if (_width >= SimdWidth.V256 && Avx2.IsSupported)
                {
                    for (; n < n1; n++)
                        if (!F16Dot.Dot1x256((ushort*)w.At(n, 0), K, _x, PrefetchDistance, y + n)) y[n] = F16RowExact(w, n, worker);
                    break;
                }
                // elsewhere: widen 4 rows, then the float32 kernel
                float* buf = _rowBuf[worker];
                for (; n < n1; n += 4)
                {
                    int rows = Math.Min(4, n1 - n);
                    TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(w.At(n, 0), rows * K), new Span<float>(buf, rows * K));
                    if (rows == 4) Dot4F32(buf, K, _x, y + n);
                    else for (int r = 0; r < rows; r++) y[n + r] = Dot1F32(buf + r * K, _x, K);
                }
                break;
        }
    }

    /// <summary>
    /// One f16 row · x the exact slow way (widened by .NET into the worker's row buffer, then the float32 dot): rows
    /// with an infinity or a NaN, which <see cref="F16Dot"/> leaves to here, and the odd row of a job.
    /// </summary>
    private float F16RowExact(WeightMatrix w, int n, int worker)
    {
        float* buf = _rowBuf[worker];
        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(w.At(n, 0), w.Cols), new Span<float>(buf, w.Cols));
        return Dot1F32(buf, _x, w.Cols);
    }

    /// <summary>Lanes per vector at <paramref name="width"/> (1 for scalar).</summary>
    private static int Lanes(SimdWidth width) => (int)width;

    /// <summary>
    /// x reordered per chunk of 2·lanes elements as [its even-indexed elements, its odd-indexed ones]: a bf16 pair
    /// loaded as one 32-bit lane widens to float32 by <c>v &lt;&lt; 16</c> (the even element) and
    /// <c>v &amp; 0xFFFF0000</c> (the odd one) — two instructions per 2·lanes weights, no cross-lane unpack —
    /// and each half then multiplies its own contiguous x. The tail past the last full chunk is left as is.
    /// </summary>
    internal static void SplitEvenOdd(float* x, int K, float* xs, SimdWidth width)
    {
        int lanes = Lanes(width), chunk = 2 * lanes, k = 0;
        if (width == SimdWidth.Scalar) { new ReadOnlySpan<float>(x, K).CopyTo(new Span<float>(xs, K)); return; }
        for (; k + chunk <= K; k += chunk)
            for (int i = 0; i < lanes; i++)
            {
                xs[k + i] = x[k + 2 * i];
                xs[k + lanes + i] = x[k + 2 * i + 1];
            }
        for (; k < K; k++) xs[k] = x[k];
    }

    /// <summary>One bf16 row · x with the split x built here (tests; the GEMV splits x once per call).</summary>
    internal static float Dot1Bf16(ushort* r, float* x, int K, SimdWidth width = 0)
    {
        if (width == 0) width = Simd.Widest;
        var xs = new float[K];
        fixed (float* pxs = xs)
        {
            SplitEvenOdd(x, K, pxs, width);
            return Dot1Bf16Split(r, K, pxs, x, width);
        }
    }

    /// <summary>
    /// One bf16 row · x with x split by <see cref="SplitEvenOdd"/> at the same width: 4 FMA chains (the even and odd
    /// elements of two consecutive chunks; a last odd chunk goes to the first pair), prefetching the row
    /// <see cref="PrefetchDistance"/> ahead on x86; the tail uses x itself. Four chains, not two, because each FMA
    /// waits for the one before it in its chain: with two, a core could not read more than two vectors of weights
    /// per FMA latency, whatever the memory delivers — on the Zen 5, GEMVs over a matrix held in L3 read 37 GB/s on
    /// one core at 256 bits with two chains and 66 with four (512 bits: 70 and 96), while its memory streams up to
    /// 35 GB/s per core; an AVX2 core at a lower clock sits right at that limit.
    /// </summary>
    internal static float Dot1Bf16Split(ushort* r, int K, float* xs, float* x, SimdWidth width)
    {
        // One method per width, the prefetch lead read here and passed in: a static read in the loop's method made
        // the JIT keep the loop's locals on the stack around the class-initialization check's possible call.
        if (width >= SimdWidth.V512) return Dot512(r, K, xs, x, PrefetchDistance);
        if (width >= SimdWidth.V256) return Dot256(r, K, xs, x, PrefetchDistance);
        if (width == SimdWidth.V128) return Dot128(r, K, xs, x);
        float s = 0;
        for (int k = 0; k < K; k++) s += Bf(r[k]) * x[k];
        return s;
    }

    /// <summary>
    /// Rows <paramref name="r0"/> and <paramref name="r1"/> · x (x split as for <see cref="Dot1Bf16Split"/>), each
    /// with exactly the chains <see cref="Dot1Bf16Split"/> runs, so each gets the same bits; on x86 the two rows
    /// share every load of x. Two rows far apart are two sequential streams: a core keeps more of the memory's
    /// reads in flight with two than with one, and a row of down_proj, whose x (14336 floats, 57 KB) does not fit a
    /// 48 KB L1, costs half the refills of x. On the Zen 5 EPYC: down_proj's GEMV read 7–9 % faster, the others 0–4 %;
    /// a whole decode token read at 0.86–0.89 of a plain read of its weights instead of 0.76–0.80 while the memory
    /// was quiet (8 of 8 alternated pairs), 0.95–0.97 instead of 0.88–0.93 at 256 bits while it was shared
    /// (docs/performance.md).
    /// </summary>
    internal static void Dot2Bf16Split(ushort* r0, ushort* r1, int K, float* xs, float* x, SimdWidth width, float* y0, float* y1)
    {
        if (width >= SimdWidth.V512) { Dot2x512(r0, r1, K, xs, x, PrefetchDistance, y0, y1); return; }
        if (width >= SimdWidth.V256) { Dot2x256(r0, r1, K, xs, x, PrefetchDistance, y0, y1); return; }
        *y0 = Dot1Bf16Split(r0, K, xs, x, width); // 128 bits, scalar: not measured as two streams; row by row
        *y1 = Dot1Bf16Split(r1, K, xs, x, width);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float Dot512(ushort* r, int K, float* xs, float* x, int lead)
    {
        var hi = Vector512.Create(0xFFFF0000u);
        Vector512<float> a = default, b = default, c = default, d = default;
        ushort* p = r;
        float* q = xs;
        byte* ahead = (byte*)r + lead;
        for (ushort* end = r + (K & ~63); p < end; p += 64, q += 64, ahead += 128)
        {
            if (Sse.IsSupported) { Sse.Prefetch0(ahead); Sse.Prefetch0(ahead + 64); }
            var v = Vector512.Load((uint*)p);
            var u = Vector512.Load((uint*)(p + 32));
            a = Vector512.FusedMultiplyAdd((v << 16).AsSingle(), Vector512.Load(q), a);
            b = Vector512.FusedMultiplyAdd((v & hi).AsSingle(), Vector512.Load(q + 16), b);
            c = Vector512.FusedMultiplyAdd((u << 16).AsSingle(), Vector512.Load(q + 32), c);
            d = Vector512.FusedMultiplyAdd((u & hi).AsSingle(), Vector512.Load(q + 48), d);
        }
        return Finish512(r, (int)(p - r), K, xs, x, a, b, c, d);
    }

    /// <summary>
    /// <see cref="Dot512"/> over two rows at once, each with exactly its chains (so each row gets the bits
    /// <see cref="Dot512"/> gives it), every vector of x loaded once for both.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Dot2x512(ushort* r0, ushort* r1, int K, float* xs, float* x, int lead, float* y0, float* y1)
    {
        var hi = Vector512.Create(0xFFFF0000u);
        Vector512<float> a0 = default, b0 = default, c0 = default, d0 = default;
        Vector512<float> a1 = default, b1 = default, c1 = default, d1 = default;
        ushort* p0 = r0, p1 = r1;
        float* q = xs;
        byte* ahead0 = (byte*)r0 + lead, ahead1 = (byte*)r1 + lead;
        for (ushort* end = r0 + (K & ~63); p0 < end; p0 += 64, p1 += 64, q += 64, ahead0 += 128, ahead1 += 128)
        {
            if (Sse.IsSupported)
            {
                Sse.Prefetch0(ahead0); Sse.Prefetch0(ahead0 + 64);
                Sse.Prefetch0(ahead1); Sse.Prefetch0(ahead1 + 64);
            }
            var x0 = Vector512.Load(q);
            var x1 = Vector512.Load(q + 16);
            var x2 = Vector512.Load(q + 32);
            var x3 = Vector512.Load(q + 48);
            var v = Vector512.Load((uint*)p0);
            var u = Vector512.Load((uint*)(p0 + 32));
            a0 = Vector512.FusedMultiplyAdd((v << 16).AsSingle(), x0, a0);
            b0 = Vector512.FusedMultiplyAdd((v & hi).AsSingle(), x1, b0);
            c0 = Vector512.FusedMultiplyAdd((u << 16).AsSingle(), x2, c0);
            d0 = Vector512.FusedMultiplyAdd((u & hi).AsSingle(), x3, d0);
            v = Vector512.Load((uint*)p1);
            u = Vector512.Load((uint*)(p1 + 32));
            a1 = Vector512.FusedMultiplyAdd((v << 16).AsSingle(), x0, a1);
            b1 = Vector512.FusedMultiplyAdd((v & hi).AsSingle(), x1, b1);
            c1 = Vector512.FusedMultiplyAdd((u << 16).AsSingle(), x2, c1);
            d1 = Vector512.FusedMultiplyAdd((u & hi).AsSingle(), x3, d1);
        }
        int k = (int)(p0 - r0);
        *y0 = Finish512(r0, k, K, xs, x, a0, b0, c0, d0);
        *y1 = Finish512(r1, k, K, xs, x, a1, b1, c1, d1);
    }

    /// <summary>The end of a 512-bit bf16 dot after its 64-element steps: a last 32-element step, the chains' sum, the scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // a call would make the JIT spill the other row's chains inside the loop
    private static float Finish512(ushort* r, int k, int K, float* xs, float* x, Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        if (k + 32 <= K)
        {
            var v = Vector512.Load((uint*)(r + k));
            a = Vector512.FusedMultiplyAdd((v << 16).AsSingle(), Vector512.Load(xs + k), a);
            b = Vector512.FusedMultiplyAdd((v & Vector512.Create(0xFFFF0000u)).AsSingle(), Vector512.Load(xs + k + 16), b);
            k += 32;
        }
        float s = Vector512.Sum((a + c) + (b + d));
        for (; k < K; k++) s += Bf(r[k]) * x[k];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float Dot256(ushort* r, int K, float* xs, float* x, int lead)
    {
        var hi = Vector256.Create(0xFFFF0000u);
        Vector256<float> a = default, b = default, c = default, d = default;
        ushort* p = r;
        float* q = xs;
        byte* ahead = (byte*)r + lead;
        for (ushort* end = r + (K & ~31); p < end; p += 32, q += 32, ahead += 64)
        {
            if (Sse.IsSupported) Sse.Prefetch0(ahead); // one 64-byte line per step
            var v = Vector256.Load((uint*)p);
            var u = Vector256.Load((uint*)(p + 16));
            a = Vector256.FusedMultiplyAdd((v << 16).AsSingle(), Vector256.Load(q), a);
            b = Vector256.FusedMultiplyAdd((v & hi).AsSingle(), Vector256.Load(q + 8), b);
            c = Vector256.FusedMultiplyAdd((u << 16).AsSingle(), Vector256.Load(q + 16), c);
            d = Vector256.FusedMultiplyAdd((u & hi).AsSingle(), Vector256.Load(q + 24), d);
        }
        return Finish256(r, (int)(p - r), K, xs, x, a, b, c, d);
    }

    /// <summary><see cref="Dot2x512"/> at 256 bits: each row exactly <see cref="Dot256"/>'s chains.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Dot2x256(ushort* r0, ushort* r1, int K, float* xs, float* x, int lead, float* y0, float* y1)
    {
        var hi = Vector256.Create(0xFFFF0000u);
        Vector256<float> a0 = default, b0 = default, c0 = default, d0 = default;
        Vector256<float> a1 = default, b1 = default, c1 = default, d1 = default;
        ushort* p0 = r0, p1 = r1;
        float* q = xs;
        byte* ahead0 = (byte*)r0 + lead, ahead1 = (byte*)r1 + lead;
        for (ushort* end = r0 + (K & ~31); p0 < end; p0 += 32, p1 += 32, q += 32, ahead0 += 64, ahead1 += 64)
        {
            if (Sse.IsSupported) { Sse.Prefetch0(ahead0); Sse.Prefetch0(ahead1); }
            // exactly AVX2's sixteen registers: eight chains, the mask, four of x, two of weights, one widened (no
            // spill in the JIT's listing)
            var x0 = Vector256.Load(q);
            var x1 = Vector256.Load(q + 8);
            var x2 = Vector256.Load(q + 16);
            var x3 = Vector256.Load(q + 24);
            var v = Vector256.Load((uint*)p0);
            var u = Vector256.Load((uint*)(p0 + 16));
            a0 = Vector256.FusedMultiplyAdd((v << 16).AsSingle(), x0, a0);
            b0 = Vector256.FusedMultiplyAdd((v & hi).AsSingle(), x1, b0);
            c0 = Vector256.FusedMultiplyAdd((u << 16).AsSingle(), x2, c0);
            d0 = Vector256.FusedMultiplyAdd((u & hi).AsSingle(), x3, d0);
            v = Vector256.Load((uint*)p1);
            u = Vector256.Load((uint*)(p1 + 16));
            a1 = Vector256.FusedMultiplyAdd((v << 16).AsSingle(), x0, a1);
            b1 = Vector256.FusedMultiplyAdd((v & hi).AsSingle(), x1, b1);
            c1 = Vector256.FusedMultiplyAdd((u << 16).AsSingle(), x2, c1);
            d1 = Vector256.FusedMultiplyAdd((u & hi).AsSingle(), x3, d1);
        }
        int k = (int)(p0 - r0);
        *y0 = Finish256(r0, k, K, xs, x, a0, b0, c0, d0);
        *y1 = Finish256(r1, k, K, xs, x, a1, b1, c1, d1);
    }

    /// <summary>The end of a 256-bit bf16 dot after its 32-element steps (<see cref="Finish512"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // a call would make the JIT spill the other row's chains inside the loop
    private static float Finish256(ushort* r, int k, int K, float* xs, float* x, Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d)
    {
        if (k + 16 <= K)
        {
            var v = Vector256.Load((uint*)(r + k));
            a = Vector256.FusedMultiplyAdd((v << 16).AsSingle(), Vector256.Load(xs + k), a);
            b = Vector256.FusedMultiplyAdd((v & Vector256.Create(0xFFFF0000u)).AsSingle(), Vector256.Load(xs + k + 8), b);
            k += 16;
        }
        float s = Vector256.Sum((a + c) + (b + d));
        for (; k < K; k++) s += Bf(r[k]) * x[k];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static float Dot128(ushort* r, int K, float* xs, float* x)
    {
        int k;
        var hi = Vector128.Create(0xFFFF0000u);
        Vector128<float> a = default, b = default, c = default, d = default;
        ushort* p = r;
        float* q = xs;
        for (ushort* end = r + (K & ~15); p < end; p += 16, q += 16)
        {
            var v = Vector128.Load((uint*)p);
            var u = Vector128.Load((uint*)(p + 8));
            a = Vector128.FusedMultiplyAdd((v << 16).AsSingle(), Vector128.Load(q), a);
            b = Vector128.FusedMultiplyAdd((v & hi).AsSingle(), Vector128.Load(q + 4), b);
            c = Vector128.FusedMultiplyAdd((u << 16).AsSingle(), Vector128.Load(q + 8), c);
            d = Vector128.FusedMultiplyAdd((u & hi).AsSingle(), Vector128.Load(q + 12), d);
        }
        k = (int)(p - r);
        if (k + 8 <= K)
        {
            var v = Vector128.Load((uint*)(r + k));
            a = Vector128.FusedMultiplyAdd((v << 16).AsSingle(), Vector128.Load(xs + k), a);
            b = Vector128.FusedMultiplyAdd((v & hi).AsSingle(), Vector128.Load(xs + k + 4), b);
            k += 8;
        }
        float s = Vector128.Sum((a + c) + (b + d));
        for (; k < K; k++) s += Bf(r[k]) * x[k];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Dot4F32(float* w, int K, float* x, float* y, SimdWidth width = 0)
    {
        if (width == 0) width = Simd.Widest;
        float* r0 = w, r1 = w + K, r2 = w + 2 * K, r3 = w + 3 * K;
        int k = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (width >= SimdWidth.V512)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; k + 16 <= K; k += 16)
            {
                var xv = Vector512.Load(x + k);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + k), xv, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(r1 + k), xv, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(r2 + k), xv, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(r3 + k), xv, a3);
            }
            s0 = Vector512.Sum(a0); s1 = Vector512.Sum(a1); s2 = Vector512.Sum(a2); s3 = Vector512.Sum(a3);
        }
        else if (width >= SimdWidth.V256)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; k + 8 <= K; k += 8)
            {
                var xv = Vector256.Load(x + k);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(r0 + k), xv, a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(r1 + k), xv, a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Load(r2 + k), xv, a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Load(r3 + k), xv, a3);
            }
            s0 = Vector256.Sum(a0); s1 = Vector256.Sum(a1); s2 = Vector256.Sum(a2); s3 = Vector256.Sum(a3);
        }
        else if (width >= SimdWidth.V128)
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; k + 4 <= K; k += 4)
            {
                var xv = Vector128.Load(x + k);
                a0 = Vector128.FusedMultiplyAdd(Vector128.Load(r0 + k), xv, a0);
                a1 = Vector128.FusedMultiplyAdd(Vector128.Load(r1 + k), xv, a1);
                a2 = Vector128.FusedMultiplyAdd(Vector128.Load(r2 + k), xv, a2);
                a3 = Vector128.FusedMultiplyAdd(Vector128.Load(r3 + k), xv, a3);
            }
            s0 = Vector128.Sum(a0); s1 = Vector128.Sum(a1); s2 = Vector128.Sum(a2); s3 = Vector128.Sum(a3);
        }
        for (; k < K; k++)
        {
            float xv = x[k];
            s0 += r0[k] * xv; s1 += r1[k] * xv; s2 += r2[k] * xv; s3 += r3[k] * xv;
        }
        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
    }

    internal static float Dot1F32(float* r, float* x, int K, SimdWidth width = 0)
    {
        if (width == 0) width = Simd.Widest;
        int k = 0;
        float s = 0;
        if (width >= SimdWidth.V512)
        {
            Vector512<float> a = default;
            for (; k + 16 <= K; k += 16) a = Vector512.FusedMultiplyAdd(Vector512.Load(r + k), Vector512.Load(x + k), a);
            s = Vector512.Sum(a);
        }
        // Not at Vector256: AVX2 has always run the single-row remainder scalar, and its bits stay as they were.
        else if (width == SimdWidth.V128)
        {
            Vector128<float> a = default;
            for (; k + 4 <= K; k += 4) a = Vector128.FusedMultiplyAdd(Vector128.Load(r + k), Vector128.Load(x + k), a);
            s = Vector128.Sum(a);
        }
        for (; k < K; k++) s += r[k] * x[k];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Bf(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    private void FreeX()
    {
        NativeMemory.AlignedFree(_xs); NativeMemory.AlignedFree(_xq); NativeMemory.AlignedFree(_xd);
        _xs = null; _xq = null; _xd = null; _xCapacity = 0;
    }

    public void Dispose()
    {
        for (int i = 0; i < _rowBuf.Length; i++) { NativeMemory.AlignedFree(_rowBuf[i]); _rowBuf[i] = null; }
        FreeX();
    }
}
