using System.Runtime.InteropServices;

namespace Mistral.Merge.Numerics;

/// <summary>
/// Y[M, N] = X[M, K] · Wᵀ for a weight W [N, K] in its stored dtype (the batched projection of prefill /
/// perplexity), structured like BLIS's sgemm. The activations are packed once into groups of MR tokens (6 on AVX2 and
/// NEON, 12 on AVX-512), each a contiguous [kc][MR] per K slice (<see cref="PackedInput"/>). A work item is a block of
/// up to 64 weight rows × a chunk of up to 512 tokens (the forward pass's whole batch, so each weight micro-panel is
/// widened once per call); per K slice its worker widens and transposes the block micro-panel by micro-panel into
/// [kc][NR] (<see cref="WeightPanel"/>: NR = 16 rows × 256 columns, 32 × 128 on AVX-512
/// (<see cref="PackedGemmKernel.DepthFor"/>); 16 KB, meant to stay in L1) and runs the register-blocked micro-kernel
/// of <see cref="PackedGemmKernel"/> on it against every token group of the chunk, streamed from L2 (L3 past about
/// 256 tokens). The MR × NR accumulator tiles of the item are kept in a per-worker buffer across K slices (writing
/// them into Y's rows, 16 KB apart, cost 8–10 %: a new page per row) and copied into Y once, each token's outputs one
/// contiguous run. When M needs several chunks, the items of one weight block are adjacent, so the threads share its
/// reads from memory. Every output is one float32 FMA chain over k in increasing order, so results do not depend on
/// the vector width, the thread count or the chunks.
/// </summary>
public sealed unsafe class Gemm : IParallelWork, IDisposable
{
    public const int MaxKBlock = 256;   // the deepest K slice of any width (PackedGemmKernel.DepthFor)
    public const int MaxBlockRows = 64; // weight rows per work item (a multiple of every micro-panel width)
    public const int ChunkTokens = 512; // tokens per work item, about (whole groups)

    private readonly WorkerPool _pool;
    private readonly int _bits, _mr, _nr, _kc, _maxChunkGroups;
    private readonly float*[] _rows;    // per worker: NR widened weight rows of one K slice (row stride MaxKBlock)
    private readonly float*[] _panel;   // per worker: their micro-panel [kc][NR]
    private readonly float*[] _tiles;   // per worker: the item's tiles [block rows / NR][groups][MR][NR]

    /// <summary>The most matrices one <see cref="Multiply(PackedInput, ReadOnlySpan{WeightMatrix}, ReadOnlySpan{nint})"/> takes.</summary>
    public const int MaxGroup = 3;

    // The current call (set by Multiply, read by Execute): per matrix its weights, output, row stride, block rows and
    // first item.
    private PackedInput? _x;
    private readonly WeightMatrix[] _w = new WeightMatrix[MaxGroup];
    private readonly nint[] _y = new nint[MaxGroup];
    private readonly int[] _ldy = new int[MaxGroup], _blockRows = new int[MaxGroup], _firstItem = new int[MaxGroup + 1];
    private int _chunks, _chunkGroups;

    public Gemm(WorkerPool pool) : this(pool, PackedGemmKernel.NativeBits) { }

    /// <summary>A GEMM that runs the micro-kernel of one vector width (512, 256, 128 or 0 = scalar): for tests.</summary>
    internal Gemm(WorkerPool pool, int vectorBits)
    {
        if (vectorBits is not (512 or 256 or 128 or 0)) throw new ArgumentOutOfRangeException(nameof(vectorBits));
        _pool = pool;
        _bits = vectorBits;
        _mr = PackedGemmKernel.TokensFor(vectorBits);
        _nr = PackedGemmKernel.WeightsFor(vectorBits);
        _kc = PackedGemmKernel.DepthFor(vectorBits);
        _maxChunkGroups = (ChunkTokens + _mr - 1) / _mr;
        _rows = new float*[pool.Threads];
        _panel = new float*[pool.Threads];
        _tiles = new float*[pool.Threads];
        for (int i = 0; i < pool.Threads; i++)
        {
            _rows[i] = (float*)NativeMemory.AlignedAlloc((nuint)(_nr * MaxKBlock * sizeof(float)), 64);
            _panel[i] = (float*)NativeMemory.AlignedAlloc((nuint)(_nr * _kc * sizeof(float)), 64);
            _tiles[i] = (float*)NativeMemory.AlignedAlloc((nuint)(MaxBlockRows * _maxChunkGroups * _mr * sizeof(float)), 64);
        }
    }

    /// <summary>Y (row stride <paramref name="ldy"/> floats) = packed X · Wᵀ; X.K must equal W.Cols.</summary>
    public void Multiply(PackedInput x, WeightMatrix w, float* y, int ldy)
    {
        if (ldy < w.Rows) throw new ArgumentException("ldy < N");
        Run(x, [w], [(nint)y], [ldy]);
    }

    /// <summary>
    /// Y_i = packed X · W_iᵀ (row stride W_i.Rows) for up to <see cref="MaxGroup"/> matrices that read the same X
    /// (q/k/v, gate/up): the items of all of them go out in one pool run, so one wait at the end instead of one per
    /// matrix, and the small ones fill the others' tails. Each Y_i gets the bits the single-matrix call gives it.
    /// </summary>
    public void Multiply(PackedInput x, ReadOnlySpan<WeightMatrix> ws, ReadOnlySpan<nint> ys)
    {
        if (ws.Length == 0 || ws.Length > MaxGroup || ys.Length != ws.Length) throw new ArgumentException($"a GEMM group has 1..{MaxGroup} matrices, one output each");
        Span<int> ldys = stackalloc int[ws.Length];
        for (int i = 0; i < ws.Length; i++) ldys[i] = ws[i].Rows;
        Run(x, ws, ys, ldys);
    }

    /// <summary>Checks the operands, then sets up the call's items (per matrix: weight blocks × token chunks) and runs them.</summary>
    private void Run(PackedInput x, ReadOnlySpan<WeightMatrix> ws, ReadOnlySpan<nint> ys, ReadOnlySpan<int> ldys)
    {
        if (x.GroupWidth != _mr || x.Depth != _kc) throw new ArgumentException($"X is packed in {x.GroupWidth}-token groups of {x.Depth} columns, this GEMM's kernel takes {_mr} × {_kc}");
        foreach (var w in ws)
            if (x.K != w.Cols) throw new ArgumentException($"GEMM inner dimensions differ: X has {x.K} columns, W has {w.Cols}");
        // Token chunks of equal size; then, per matrix, weight blocks halved (64 → 32 → 16 rows) until every thread
        // has about 8 items of it, so small N (k/v_proj) still keeps all threads busy with balanced work.
        _chunks = (x.Groups + _maxChunkGroups - 1) / _maxChunkGroups;
        _chunkGroups = (x.Groups + _chunks - 1) / _chunks;
        _firstItem[0] = 0;
        for (int i = 0; i < ws.Length; i++)
        {
            var w = ws[i];
            int blockRows = MaxBlockRows;
            while (blockRows > _nr && (w.Rows + blockRows - 1) / blockRows * _chunks < 8 * _pool.Threads) blockRows /= 2;
            _w[i] = w; _y[i] = ys[i]; _ldy[i] = ldys[i]; _blockRows[i] = blockRows;
            _firstItem[i + 1] = _firstItem[i] + (w.Rows + blockRows - 1) / blockRows * _chunks;
        }
        _x = x;
        try { _pool.Run(this, _firstItem[ws.Length]); }
        finally { _x = null; }
    }

    /// <summary>Convenience overload for tests: packs <paramref name="x"/> [m, k] and multiplies.</summary>
    public void Multiply(ReadOnlySpan<float> x, int m, WeightMatrix w, Span<float> y)
    {
        using var packed = new PackedInput(_mr, _kc);
        packed.Pack(x, m, w.Cols);
        fixed (float* py = y) Multiply(packed, w, py, w.Rows);
    }

    void IParallelWork.Execute(int item, int worker)
    {
        int m = 0;
        while (item >= _firstItem[m + 1]) m++;
        Execute(_w[m], (float*)_y[m], _ldy[m], _blockRows[m], item - _firstItem[m], worker);
    }

    /// <summary>Item <paramref name="item"/> of one matrix: a block of its rows × a token chunk.</summary>
    private void Execute(WeightMatrix w, float* y, int ldy, int blockRows, int item, int worker)
    {
        var x = _x!;
        int n0 = item / _chunks * blockRows;
        int rows = Math.Min(blockRows, w.Rows - n0);
        int g0 = item % _chunks * _chunkGroups;
        int groups = Math.Min(_chunkGroups, x.Groups - g0);
        int tile = _mr * _nr;
        float* panel = _panel[worker], tiles = _tiles[worker];
        for (int k0 = 0; k0 < x.K; k0 += _kc)
        {
            int kc = Math.Min(_kc, x.K - k0);
            for (int r0 = 0; r0 < rows; r0 += _nr)
            {
                WeightPanel.Pack(w, n0 + r0, Math.Min(_nr, rows - r0), k0, kc, _nr, _rows[worker], panel);
                // The next micro-panel's weights are fetched a few cache lines after each kernel call, so that its
                // packing does not wait on memory.
                int pr = r0 + _nr, pk = k0;
                if (pr >= rows) { pr = 0; pk = k0 + _kc; }
                var next = pk < x.K ? new WeightPrefetch(w, n0 + pr, Math.Min(_nr, rows - pr), pk, Math.Min(_kc, x.K - pk), groups) : default;
                float* t = tiles + r0 / _nr * groups * tile;
                for (int g = 0; g < groups; g++)
                {
                    PackedGemmKernel.Run(_bits, x.Group(g0 + g, k0), panel, kc, t + g * tile, k0 == 0);
                    next.Step();
                }
            }
        }
        // The tiles into Y: each token's outputs of a micro-panel are one contiguous run of its row.
        for (int r0 = 0; r0 < rows; r0 += _nr)
        {
            int nr = Math.Min(_nr, rows - r0);
            float* t = tiles + r0 / _nr * groups * tile;
            for (int g = 0; g < groups; g++)
            {
                int m0 = (g0 + g) * _mr, mEnd = Math.Min(_mr, x.M - m0);
                for (int j = 0; j < mEnd; j++)
                    new ReadOnlySpan<float>(t + g * tile + j * _nr, nr).CopyTo(new Span<float>(y + (long)(m0 + j) * ldy + n0 + r0, nr));
            }
        }
    }

    public void Dispose()
    {
        for (int i = 0; i < _rows.Length; i++)
        {
            NativeMemory.AlignedFree(_rows[i]); _rows[i] = null;
            NativeMemory.AlignedFree(_panel[i]); _panel[i] = null;
            NativeMemory.AlignedFree(_tiles[i]); _tiles[i] = null;
        }
    }
}

/// <summary>
/// Activations X [M, K] packed for the micro-kernel: tokens in groups of <see cref="GroupWidth"/> (the kernel's MR),
/// K cut into slices of <see cref="Depth"/> columns (the kernel's K slice; the last may be shorter, kc wide); slice by
/// slice, every group is stored as a contiguous [kc][GroupWidth] and the groups of a slice are adjacent, so the tokens
/// one kernel call broadcasts are one sequential stream. Element X[g·MR + j, k0 + i] is at
/// k0·Groups·MR + g·kc·MR + i·MR + j; zero past M. Packed once and reused by every projection that reads the same
/// input (q/k/v, gate/up).
/// </summary>
public sealed unsafe class PackedInput : IParallelWork, IDisposable
{
    /// <summary>The least M·K packed on the pool (smaller inputs: on the calling thread).</summary>
    private const long ParallelElements = 1 << 16;

    public float* Data { get; private set; }
    public int M { get; private set; }
    public int K { get; private set; }
    /// <summary>Tokens per group: the micro-kernel's MR (<see cref="PackedGemmKernel.TokensFor"/>).</summary>
    public int GroupWidth { get; }
    /// <summary>Columns per K slice: the kernel's depth (<see cref="PackedGemmKernel.DepthFor"/>).</summary>
    public int Depth { get; }
    public int Groups => (M + GroupWidth - 1) / GroupWidth;
    private long _capacity;
    private float* _x; // the input of the current Pack
    private int _ldx;

    /// <summary>Packs for the micro-kernel of this machine's widest vector width.</summary>
    public PackedInput() : this(PackedGemmKernel.TokensFor(PackedGemmKernel.NativeBits), PackedGemmKernel.DepthFor(PackedGemmKernel.NativeBits)) { }

    public PackedInput(int groupWidth, int depth)
    {
        if (groupWidth is not (6 or 12)) throw new ArgumentOutOfRangeException(nameof(groupWidth));
        if (depth is not (128 or 256)) throw new ArgumentOutOfRangeException(nameof(depth));
        GroupWidth = groupWidth;
        Depth = depth;
    }

    /// <summary>The start of group <paramref name="group"/>'s part of the K slice beginning at <paramref name="k0"/>.</summary>
    public float* Group(int group, int k0) => Data + (long)k0 * Groups * GroupWidth + (long)group * Math.Min(Depth, K - k0) * GroupWidth;

    public void Pack(ReadOnlySpan<float> x, int m, int k)
    {
        if (x.Length < (long)m * k) throw new ArgumentException("X is shorter than M·K");
        fixed (float* p = x) Pack(p, m, k, k);
    }

    /// <summary>Packs rows x[i·ldx .. i·ldx+k) for i &lt; m; with a pool, the (K slice, group) parts are packed in parallel.</summary>
    public void Pack(float* x, int m, int k, int ldx, WorkerPool? pool = null)
    {
        M = m; K = k;
        long need = (long)Groups * GroupWidth * k;
        if (need > _capacity)
        {
            NativeMemory.AlignedFree(Data);
            Data = (float*)NativeMemory.AlignedAlloc((nuint)need * sizeof(float), 64);
            _capacity = need;
        }
        _x = x; _ldx = ldx;
        int parts = (k + Depth - 1) / Depth * Groups;
        if (pool != null && (long)m * k >= ParallelElements) pool.Run(this, parts);
        else for (int i = 0; i < parts; i++) Execute(i, 0);
        _x = null;
    }

    /// <summary>Packs the part of group <c>index % Groups</c> in K slice <c>index / Groups</c>.</summary>
    void IParallelWork.Execute(int index, int worker) => Execute(index, worker);

    private void Execute(int index, int worker)
    {
        int g = index % Groups, k0 = index / Groups * Depth;
        int kc = Math.Min(Depth, K - k0), s = GroupWidth;
        int t0 = g * s, tEnd = Math.Min(M, t0 + s);
        float* part = Group(g, k0);
        if (tEnd - t0 < s) new Span<float>(part, kc * s).Clear(); // tokens past M are zero
        for (int t = t0; t < tEnd; t++)
        {
            float* src = _x + (long)t * _ldx + k0;
            float* dst = part + (t - t0);
            for (int i = 0; i < kc; i++) dst[(long)i * s] = src[i];
        }
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(Data);
        Data = null; _capacity = 0;
    }
}
