using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Mistral.Merge.Core;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Inference;

/// <summary>
/// Causal grouped-query attention of a chunk of new tokens against the cache. A work item is one token and up to
/// four of the query heads that share a KV head, computed together so that each key and value row is read once for
/// all of them (<see cref="Simd.SumOfScaledRows"/>); the items are ordered KV head by KV head (then token), so a
/// worker's consecutive items read the same keys and values from its cache. Token i at position p attends to
/// positions j with 0 ≤ p − j &lt; window (all j ≤ p without a sliding window): scores q·k/√d, softmax in float32,
/// weighted sum of values.
/// </summary>
internal sealed unsafe class Attention : IParallelWork, IDisposable
{
    private readonly TransformerShape _shape;
    private readonly float _scale;
    /// <summary>Query heads computed together (each item's heads share one KV head).</summary>
    internal const int HeadsPerItem = 4;

    private readonly float*[] _scores; // per worker: HeadsPerItem score rows of _scoreCapacity[worker] floats
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
                _scores[w] = (float*)NativeMemory.AlignedAlloc((nuint)cap * HeadsPerItem * sizeof(float), 64);
                _scoreCapacity[w] = cap;
            }
        int items = m * _shape.KvHeads * BlocksPerKvHead;
        if ((long)m * _shape.Heads * (p0 + m) * _shape.HeadDim < 65536) for (int i = 0; i < items; i++) Execute(i, 0);
        else pool.Run(this, items);
        _cache = null;
    }

    private int BlocksPerKvHead => (_shape.Heads / _shape.KvHeads + HeadsPerItem - 1) / HeadsPerItem;

    public void Execute(int index, int worker)
    {
        int d = _shape.HeadDim, kvDim = _shape.KvDim, group = _shape.Heads / _shape.KvHeads, blocks = BlocksPerKvHead;
        int perKvHead = _m * blocks;
        int kvHead = index / perKvHead, rest = index - kvHead * perKvHead;
        int i = rest / blocks, h0 = kvHead * group + rest % blocks * HeadsPerItem;
        int heads = Math.Min(HeadsPerItem, kvHead * group + group - h0);
        int pos = _p0 + i;
        int lo = _shape.SlidingWindow is { } w ? Math.Max(0, pos - w + 1) : 0;
        int n = pos - lo + 1;
        var cache = _cache!;
        int cap = cache.Capacity, slot0 = cache.Slot(lo);
        int first = Math.Min(n, cap - slot0); // positions lo.. sit in slots slot0.., wrapping to 0 after the end

        // Per head of the item: its query, score row and output; fewer than four heads repeat the last one.
        float** q = stackalloc float*[HeadsPerItem];
        float** scores = stackalloc float*[HeadsPerItem];
        float** output = stackalloc float*[HeadsPerItem];
        for (int j = 0; j < HeadsPerItem; j++)
        {
            int k = Math.Min(j, heads - 1), h = h0 + k;
            q[j] = _q + (long)i * _shape.QDim + h * d;
            scores[j] = _scores[worker] + (long)k * _scoreCapacity[worker];
            output[j] = _out + (long)i * _shape.QDim + h * d;
        }

        // scores q·k/√d, then softmax in float32: p = exp(s − max) / Σ exp(s − max)
        float* keys = cache.Keys(_layer, kvHead);
        Scores(q, d, keys, cap, slot0, first, scores);
        if (first < n)
        {
            float** tail = stackalloc float*[HeadsPerItem];
            for (int j = 0; j < HeadsPerItem; j++) tail[j] = scores[j] + first;
            Scores(q, d, keys, cap, 0, n - first, tail);
        }
        for (int j = 0; j < heads; j++)
        {
            var sc = new Span<float>(scores[j], n);
            TensorPrimitives.Multiply(sc, _scale, sc);
            float max = TensorPrimitives.Max(sc);
            TensorPrimitives.Subtract(sc, max, sc);
            TensorPrimitives.Exp(sc, sc);
            Simd.Map(sc, sc, sc, default(ZeroSubnormal));
            float sum = TensorPrimitives.Sum(sc);
            TensorPrimitives.Divide(sc, sum, sc);
            Simd.Map(sc, sc, sc, default(ZeroSubnormal));
        }

        // out = Σ p_j · v_j
        AccumulateValues(scores, n, cache.Values(_layer) + kvHead * d, kvDim, cap, slot0, d, output);
    }

    /// <summary>
    /// o[h][c] = Σ_j p[h][j] · values[slot_j·ld + c] for four heads h and c &lt; d, slots slot0, slot0+1, … wrapping at
    /// <paramref name="cap"/> (n ≤ cap), on <see cref="Simd.SumOfScaledRows"/>, so every width (the
    /// <paramref name="width"/> tests force) gives the same bits.
    /// </summary>
    internal static void AccumulateValues(float** p, int n, float* values, int ld, int cap, int slot0, int d, float** o, SimdWidth width = 0) =>
        Simd.SumOfScaledRows(new ValueRows(values, ld, cap, slot0), p, n, o, d, width);

    /// <summary>
    /// dst[h][j] = Σ_i q[h][i] · keys[i·ld + s0 + j] for four heads h and j &lt; n: positions side by side in the vector
    /// lanes, on <see cref="Simd.SumOfScaledRows"/>, so every width (the <paramref name="width"/> tests force) gives the same bits.
    /// </summary>
    internal static void Scores(float** q, int d, float* keys, int ld, int s0, int n, float** dst, SimdWidth width = 0) =>
        Simd.SumOfScaledRows(new KeyRows(keys + s0, ld), q, d, dst, n, width);

    /// <summary>
    /// x, or 0 where x is subnormal (the second input is ignored). Why: a peaked softmax leaves probabilities below
    /// 2^-126, and every FMA with a subnormal operand costs a microcode assist on Intel cores (on a Xeon, one layer's
    /// 512-position decode step whose probabilities but one were subnormal took 11–16 ms without this, 0.3–0.4 ms
    /// with it). Such a term is below 2^-126·|v|, under half an ulp of any output that has one normal-range term, so
    /// the outputs keep their bits (tested); the sum of the exponentials (≥ 1, the maximum's term) likewise. NaN and
    /// infinities pass unchanged.
    /// </summary>
    internal readonly struct ZeroSubnormal : IBinaryOp
    {
        private const uint ExponentBits = 0x7F80_0000;
        public float Invoke(float x, float y) => (BitConverter.SingleToUInt32Bits(x) & ExponentBits) == 0 ? 0f : x;
        public Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) =>
            Vector128.AndNot(x, Vector128.Equals(x.AsUInt32() & Vector128.Create(ExponentBits), Vector128<uint>.Zero).AsSingle());
        public Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) =>
            Vector256.AndNot(x, Vector256.Equals(x.AsUInt32() & Vector256.Create(ExponentBits), Vector256<uint>.Zero).AsSingle());
        public Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) =>
            Vector512.AndNot(x, Vector512.Equals(x.AsUInt32() & Vector512.Create(ExponentBits), Vector512<uint>.Zero).AsSingle());
    }

    private readonly struct KeyRows(float* keys, int ld) : IScaledRows
    {
        private readonly float* _keys = keys;
        private readonly long _ld = ld;
        public float* Row(int t) => _keys + t * _ld;
    }

    private readonly struct ValueRows(float* values, int ld, int cap, int slot0) : IScaledRows
    {
        private readonly float* _values = values;
        private readonly long _ld = ld;
        private readonly int _cap = cap, _slot0 = slot0;
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
