using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Inference;

/// <summary>
/// Causal grouped-query attention of a chunk of new tokens against the cache, one (token, head) pair
/// per work item, the items ordered KV head by KV head (then token, then the query heads sharing it) so that
/// a worker's consecutive items read the same keys and values from its cache. Token i at position p attends to positions j with 0 ≤ p − j &lt; window (all j ≤ p
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
    private int _layer, _p0, _m;

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
        _q = q; _cache = cache; _layer = layer; _p0 = p0; _m = m; _out = output;
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
        int d = _shape.HeadDim, kvDim = _shape.KvDim, group = _shape.Heads / _shape.KvHeads;
        int perKvHead = _m * group;
        int kvHead = index / perKvHead, rest = index - kvHead * perKvHead;
        int i = rest / group, h = kvHead * group + rest % group;
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
    /// o[c] = Σ_j p[j] · values[slot_j·ld + c] for c &lt; d, slots slot0, slot0+1, … wrapping at <paramref name="cap"/>
    /// (n ≤ cap): one register accumulator per slice of the head, on <see cref="Simd.SumOfScaledRows"/>, so every width
    /// (the <paramref name="width"/> tests force) gives the same bits.
    /// </summary>
    internal static void AccumulateValues(float* p, int n, float* values, int ld, int cap, int slot0, int d, float* o, SimdWidth width = 0) =>
        Simd.SumOfScaledRows(new ValueRows(p, values, ld, cap, slot0), n, o, d, width);

    /// <summary>
    /// dst[j] = Σ_i q[i] · keys[i·ld + s0 + j] for j &lt; n: positions side by side in the vector lanes, on
    /// <see cref="Simd.SumOfScaledRows"/>, so every width (the <paramref name="width"/> tests force) gives the same bits.
    /// </summary>
    internal static void Scores(float* q, int d, float* keys, int ld, int s0, int n, float* dst, SimdWidth width = 0) =>
        Simd.SumOfScaledRows(new KeyRows(q, keys + s0, ld), d, dst, n, width);

    private readonly struct KeyRows(float* q, float* keys, int ld) : IScaledRows
    {
        private readonly float* _q = q, _keys = keys;
        private readonly long _ld = ld;
        public float Coefficient(int t) => _q[t];
        public float* Row(int t) => _keys + t * _ld;
    }

    private readonly struct ValueRows(float* p, float* values, int ld, int cap, int slot0) : IScaledRows
    {
        private readonly float* _p = p, _values = values;
        private readonly long _ld = ld;
        private readonly int _cap = cap, _slot0 = slot0;
        public float Coefficient(int t) => _p[t];
        public float* Row(int t)
        {
            int slot = _slot0 + t;
            if (slot >= _cap) slot -= _cap;
            return _values + slot * _ld;
        }
    }

    public void Dispose()
    {
        for (int w = 0; w < _scores.Length; w++) { NativeMemory.AlignedFree(_scores[w]); _scores[w] = null; }
    }
}
