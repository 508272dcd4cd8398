namespace Mistral.Merge.Moe;

/// <summary>
/// Dense linear assignment (square n×n, float32 costs, row-major): Jonker–Volgenant (LAPJV, 1987),
/// i.e. column reduction with reduction transfer, two rounds of augmenting row reduction, then
/// shortest-augmenting-path (Dijkstra-like) augmentation for the rows still free. Worst case O(n³) time,
/// O(n) extra memory besides the matrix; on similarity matrices where most units have a clear partner the
/// initial phases assign almost every row and the run is close to O(n²). Dual variables and reduced costs
/// are float64 so that the equality tests of the scan phase are exact for the float32 inputs.
/// Follows the structure of Jonker's reference code (and its widely used C port, src-d/lapjv).
/// </summary>
public static class LinearAssignment
{
    /// <summary>Row → column assignment minimizing Σ cost[i, x[i]].</summary>
    public static int[] SolveMin(ReadOnlySpan<float> cost, int n, CancellationToken token = default)
    {
        if (n < 0 || (long)n * n != cost.Length) throw new ArgumentException($"cost must be {n}×{n}");
        foreach (var c in cost)
            if (!float.IsFinite(c)) throw new MergeException("assignment: the cost/similarity matrix holds NaN or infinity");
        var x = new int[n];
        if (n == 0) return x;
        if (n == 1) { x[0] = 0; return x; }
        var y = new int[n];
        var v = new double[n];
        var free = new int[n];
        int nFree = ColumnReductionAndTransfer(cost, n, free, x, y, v);
        for (int round = 0; nFree > 0 && round < 2; round++)
            nFree = AugmentingRowReduction(cost, n, free, nFree, x, y, v);
        if (nFree > 0) Augment(cost, n, free, nFree, x, y, v, token);
        return x;
    }

    /// <summary>Row → column assignment maximizing Σ score[i, x[i]] (negates a copy).</summary>
    public static int[] SolveMax(ReadOnlySpan<float> score, int n, CancellationToken token = default)
    {
        var c = new float[score.Length];
        for (int i = 0; i < c.Length; i++) c[i] = -score[i];
        return SolveMin(c, n, token);
    }

    /// <summary>Σ cost[i, x[i]] in float64.</summary>
    public static double Total(ReadOnlySpan<float> cost, int n, ReadOnlySpan<int> x)
    {
        double s = 0;
        for (int i = 0; i < n; i++) s += cost[i * n + x[i]];
        return s;
    }

    private static int ColumnReductionAndTransfer(ReadOnlySpan<float> cost, int n, int[] free, int[] x, int[] y, double[] v)
    {
        Array.Fill(x, -1);
        Array.Fill(v, double.PositiveInfinity);
        Array.Clear(y);
        // Column minima, scanning rows in memory order; strict < keeps the lowest row on ties.
        for (int i = 0; i < n; i++)
        {
            var row = cost.Slice(i * n, n);
            for (int j = 0; j < n; j++)
            {
                double c = row[j];
                if (c < v[j]) { v[j] = c; y[j] = i; }
            }
        }
        var unique = new bool[n];
        Array.Fill(unique, true);
        for (int j = n - 1; j >= 0; j--)
        {
            int i = y[j];
            if (x[i] < 0) x[i] = j;
            else { unique[i] = false; y[j] = -1; }
        }
        int nFree = 0;
        for (int i = 0; i < n; i++)
        {
            if (x[i] < 0) { free[nFree++] = i; continue; }
            if (!unique[i]) continue;
            // Reduction transfer: lower v[x[i]] by the row's second-best reduced cost.
            int j0 = x[i];
            double min = double.PositiveInfinity;
            var row = cost.Slice(i * n, n);
            for (int j = 0; j < n; j++)
            {
                if (j == j0) continue;
                double c = row[j] - v[j];
                if (c < min) min = c;
            }
            v[j0] -= min;
        }
        return nFree;
    }

    private static int AugmentingRowReduction(ReadOnlySpan<float> cost, int n, int[] free, int nFree, int[] x, int[] y, double[] v)
    {
        int current = 0, newFree = 0;
        long rrCount = 0;
        while (current < nFree)
        {
            rrCount++;
            int fi = free[current++];
            var row = cost.Slice(fi * n, n);
            int j1 = 0, j2 = -1;
            double v1 = row[0] - v[0], v2 = double.PositiveInfinity;
            for (int j = 1; j < n; j++)
            {
                double c = row[j] - v[j];
                if (c < v2)
                {
                    if (c >= v1) { v2 = c; j2 = j; }
                    else { v2 = v1; v1 = c; j2 = j1; j1 = j; }
                }
            }
            int i0 = y[j1];
            double v1New = v[j1] - (v2 - v1);
            bool lowers = v1New < v[j1];
            if (rrCount < (long)current * n)
            {
                if (lowers) v[j1] = v1New;
                else if (i0 >= 0 && j2 >= 0) { j1 = j2; i0 = y[j2]; }
                if (i0 >= 0)
                {
                    if (lowers) free[--current] = i0;
                    else free[newFree++] = i0;
                }
            }
            else if (i0 >= 0) free[newFree++] = i0;
            x[fi] = j1;
            y[j1] = fi;
        }
        return newFree;
    }

    private static void Augment(ReadOnlySpan<float> cost, int n, int[] free, int nFree, int[] x, int[] y, double[] v, CancellationToken token)
    {
        var pred = new int[n];
        var cols = new int[n];
        var d = new double[n];
        for (int f = 0; f < nFree; f++)
        {
            if ((f & 63) == 0) token.ThrowIfCancellationRequested();
            int start = free[f];
            int j = FindPath(cost, n, start, y, v, pred, cols, d);
            int i = -1, steps = 0;
            while (i != start)
            {
                i = pred[j];
                y[j] = i;
                (j, x[i]) = (x[i], j);
                if (++steps > n) throw new InvalidOperationException("assignment: augmenting path does not terminate");
            }
        }
    }

    /// <summary>Dijkstra over reduced costs from a free row to the nearest free column; updates v of the settled columns.</summary>
    private static int FindPath(ReadOnlySpan<float> cost, int n, int start, int[] y, double[] v, int[] pred, int[] cols, double[] d)
    {
        int lo = 0, hi = 0, nReady = 0, final = -1;
        var srow = cost.Slice(start * n, n);
        for (int j = 0; j < n; j++) { cols[j] = j; pred[j] = start; d[j] = srow[j] - v[j]; }
        while (final == -1)
        {
            if (lo == hi)
            {
                nReady = lo;
                hi = FindMinimumColumns(n, lo, d, cols);
                for (int k = lo; k < hi; k++)
                    if (y[cols[k]] < 0) { final = cols[k]; break; }
            }
            if (final == -1) final = Scan(cost, n, ref lo, ref hi, d, cols, pred, y, v);
        }
        double mind = d[cols[lo]];
        for (int k = 0; k < nReady; k++)
        {
            int j = cols[k];
            v[j] += d[j] - mind;
        }
        return final;
    }

    /// <summary>Moves the columns with the smallest d among cols[lo..] to cols[lo..hi).</summary>
    private static int FindMinimumColumns(int n, int lo, double[] d, int[] cols)
    {
        int hi = lo;
        int j = cols[hi++];
        double mind = d[j];
        for (int k = hi; k < n; k++)
        {
            j = cols[k];
            double dj = d[j];
            if (dj <= mind)
            {
                if (dj < mind) { hi = lo; mind = dj; }
                cols[k] = cols[hi];
                cols[hi++] = j;
            }
        }
        return hi;
    }

    private static int Scan(ReadOnlySpan<float> cost, int n, ref int lo, ref int hi, double[] d, int[] cols, int[] pred, int[] y, double[] v)
    {
        while (lo != hi)
        {
            int j = cols[lo++];
            int i = y[j];
            double mind = d[j];
            var row = cost.Slice(i * n, n);
            double h = row[j] - v[j] - mind;
            for (int k = hi; k < n; k++)
            {
                j = cols[k];
                double red = row[j] - v[j] - h;
                if (red < d[j])
                {
                    d[j] = red;
                    pred[j] = i;
                    if (red == mind)
                    {
                        if (y[j] < 0) return j;
                        cols[k] = cols[hi];
                        cols[hi++] = j;
                    }
                }
            }
        }
        return -1;
    }
}
