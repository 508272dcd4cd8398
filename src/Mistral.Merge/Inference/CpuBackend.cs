using System.Diagnostics;
using System.Runtime.InteropServices;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Inference;

/// <summary>
/// The reference forward pass on the CPU, HF semantics, float32 math over weights widened on the fly.
/// Read top to bottom: <see cref="Forward"/> → <see cref="ForwardChunk"/> → embed → per layer
/// <see cref="AttentionBlock"/> and <see cref="MlpBlock"/> / <see cref="MoeBlock"/> → <see cref="Head"/>.
/// Every step names its input and output buffers (llama2.c's <c>run.c</c> style: <c>Linear(w.Q, x: _xn, y: _q, m)</c>);
/// there is no hidden current input. Batches use the packed GEMM, single tokens the GEMV; nothing is allocated
/// per token once the buffers have grown to the largest batch.
/// </summary>
public sealed unsafe class CpuBackend : IBackend, ILayerDiagnostics
{
    /// <summary>Largest batch a forward call processes at once (longer inputs are split).</summary>
    public const int DefaultChunk = 512;

    private readonly TransformerModel _model;
    private readonly TransformerShape _s;
    private readonly WorkerPool _pool;
    private readonly Gemm _gemm;
    private readonly Gemv _gemv;
    private readonly PackedInput _packed = new();
    private readonly Attention _attention;
    private readonly Rope _rope;
    private readonly ParallelSteps _steps;
    private readonly float _eps;
    private readonly int _chunk;
    // LocateNonFinite: the position whose hidden state is checked after every block (-1: none), and what it found.
    private int _probePosition = -1;
    private string? _probeFound;

    // Activations for up to _capacity tokens (row-major [tokens, width]): _x the residual stream, _xn a normed
    // copy, _q/_k/_v/_att attention, _tmp a block output, _gate/_up the MLP, the rest the MoE block.
    private int _capacity;
    private float* _x, _xn, _q, _k, _v, _att, _tmp, _gate, _up, _router, _moeOut, _xe, _ye;
    private int[] _moeToken = [];
    private float[] _moeWeight = [];
    private int[] _topExpert = [];
    private float[] _topWeight = [];

    public string Name => $"cpu ({_pool.Threads} threads)";
    public TransformerShape Shape => _s;
    public TransformerModel Model => _model;
    public int Threads => _pool.Threads;
    public int HostThreads => Threads;

    /// <summary>When set, every forward call adds its time per stage to it (benchmarks; null reads no clock).</summary>
    public ForwardProfile? Profile { get; set; }

    /// <summary>Sees every MoE block's inputs and router logits (MoE surgery: routing statistics, calibration).</summary>
    public IMoeObserver? MoeObserver { get; set; }

    /// <summary>Sees every layer's input hidden state (moe-build's gate vectors).</summary>
    public ILayerInputObserver? LayerInputObserver { get; set; }

    /// <summary>Replaces MoE block outputs where it returns true (MoE surgery's sequential refit).</summary>
    public IMoeBlockOverride? MoeOverride { get; set; }

    public CpuBackend(TransformerModel model, int threads = 0, int chunk = DefaultChunk)
    {
        _model = model;
        _s = model.Shape;
        _pool = new WorkerPool(threads > 0 ? threads : CpuTopology.PhysicalCoreCount);
        _gemm = new Gemm(_pool);
        _gemv = new Gemv(_pool);
        _attention = new Attention(_s, _pool.Threads);
        _rope = new Rope(_s.HeadDim, _s.RopeTheta);
        _steps = new ParallelSteps(_pool, _s, _rope);
        _eps = (float)_s.RmsNormEps;
        _chunk = Math.Max(1, chunk);
    }

    public IKvCache CreateCache(int maxTokens) => new KvCache(_s.Layers, _s.KvHeads, _s.HeadDim, maxTokens, _s.SlidingWindow, _chunk);

    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, IKvCache cache, Span<float> logits)
    {
        var kv = cache as KvCache ?? throw new ArgumentException("the CPU backend needs a cache from its own CreateCache");
        int m = tokens.Length, vocab = _s.Vocab;
        if (m == 0) throw new ArgumentException("no tokens");
        if (positions.Length != m) throw new ArgumentException("one position per token");
        int outputs = ForwardLogits.Rows(logits.Length, vocab, m); // logits of the last `outputs` tokens
        for (int i = 0; i < m; i++)
        {
            if (positions[i] != kv.Length + i) throw new ArgumentException($"position {positions[i]} is not the next one ({kv.Length + i})");
            if ((uint)tokens[i] >= (uint)vocab) throw new MergeException($"token id {tokens[i]} is outside the model's vocabulary (0..{vocab - 1})");
        }
        if (kv.Length + m > kv.MaxLength)
            throw new MergeException($"the sequence ({kv.Length + m} tokens) is longer than the cache ({kv.MaxLength})");

        for (int start = 0; start < m; start += kv.MaxChunk)
        {
            int n = Math.Min(kv.MaxChunk, m - start);
            // this chunk's share of the output rows [m − outputs, m): its last `rows` tokens
            int from = Math.Max(start, m - outputs), rows = start + n - from;
            var part = rows <= 0 ? Span<float>.Empty : logits.Slice((from - (m - outputs)) * vocab, rows * vocab);
            ForwardChunk(tokens.Slice(start, n), kv, part);
        }
    }

    private void ForwardChunk(ReadOnlySpan<int> tokens, KvCache cache, Span<float> logits)
    {
        int m = tokens.Length, p0 = cache.Length, h = _s.Hidden;
        EnsureCapacity(m);

        // 1. token embeddings
        long t = Clock();
        for (int i = 0; i < m; i++) _model.Embedding.WidenRow(tokens[i], 0, h, new Span<float>(_x + (long)i * h, h));
        Lap(ForwardProfile.Stage.Embedding, ref t);
        Probe(p0, m, -1, "the token embedding");

        // 2. the decoder layers, each: x += attention(norm(x)); x += mlp(norm(x)). In the last layer only the rows
        //    whose logits are asked for (the chunk's last `outputs`) get a query and go past the keys and values
        //    (llama.cpp drops the other rows after the attention; we also skip their queries and o_proj): one row for
        //    last-token logits, none for a chunk before the last; each row's result is the same up to the summation
        //    order of the GEMV a single row takes.
        int outputs = logits.Length / _s.Vocab;
        bool observed = LayerInputObserver != null || MoeObserver != null || MoeOverride != null || _probePosition >= 0;
        int rows = m, q0 = p0; // the rows still computed, and the position of the first
        for (int l = 0; l < _s.Layers; l++)
        {
            var layer = _model.Layers[l];
            LayerInputObserver?.ObserveLayerInput(l, new ReadOnlySpan<float>(_x, m * h), m);
            int keep = l == _s.Layers - 1 && !observed ? outputs : m;
            AttentionBlock(layer, l, cache, p0, m, keep);
            rows = keep; q0 = p0 + m - keep;
            if (rows == 0) break;
            Probe(q0, rows, l, "attention output");
            if (_s.IsMoe) MoeBlock(layer, l, rows); else MlpBlock(layer, rows);
            Probe(q0, rows, l, _s.IsMoe ? "moe output" : "mlp output");
        }
        cache.Length = p0 + m;

        // 3. final norm and the language-model head
        if (!logits.IsEmpty) Head(rows, logits);
    }

    public string ModelName => _model.Path;

    public string LocateNonFinite(ReadOnlySpan<int> tokens)
    {
        using var cache = CreateCache(tokens.Length);
        var logits = new float[_s.Vocab];
        var positions = new int[tokens.Length];
        for (int i = 0; i < positions.Length; i++) positions[i] = i;
        _probePosition = tokens.Length - 1;
        _probeFound = null;
        try { Forward(tokens, positions, cache, logits); }
        finally { _probePosition = -1; }
        return _probeFound ?? (FiniteScan.AllFinite(logits) ? "the logits (a CPU re-run gives finite ones)" : "the output head (final norm and lm_head)");
    }

    /// <summary>While locating: records the first block after which the probed position's residual stream is not finite (no allocation otherwise).</summary>
    private void Probe(int p0, int m, int layer, string stage)
    {
        int row = _probePosition - p0;
        if (_probeFound != null || (uint)row >= (uint)m) return;
        if (!FiniteScan.AllFinite(new ReadOnlySpan<float>(_x + (long)row * _s.Hidden, _s.Hidden)))
            _probeFound = layer < 0 ? stage : $"layer {layer} ({stage})";
    }

    /// <summary>
    /// x += o_proj(attention(norm(x))) for the last <paramref name="keep"/> of the <paramref name="m"/> rows, which
    /// end up as rows 0..keep of the activations; the keys and values of all m rows go into the cache.
    /// </summary>
    private void AttentionBlock(LayerWeights w, int layer, KvCache cache, int p0, int m, int keep)
    {
        long t = Clock();
        RmsNorm(x: _x, w.InputNorm, y: _xn, m);
        Lap(ForwardProfile.Stage.Norm, ref t);
        // Keys and values of all m rows (the cache needs them); queries of the kept rows only, into q's first rows.
        int skip = m - keep;
        if (skip == 0) Linear(x: _xn, m, [w.Q, w.K, w.V], [(nint)_q, (nint)_k, (nint)_v]);
        else
        {
            Linear(x: _xn, m, [w.K, w.V], [(nint)_k, (nint)_v]);
            if (keep > 0) Linear(w.Q, x: _xn + (long)skip * _s.Hidden, y: _q, keep);
        }
        Lap(ForwardProfile.Stage.Projections, ref t);
        Bias.AddRows(_q, w.QBias, keep); // Qwen2: q/k/v biases right after the projections, before RoPE
        Bias.AddRows(_k, w.KBias, m);
        Bias.AddRows(_v, w.VBias, m);

        // rotary embeddings on q and k, then k and v into the cache
        _steps.RopeAndStore(_q, _k, _v, cache, layer, p0, m, qFrom: skip);
        Lap(ForwardProfile.Stage.Rope, ref t);
        if (skip > 0)
        {
            // the kept rows of the residual stream to the front (memmove), as their queries are
            new Span<float>(_x + (long)skip * _s.Hidden, keep * _s.Hidden).CopyTo(new Span<float>(_x, keep * _s.Hidden));
            p0 += skip; m = keep;
            if (m == 0) return;
        }

        _attention.Run(_pool, q: _q, cache, layer, p0, m, output: _att);
        Lap(ForwardProfile.Stage.Attention, ref t);

        Linear(w.O, x: _att, y: _tmp, m);
        Lap(ForwardProfile.Stage.Projections, ref t);
        _steps.Add(_x, _tmp, (long)m * _s.Hidden);
        Lap(ForwardProfile.Stage.Elementwise, ref t);
    }

    private void MlpBlock(LayerWeights w, int m)
    {
        long t = Clock();
        RmsNorm(x: _x, w.PostAttentionNorm, y: _xn, m);
        Lap(ForwardProfile.Stage.Norm, ref t);
        Linear(x: _xn, m, [w.Gate!.Value, w.Up!.Value], [(nint)_gate, (nint)_up]);
        Lap(ForwardProfile.Stage.Projections, ref t);
        _steps.SiluMul(_gate, _up, (long)m * _s.Intermediate);
        Lap(ForwardProfile.Stage.Elementwise, ref t);
        Linear(w.Down!.Value, x: _gate, y: _tmp, m);
        Lap(ForwardProfile.Stage.Projections, ref t);
        _steps.Add(_x, _tmp, (long)m * _s.Hidden);
        Lap(ForwardProfile.Stage.Elementwise, ref t);
    }

    /// <summary>Mixtral: softmax over all router logits (float32), top-k (ties → lower index), the k weights renormalized.</summary>
    private void MoeBlock(LayerWeights w, int layer, int m)
    {
        int h = _s.Hidden, inter = _s.Intermediate, experts = _s.Experts, k = _s.ExpertsPerToken;
        RmsNorm(x: _x, w.PostAttentionNorm, y: _xn, m);
        Linear(w.Router!.Value, x: _xn, y: _router, m);
        MoeObserver?.Observe(layer, new ReadOnlySpan<float>(_xn, m * h), new ReadOnlySpan<float>(_router, m * experts), m);
        if (MoeOverride != null && MoeOverride.Replace(layer, new ReadOnlySpan<float>(_xn, m * h), new Span<float>(_moeOut, m * h), m))
        {
            Ops.Add(_x, _moeOut, m * h);
            return;
        }
        for (int i = 0; i < m; i++)
            Routing.TopK(new ReadOnlySpan<float>(_router + (long)i * experts, experts), k, _topExpert.AsSpan(i * k, k), _topWeight.AsSpan(i * k, k));

        new Span<float>(_moeOut, m * h).Clear();
        for (int e = 0; e < experts; e++)
        {
            // gather the tokens routed to expert e
            int rows = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < k; j++)
                    if (_topExpert[i * k + j] == e)
                    {
                        new Span<float>(_xn + (long)i * h, h).CopyTo(new Span<float>(_xe + (long)rows * h, h));
                        _moeToken[rows] = i;
                        _moeWeight[rows] = _topWeight[i * k + j];
                        rows++;
                    }
            if (rows == 0) continue;

            Linear(x: _xe, rows, [w.ExpertGate[e], w.ExpertUp[e]], [(nint)_gate, (nint)_up]);
            _steps.SiluMul(_gate, _up, (long)rows * inter);
            Linear(w.ExpertDown[e], x: _gate, y: _ye, rows);

            for (int r = 0; r < rows; r++)
                Ops.AddScaled(_moeOut + (long)_moeToken[r] * h, _ye + (long)r * h, _moeWeight[r], h);
        }
        _steps.Add(_x, _moeOut, (long)m * h);
    }

    /// <summary>Logits of the last logits.Length / vocab of the <paramref name="m"/> rows.</summary>
    private void Head(int m, Span<float> logits)
    {
        int h = _s.Hidden;
        int first = m - logits.Length / _s.Vocab;
        long offset = (long)first * h;
        long t = Clock();
        RmsNorm(x: _x + offset, _model.FinalNorm, y: _xn + offset, m - first);
        Lap(ForwardProfile.Stage.Norm, ref t);
        fixed (float* y = logits) Linear(_model.LmHead, x: _xn + offset, y: y, m - first);
        Lap(ForwardProfile.Stage.Head, ref t);
    }

    /// <summary>y[i] = rmsnorm(x[i]) · weight for each of the <paramref name="rows"/> rows of width hidden.</summary>
    private void RmsNorm(float* x, float[] weight, float* y, int rows) => _steps.RmsNorm(x, weight, y, rows, _s.Hidden, _eps);

    private long Clock() => Profile != null ? Stopwatch.GetTimestamp() : 0;

    private void Lap(ForwardProfile.Stage stage, ref long since) => Profile?.Lap(stage, ref since);

    /// <summary>Largest batch that uses one GEMV per token instead of the GEMM (which pads batches to 32).</summary>
    private const int GemvRows = 4;

    /// <summary>y[rows, W.Rows] = x[rows, W.Cols] · Wᵀ: a group of one (the GEMV and the GEMM give it the same bits as alone).</summary>
    private void Linear(WeightMatrix w, float* x, float* y, int rows) => Linear(x, rows, [w], [(nint)y]);

    /// <summary>
    /// Projections of one x (q/k/v, gate/up) into their own y: per token one GEMV group (x prepared once, one pool
    /// run for all rows; the same bits as one GEMV each), or x packed once into the GEMM's groups and all of them in
    /// one GEMM run.
    /// </summary>
    private void Linear(float* x, int rows, ReadOnlySpan<WeightMatrix> ws, ReadOnlySpan<nint> ys)
    {
        if (rows > GemvRows)
        {
            _packed.Pack(x, rows, ws[0].Cols, ws[0].Cols, _pool);
            _gemm.Multiply(_packed, ws, ys);
            return;
        }
        Span<nint> yi = stackalloc nint[ws.Length];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < ws.Length; j++) yi[j] = ys[j] + (nint)((long)i * ws[j].Rows * sizeof(float));
            _gemv.Multiply(x + (long)i * ws[0].Cols, ws, yi);
        }
    }

    private void EnsureCapacity(int m)
    {
        if (m <= _capacity) return;
        FreeBuffers();
        int h = _s.Hidden, inter = _s.Intermediate;
        float* A(long n) => (float*)NativeMemory.AlignedAlloc((nuint)Math.Max(n, 1) * sizeof(float), 64);
        _x = A((long)m * h); _xn = A((long)m * h); _tmp = A((long)m * h);
        _q = A((long)m * _s.QDim); _att = A((long)m * _s.QDim);
        _k = A((long)m * _s.KvDim); _v = A((long)m * _s.KvDim);
        _gate = A((long)m * inter); _up = A((long)m * inter);
        if (_s.IsMoe)
        {
            _router = A((long)m * _s.Experts); _moeOut = A((long)m * h);
            _xe = A((long)m * h); _ye = A((long)m * h);
            _moeToken = new int[m]; _moeWeight = new float[m];
            _topExpert = new int[m * _s.ExpertsPerToken]; _topWeight = new float[m * _s.ExpertsPerToken];
        }
        _capacity = m;
    }

    private void FreeBuffers()
    {
        foreach (var p in new[] { _x, _xn, _tmp, _q, _att, _k, _v, _gate, _up, _router, _moeOut, _xe, _ye })
            NativeMemory.AlignedFree(p);
        _x = _xn = _tmp = _q = _att = _k = _v = _gate = _up = _router = _moeOut = _xe = _ye = null;
        _capacity = 0;
    }

    public void Dispose()
    {
        FreeBuffers();
        _packed.Dispose();
        _gemm.Dispose();
        _gemv.Dispose();
        _attention.Dispose();
        _steps.Dispose();
        _pool.Dispose();
    }
}
