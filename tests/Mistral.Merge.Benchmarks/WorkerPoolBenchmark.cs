using System.Diagnostics;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// What one <see cref="WorkerPool.Run(IParallelWork, int)"/> costs beyond its work when a short serial step comes
/// before it, as in decode (norms, RoPE, sampling between the GEMVs): a polling pool (the default) against a pool
/// whose idle threads sleep at once (the baseline), alternated in one process, best of 5 rounds.
/// </summary>
public static class WorkerPoolBenchmark
{
    public static int Run(string[] args)
    {
        int threads = BenchmarkArgs.Int(args, "--threads", CpuTopology.PhysicalCoreCount);
        Console.WriteLine($"worker pool: {threads} threads, {Environment.ProcessorCount} logical processors");
        using var sleeping = new WorkerPool(threads, poll: false);
        using var polling = new WorkerPool(threads, poll: true);
        foreach (var (gapUs, itemUs) in new[] { (0, 0), (20, 0), (100, 0), (20, 25) })
        {
            var work = new BusyItems(itemUs);
            int items = itemUs == 0 ? threads : threads * 8;
            double best0 = double.MaxValue, best1 = double.MaxValue;
            for (int round = 0; round < 5; round++)
            {
                best0 = Math.Min(best0, PerRun(sleeping, work, items, gapUs));
                best1 = Math.Min(best1, PerRun(polling, work, items, gapUs));
            }
            double ideal = itemUs * items / (double)threads;
            Console.WriteLine($"  {items,3} items of {itemUs,2} µs after a {gapUs,3} µs serial step: sleeping {best0,7:0.0} µs, " +
                $"polling {best1,7:0.0} µs per run (ideal {ideal:0}); sleeping / polling {best0 / best1:0.00}×");
        }
        return 0;
    }

    /// <summary>Microseconds per run, the serial step excluded.</summary>
    private static double PerRun(WorkerPool pool, BusyItems work, int items, int gapUs)
    {
        const int runs = 2000;
        long inRuns = 0;
        for (int r = 0; r < runs; r++)
        {
            BusyItems.Spin(gapUs);
            long t0 = Stopwatch.GetTimestamp();
            pool.Run(work, items);
            inRuns += Stopwatch.GetTimestamp() - t0;
        }
        return inRuns * 1e6 / Stopwatch.Frequency / runs;
    }

    private sealed class BusyItems(int microseconds) : IParallelWork
    {
        public void Execute(int index, int worker) => Spin(microseconds);

        public static void Spin(int microseconds)
        {
            long until = Stopwatch.GetTimestamp() + microseconds * Stopwatch.Frequency / 1_000_000;
            while (Stopwatch.GetTimestamp() < until) Thread.SpinWait(4);
        }
    }
}
