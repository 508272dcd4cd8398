using Mistral.Merge.Recipes;

namespace Mistral.Merge.Merging;

/// <summary>
/// The rows of an embedding-like task (embed_tokens, lm_head) under a built tokenizer: for every input, output row t is
/// its own row of token t, or the token's default (a tokens entry, the one model that has it, zeros, the base_model's
/// row, or the mean of the models that have it); rows from |vocab| on are the mean of the input's rows below |vocab|.
/// Rows are gathered one at a time from the inputs' memory maps, so memory stays bounded by the chunk.
/// </summary>
public sealed class EmbeddingRows
{
    private const int Default = -1;

    /// <summary>Per input, per output token: its own row, or <see cref="Default"/>.</summary>
    private readonly int[][] _own;
    /// <summary>Per output token needing one: the rows whose float64 mean is the default (none: zeros; one: that row).</summary>
    private readonly (int Input, int Row)[]?[] _defaults;
    private readonly float[]?[] _padMeans;
    private readonly object _lock = new();

    public int VocabCount { get; }
    public long Rows { get; }

    private EmbeddingRows(int[][] own, (int, int)[]?[] defaults, int vocabCount, long rows)
    {
        _own = own;
        _defaults = defaults;
        _padMeans = new float[own.Length][];
        VocabCount = vocabCount;
        Rows = rows;
    }

    /// <summary>
    /// The rows for a task over <paramref name="inputs"/>; <paramref name="baseModel"/> is the recipe's base_model (null
    /// when it sets none). Problems (a tokens entry naming a model that is not an input or lacks the token, an
    /// out-of-range token_id, a base_model that is not an input) go to <paramref name="p"/>; null when there are any.
    /// </summary>
    public static EmbeddingRows? Build(OutputTokenizer tok, IReadOnlyList<TaskInput> inputs, InputModel? baseModel, Mark at, RecipeProblems p)
    {
        string tensor = inputs.Count > 0 ? inputs[0].TensorName : "";
        if (baseModel != null && !inputs.Any(i => i.Model == baseModel))
        {
            p.Add(at, $"base_model '{baseModel.Text}' must be an input of {tensor} to build its rows for the tokenizer");
            return null;
        }
        int n = tok.VocabCount;
        var own = new int[inputs.Count][];
        for (int i = 0; i < inputs.Count; i++)
        {
            own[i] = new int[n];
            long stored = inputs[i].Info.Shape[0];
            for (int t = 0; t < n; t++)
            {
                int id = tok.ModelId(inputs[i].Model, t);
                own[i][t] = id >= 0 && id < stored ? id : Default;
            }
        }
        var entries = tok.Spec.Tokens.ToDictionary(e => e.Token, StringComparer.Ordinal);
        var defaults = new (int, int)[]?[n];
        bool ok = true;
        for (int t = 0; t < n; t++)
        {
            entries.TryGetValue(tok.Tokens[t], out var e);
            if (e is { Force: true }) foreach (var o in own) o[t] = Default;
            if (own.All(o => o[t] != Default)) continue;
            var d = e != null ? FromEntry(tok, e, inputs, own, t, p) : Fallback(inputs, own, t, baseModel);
            if (d == null) { ok = false; continue; }
            defaults[t] = d;
        }
        return ok ? new EmbeddingRows(own, defaults, n, tok.Rows) : null;
    }

    /// <summary>Rules 2–5: the one input that has t; none: zeros; base_model's row; else the mean of those that have it.</summary>
    private static (int, int)[] Fallback(IReadOnlyList<TaskInput> inputs, int[][] own, int t, InputModel? baseModel)
    {
        var having = new List<(int, int)>();
        for (int i = 0; i < inputs.Count; i++)
            if (own[i][t] != Default) having.Add((i, own[i][t]));
        if (having.Count <= 1) return having.ToArray();
        int b = baseModel == null ? -1 : having.FindIndex(h => inputs[h.Item1].Model == baseModel);
        return b >= 0 ? [having[b]] : having.ToArray();
    }

    /// <summary>Rule 1: the tokens entry's source (MODEL, model_token by id or by token, zero).</summary>
    private static (int, int)[]? FromEntry(OutputTokenizer tok, TokenSpec e, IReadOnlyList<TaskInput> inputs, int[][] own, int t, RecipeProblems p)
    {
        if (e.Kind == TokenSourceKind.Zero) return [];
        int i = -1;
        for (int k = 0; k < inputs.Count && i < 0; k++) if (inputs[k].Model.Text == e.Model!.Text) i = k;
        string tensor = inputs[0].TensorName;
        if (i < 0) { p.Add(e.Mark, $"tokenizer.tokens '{e.Token}': model '{e.Model!.Text}' is not an input of {tensor}"); return null; }
        var m = inputs[i].Model;
        long stored = inputs[i].Info.Shape[0];
        int row = e.Kind == TokenSourceKind.Model ? tok.ModelId(m, t)
            : e.TokenId is int id ? (id < stored && id < (tok.Models.TryGetValue(m, out var mv) ? mv.Rows : stored) ? id : -1)
            : tok.OwnId(m, e.SourceToken!);
        if (row < 0 || row >= stored)
        {
            var what = e.Kind == TokenSourceKind.Model ? $"token '{e.Token}'" : e.TokenId is int tid ? $"token_id {tid}" : $"token '{e.SourceToken}'";
            p.Add(e.Mark, $"tokenizer.tokens '{e.Token}': model '{m.Text}' has no {what} (rows: {stored})");
            return null;
        }
        return [(i, row)];
    }

    /// <summary>Fills <paramref name="dst"/> with rows [row0, row0+count) of input <paramref name="i"/>'s matrix; returns the largest magnitude bit pattern seen (as <see cref="FiniteCheck"/> scans).</summary>
    public uint Fill(IReadOnlyList<TaskInput> inputs, int i, long row0, int count, int cols, Span<float> dst)
    {
        uint max = 0;
        var scratch = new float[cols];
        var sum = new double[cols];
        for (int r = 0; r < count; r++)
        {
            long t = row0 + r;
            var row = dst.Slice(r * cols, cols);
            if (t >= VocabCount) PadMean(inputs, i, cols).AsSpan(0, cols).CopyTo(row);
            else max = Math.Max(max, Row(inputs, i, (int)t, cols, row, scratch, sum));
        }
        return max;
    }

    private uint Row(IReadOnlyList<TaskInput> inputs, int i, int t, int cols, Span<float> dst, float[] scratch, double[] sum)
    {
        int own = _own[i][t];
        if (own != Default) return ReadRow(inputs[i], own, cols, dst);
        var d = _defaults[t]!;
        if (d.Length == 0) { dst.Clear(); return 0; }
        if (d.Length == 1) return ReadRow(inputs[d[0].Input], d[0].Row, cols, dst);
        uint max = 0;
        Array.Clear(sum);
        foreach (var (j, row) in d)
        {
            max = Math.Max(max, ReadRow(inputs[j], row, cols, scratch.AsSpan(0, cols)));
            for (int c = 0; c < cols; c++) sum[c] += scratch[c];
        }
        for (int c = 0; c < cols; c++) dst[c] = (float)(sum[c] / d.Length);
        return max;
    }

    private static uint ReadRow(TaskInput input, int row, int cols, Span<float> dst)
    {
        int size = input.Info.DType.SizeOf();
        var bytes = input.File.GetBytes(input.Info, row * input.StoredCols * size, cols * size);
        return FiniteCheck.ToSingleScanned(bytes, input.Info.DType, dst);
    }

    /// <summary>The mean (float64 sum / |vocab|, then float32) of input <paramref name="i"/>'s rows below |vocab|, computed once.</summary>
    private float[] PadMean(IReadOnlyList<TaskInput> inputs, int i, int cols)
    {
        lock (_lock)
        {
            if (_padMeans[i] is { } done) return done;
            var sum = new double[cols];
            var row = new float[cols];
            var scratch = new float[cols];
            var rowSum = new double[cols];
            for (int t = 0; t < VocabCount; t++)
            {
                Row(inputs, i, t, cols, row, scratch, rowSum);
                for (int c = 0; c < cols; c++) sum[c] += row[c];
            }
            var mean = new float[cols];
            for (int c = 0; c < cols; c++) mean[c] = (float)(sum[c] / VocabCount);
            return _padMeans[i] = mean;
        }
    }
}
