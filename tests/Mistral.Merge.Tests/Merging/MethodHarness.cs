using Mistral.Merge.Merging;
using Mistral.Merge.Planning;

namespace Mistral.Merge.Tests.Merging;

/// <summary>Runs one method alone on tiny in-memory tensors (defaults filled from its spec).</summary>
internal static class MethodHarness
{
    public static float[] Run(string method, float[][] inputs, int baseIndex, long rows, long cols,
        Dictionary<string, object?>? methodParams = null, Dictionary<string, object?>[]? modelParams = null,
        ulong seed = 0, string name = "model.layers.0.mlp.up_proj.weight", int chunkRows = 0)
    {
        var m = MergeMethods.Get(method);
        var global = Values(m.Spec, ParamScope.Global, methodParams);
        var models = new List<ParamValues>();
        var ordinals = new int[inputs.Length];
        int ord = 0;
        for (int i = 0; i < inputs.Length; i++)
        {
            models.Add(Values(m.Spec, ParamScope.PerModel, modelParams?[i]));
            ordinals[i] = i == baseIndex ? -1 : ord++;
        }
        var task = new MethodTask { OutputName = name, Rows = rows, Cols = cols, BaseIndex = baseIndex, Ordinals = ordinals, Global = global, PerModel = models, Seed = seed };
        var output = new float[rows * cols];
        var state = m.Begin(task);
        if (chunkRows <= 0) chunkRows = (int)rows;
        Chunk Slice(long r0)
        {
            int n = (int)Math.Min(chunkRows, rows - r0);
            return new Chunk { Inputs = inputs.Select(x => x.AsSpan((int)(r0 * cols), (int)(n * cols)).ToArray()).ToArray(), Row0 = r0, RowCount = n, Length = (int)(n * cols) };
        }
        if (m.NeedsReduction(task))
        {
            do
            {
                for (long r = 0; r < rows; r += chunkRows) m.Accumulate(state, task, Slice(r));
            }
            while (m.Finish(state, task));
        }
        for (long r = 0; r < rows; r += chunkRows)
        {
            var c = Slice(r);
            m.Apply(state, task, c, output.AsSpan((int)(r * cols), c.Length));
        }
        return output;
    }

    /// <summary>One scope's values: the given ones by name, else the declarations' defaults.</summary>
    private static ParamValues Values(MethodSpec spec, ParamScope scope, Dictionary<string, object?>? given)
    {
        var values = spec.NewValues(scope);
        foreach (var d in values.Defs) values.Set(d, given != null && given.TryGetValue(d.Name, out var v) ? v : d.Default);
        return values;
    }

    public static Dictionary<string, object?> P(params (string, object?)[] kv) => kv.ToDictionary(x => x.Item1, x => x.Item2);

    public static void Near(float[] expected, float[] actual, float tol = 2e-7f)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])), $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }
}
