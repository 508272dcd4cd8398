using Mistral.Merge.Numerics;

namespace Mistral.Merge.Inference;

/// <summary>
/// Scores one perplexity window's logits on a worker pool: per row, the finiteness scan and, for a scored
/// position, −log softmax[target] (<see cref="LogMath.Nll"/>, the same per-row code as the serial loop). The
/// row NLLs are then added in position order, so the sum has the serial loop's bits at any thread count.
/// </summary>
internal sealed class WindowScorer : IParallelWork, IDisposable
{
    private readonly WorkerPool _pool;
    private readonly int _vocab;
    private readonly double[] _nll;
    private readonly bool[] _finite;
    private float[] _logits = [];
    private int[] _ids = [];
    private EvalWindow _window;

    public WindowScorer(int vocab, int maxRows, int threads)
    {
        _vocab = vocab;
        _nll = new double[maxRows];
        _finite = new bool[maxRows];
        _pool = new WorkerPool(Math.Max(1, Math.Min(threads, maxRows)));
    }

    /// <summary>
    /// Adds the window's NLLs (tokens at [ScoreFrom, End), from its <see cref="EvalWindow.LogitRows"/> rows of
    /// <paramref name="logits"/>, those of its last positions) to <paramref name="nll"/>; false (nothing added)
    /// when any row is not finite.
    /// </summary>
    public bool Score(float[] logits, int[] ids, EvalWindow window, ref double nll)
    {
        int rows = window.LogitRows;
        _logits = logits; _ids = ids; _window = window;
        _pool.Run(this, rows);
        _logits = []; _ids = [];
        for (int r = 0; r < rows; r++) if (!_finite[r]) return false;
        for (int t = window.ScoreFrom; t < window.End; t++) nll += _nll[t - 1 - window.FirstLogit];
        return true;
    }

    public void Execute(int index, int worker)
    {
        var row = _logits.AsSpan(index * _vocab, _vocab);
        bool finite = _finite[index] = FiniteScan.AllFinite(row);
        int target = _window.FirstLogit + index + 1;
        if (finite && target >= _window.ScoreFrom && target < _window.End) _nll[index] = LogMath.Nll(row, _ids[target]);
    }

    public void Dispose() => _pool.Dispose();
}
