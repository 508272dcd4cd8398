using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Inference;

/// <summary>
/// Causal grouped-query attention of a chunk of new tokens against the cache, one (token, head) pair
/// per work item. Token i at position p attends to positions j with 0 ≤ p − j &lt; window (all j ≤ p
/// without a sliding window): scores q·k/√d, softmax in float32, weighted sum of values.
/// </summary>
internal sealed unsafe class Attention : IParallelWork, IDisposable
{
    private readonly TransformerShape _shape;
    private readonly float _scale;
    private readonly float*[] _scores;
    private readonly int[] _scoreCapacity;

    private KvCache? _cache;
    private float* _q, _out;
    private int _layer, _p0;

    public Attention(TransformerShape shape, int threads)
    {
        _shape = shape;
        _scale = (float)(1.0 / Math.Sqrt(shape.HeadDim));
        _scores = new float*[threads];
        _scoreCapacity = new int[threads];
    }

    /// <summary>out[i, h·d..] for i &lt; m; keys and values of positions ≤ p0 + i are already in the cache.</summary>
    public void Run(WorkerPool pool, float* q, KvCache cache, int layer, int p0, int m, float* output)
    {
        _q = q; _cache = cache; _layer = layer; _p0 = p0; _out = output;
        int span = Math.Min(p0 + m, cache.Capacity);
        for (int w = 0; w < _scores.Length; w++)
            if (_scoreCapacity[w] < span)
            {
                NativeMemory.AlignedFree(_scores[w]);
                int cap = Math.Max(span, 256);
                _scores[w] = (float*)NativeMemory.AlignedAlloc((nuint)cap * sizeof(float), 64);
                _scoreCapacity[w] = cap;
            }
        int items = m * _shape.Heads;
        if ((long)items * (p0 + m) * _shape.HeadDim < 65536) for (int i = 0; i < items; i++) Execute(i, 0);
        else pool.Run(this, items);
        _cache = null;
    }

    public void Execute(int index, int worker)
    {
        int d = _shape.HeadDim, heads = _shape.Heads, kvDim = _shape.KvDim;
        int i = index / heads, h = index % heads;
        int kvHead = h / (heads / _shape.KvHeads);
        int pos = _p0 + i;
        int lo = _shape.SlidingWindow is { } w ? Math.Max(0, pos - w + 1) : 0;
        int n = pos - lo + 1;
        var cache = _cache!;
        int cap = cache.Capacity, slot0 = cache.Slot(lo);
        int first = Math.Min(n, cap - slot0); // positions lo.. sit in slots slot0.., wrapping to 0 after the end
        float* q = _q + (long)i * _shape.QDim + h * d;
        float* scores = _scores[worker];

        // scores q·k/√d, then softmax in float32: p = exp(s − max) / Σ exp(s − max)
        float* keys = cache.Keys(_layer, kvHead);
        Scores(q, d, keys, cap, slot0, first, scores);
        if (first < n) Scores(q, d, keys, cap, 0, n - first, scores + first);
        var sc = new Span<float>(scores, n);
        TensorPrimitives.Multiply(sc, _scale, sc);
        float max = TensorPrimitives.Max(sc);
        TensorPrimitives.Subtract(sc, max, sc);
        TensorPrimitives.Exp(sc, sc);
        float sum = TensorPrimitives.Sum(sc);
        TensorPrimitives.Divide(sc, sum, sc);

        // out = Σ p_j · v_j
        AccumulateValues(scores, n, cache.Values(_layer) + kvHead * d, kvDim, cap, slot0, d, _out + (long)i * _shape.QDim + h * d);
    }

    /// <summary>
    /// o[c] = Σ_j p[j] · values[slot_j·ld + c] for c &lt; d, slots slot0, slot0+1, … wrapping at <paramref name="cap"/>:
    /// one register accumulator per slice of the head. Each o[c] is its own FMA chain over j in order, so every
    /// width (the <paramref name="width"/> tests force) gives the same bits.
    /// </summary>
    internal static void AccumulateValues(float* p, int n, float* values, int ld, int cap, int slot0, int d, float* o, SimdWidth width = 0)
    {
        if (width == 0) width = Simd.Widest;
        int c = 0;
        if (width >= SimdWidth.V512)
            for (; c + 16 <= d; c += 16)
            {
                var acc = Vector512<float>.Zero;
                for (int j = 0, slot = slot0; j < n; j++, slot = slot + 1 == cap ? 0 : slot + 1)
                    acc = Vector512.FusedMultiplyAdd(Vector512.Create(p[j]), Vector512.Load(values + (long)slot * ld + c), acc);
                acc.Store(o + c);
            }
        if (width >= SimdWidth.V256)
            for (; c + 8 <= d; c += 8)
            {
                var acc = Vector256<float>.Zero;
                for (int j = 0, slot = slot0; j < n; j++, slot = slot + 1 == cap ? 0 : slot + 1)
                    acc = Vector256.FusedMultiplyAdd(Vector256.Create(p[j]), Vector256.Load(values + (long)slot * ld + c), acc);
                acc.Store(o + c);
            }
        if (width >= SimdWidth.V128)
            for (; c + 4 <= d; c += 4)
            {
                var acc = Vector128<float>.Zero;
                for (int j = 0, slot = slot0; j < n; j++, slot = slot + 1 == cap ? 0 : slot + 1)
                    acc = Vector128.FusedMultiplyAdd(Vector128.Create(p[j]), Vector128.Load(values + (long)slot * ld + c), acc);
                acc.Store(o + c);
            }
        for (; c < d; c++)
        {
            float acc = 0;
            for (int j = 0, slot = slot0; j < n; j++, slot = slot + 1 == cap ? 0 : slot + 1)
                acc = MathF.FusedMultiplyAdd(p[j], values[(long)slot * ld + c], acc);
            o[c] = acc;
        }
    }

    /// <summary>
    /// dst[j] = Σ_i q[i] · keys[i·ld + s0 + j] for j &lt; n: 16 positions per FMA (32 per step at Vector512). Each
    /// dst[j] is its own FMA chain over i in order, so every width (the <paramref name="width"/> tests force) gives
    /// the same bits.
    /// </summary>
    internal static void Scores(float* q, int d, float* keys, int ld, int s0, int n, float* dst, SimdWidth width = 0)
    {
        if (width == 0) width = Simd.Widest;
        float* k = keys + s0;
        int j = 0;
        if (width >= SimdWidth.V512)
        {
            for (; j + 32 <= n; j += 32)
            {
                Vector512<float> a = default, b = default;
                for (int i = 0; i < d; i++)
                {
                    var qi = Vector512.Create(q[i]);
                    a = Vector512.FusedMultiplyAdd(qi, Vector512.Load(k + (long)i * ld + j), a);
                    b = Vector512.FusedMultiplyAdd(qi, Vector512.Load(k + (long)i * ld + j + 16), b);
                }
                a.Store(dst + j); b.Store(dst + j + 16);
            }
            for (; j + 16 <= n; j += 16)
            {
                Vector512<float> a = default;
                for (int i = 0; i < d; i++) a = Vector512.FusedMultiplyAdd(Vector512.Create(q[i]), Vector512.Load(k + (long)i * ld + j), a);
                a.Store(dst + j);
            }
        }
        if (width >= SimdWidth.V256)
            for (; j + 8 <= n; j += 8)
            {
                Vector256<float> a = default;
                for (int i = 0; i < d; i++) a = Vector256.FusedMultiplyAdd(Vector256.Create(q[i]), Vector256.Load(k + (long)i * ld + j), a);
                a.Store(dst + j);
            }
        if (width >= SimdWidth.V128)
            for (; j + 4 <= n; j += 4)
            {
                Vector128<float> a = default;
                for (int i = 0; i < d; i++) a = Vector128.FusedMultiplyAdd(Vector128.Create(q[i]), Vector128.Load(k + (long)i * ld + j), a);
                a.Store(dst + j);
            }
        for (; j < n; j++)
        {
            float s = 0;
            for (int i = 0; i < d; i++) s = MathF.FusedMultiplyAdd(q[i], k[(long)i * ld + j], s);
            dst[j] = s;
        }
    }

    public void Dispose()
    {
        for (int w = 0; w < _scores.Length; w++) { NativeMemory.AlignedFree(_scores[w]); _scores[w] = null; }
    }
}
