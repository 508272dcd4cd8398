using System.Runtime.InteropServices;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Inference;

/// <summary>
/// The forward pass's steps between the GEMMs — RMSNorm rows, RoPE + cache store, SiLU·up, the residual add —
/// on the worker pool. Each element (row) is computed by exactly the serial code, so the bits do not depend on
/// the thread count; small steps (decode) stay on the calling thread.
/// </summary>
internal sealed unsafe class ParallelSteps : IParallelWork, IDisposable
{
    /// <summary>Elements per work item of the element-wise steps, and the least a step needs to go parallel.</summary>
    private const int Chunk = 8192;
    /// <summary>Tokens per RoPE work item: 16 keeps one worker's transposed key writes within whole cache lines.</summary>
    private const int RopeBlock = 16;

    private enum Op { Norm, SiluMul, Add, Rope }

    private readonly WorkerPool _pool;
    private readonly TransformerShape _s;
    private readonly Rope _rope;
    private readonly float*[] _angles; // per worker: cos then sin, d/2 each

    private Op _op;
    private float* _a, _b, _c;
    private float[]? _weight;
    private long _n;
    private int _width, _p0, _layer, _qFrom;
    private float _eps;
    private KvCache? _cache;

    public ParallelSteps(WorkerPool pool, TransformerShape shape, Rope rope)
    {
        _pool = pool; _s = shape; _rope = rope;
        _angles = new float*[pool.Threads];
        for (int w = 0; w < _angles.Length; w++) _angles[w] = (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(shape.HeadDim, 2) * sizeof(float), 64);
    }

    /// <summary>y[i] = rmsnorm(x[i]) · weight for each of the <paramref name="rows"/> rows of width <paramref name="width"/>.</summary>
    public void RmsNorm(float* x, float[] weight, float* y, int rows, int width, float eps)
    {
        _op = Op.Norm; _a = x; _c = y; _weight = weight; _width = width; _eps = eps;
        Go(rows, (long)rows * width);
        _weight = null;
    }

    /// <summary>gate ← silu(gate) · up over <paramref name="n"/> elements.</summary>
    public void SiluMul(float* gate, float* up, long n) { _op = Op.SiluMul; _a = gate; _b = up; _n = n; Go(Chunks(n), n); }

    /// <summary>x ← x + y over <paramref name="n"/> elements.</summary>
    public void Add(float* x, float* y, long n) { _op = Op.Add; _a = x; _b = y; _n = n; Go(Chunks(n), n); }

    /// <summary>
    /// RoPE on k of the <paramref name="m"/> tokens at positions p0.., and k and v of each into the cache; RoPE on the
    /// queries of the tokens from <paramref name="qFrom"/> on, whose rows q holds from its first row (token i's query
    /// is row i − qFrom: the last layer computes the queries of the output rows only).
    /// </summary>
    public void RopeAndStore(float* q, float* k, float* v, KvCache cache, int layer, int p0, int m, int qFrom = 0)
    {
        _op = Op.Rope; _a = q; _b = k; _c = v; _cache = cache; _layer = layer; _p0 = p0; _n = m; _qFrom = qFrom;
        Go((m + RopeBlock - 1) / RopeBlock, (long)m * (_s.QDim + _s.KvDim));
        _cache = null;
    }

    private static int Chunks(long n) => (int)((n + Chunk - 1) / Chunk);

    private void Go(int items, long elements)
    {
        if (items > 1 && elements >= 2 * Chunk) _pool.Run(this, items);
        else for (int i = 0; i < items; i++) Execute(i, 0);
    }

    public void Execute(int index, int worker)
    {
        switch (_op)
        {
            case Op.Norm:
                Ops.RmsNorm(_a + (long)index * _width, _weight!, _c + (long)index * _width, _width, _eps);
                break;
            case Op.SiluMul:
            case Op.Add:
                {
                    long lo = (long)index * Chunk;
                    int len = (int)Math.Min(Chunk, _n - lo);
                    if (_op == Op.Add) Ops.Add(_a + lo, _b + lo, len); else Ops.SiluMul(_a + lo, _b + lo, len);
                    break;
                }
            case Op.Rope:
                {
                    int qd = _s.QDim, kvd = _s.KvDim, half = _s.HeadDim / 2;
                    float* cos = _angles[worker], sin = cos + half;
                    int end = (int)Math.Min(_n, (long)(index + 1) * RopeBlock);
                    for (int i = index * RopeBlock; i < end; i++)
                    {
                        _rope.Angles(_p0 + i, cos, sin);
                        if (i >= _qFrom) _rope.Rotate(_a + (long)(i - _qFrom) * qd, _s.Heads, cos, sin);
                        _rope.Rotate(_b + (long)i * kvd, _s.KvHeads, cos, sin);
                        _cache!.Store(_layer, _p0 + i, _b + (long)i * kvd, _c + (long)i * kvd);
                    }
                    break;
                }
        }
    }

    public void Dispose()
    {
        for (int w = 0; w < _angles.Length; w++) { NativeMemory.AlignedFree(_angles[w]); _angles[w] = null; }
    }
}
