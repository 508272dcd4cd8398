using Mistral.Merge.Numerics;
using Xunit;

namespace Mistral.Merge.Tests.Numerics;

public class WorkerPoolTests
{
    /// <summary>Runs <paramref name="test"/> on its own thread, so that a pool that never finishes a run fails the test instead of hanging it.</summary>
    private static Task Within10Seconds(Action test) => Task.Run(test).WaitAsync(TimeSpan.FromSeconds(10));

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, true)]
    [InlineData(2, false)]
    [InlineData(4, true)]
    [InlineData(4, false)]
    public Task EveryIndexRunsOnceInRunsBackToBackAndAfterTheThreadsWentToSleep(int threads, bool poll) => Within10Seconds(() =>
    {
        using var pool = new WorkerPool(threads, poll);
        for (int run = 0; run < 60; run++)
        {
            // back to back, after a step shorter than the polling time, after one longer than it
            if (run % 3 == 1) Thread.SpinWait(2000);
            if (run % 12 == 2) Thread.Sleep(WorkerPool.PollMicroseconds / 1000 * 5);
            int count = 1 + run * 7 % 50;
            var hits = new int[count];
            pool.Run(count, (i, worker) =>
            {
                Assert.InRange(worker, 0, threads - 1);
                Interlocked.Increment(ref hits[i]);
            });
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public Task EveryThreadTakesPartInARunWhetherItWasPollingOrAsleep(bool poll) => Within10Seconds(() =>
    {
        const int threads = 3;
        using var pool = new WorkerPool(threads, poll);
        foreach (int pauseMs in new[] { 0, 0, 20, 0, 20 })
        {
            Thread.Sleep(pauseMs);
            using var barrier = new Barrier(threads);
            var workers = new int[threads];
            // Each item waits until all threads hold one, so the run only ends if every thread joined it.
            pool.Run(threads, (_, worker) =>
            {
                Interlocked.Increment(ref workers[worker]);
                Assert.True(barrier.SignalAndWait(TimeSpan.FromSeconds(10)), "a pool thread never joined the run");
            });
            Assert.All(workers, w => Assert.Equal(1, w));
        }
    });

    [Fact]
    public Task AFailingBodyIsRethrownAndThePoolRunsTheNextLoop() => Within10Seconds(() =>
    {
        using var pool = new WorkerPool(2);
        var e = Assert.Throws<AggregateException>(() => pool.Run(100, (i, _) => { if (i == 37) throw new InvalidDataException("item 37"); }));
        Assert.Equal("item 37", Assert.IsType<InvalidDataException>(e.InnerException).Message);
        int sum = 0;
        pool.Run(100, (i, _) => Interlocked.Add(ref sum, i));
        Assert.Equal(4950, sum);
    });

    [Fact]
    public Task ARunInsideARunIsRefused() => Within10Seconds(() =>
    {
        using var pool = new WorkerPool(2);
        var e = Assert.Throws<AggregateException>(() => pool.Run(2, (i, _) => { if (i == 0) pool.Run(2, (_, _) => { }); }));
        Assert.Equal("WorkerPool.Run is not re-entrant", Assert.IsType<InvalidOperationException>(e.InnerException).Message);
    });

    [Theory]
    [InlineData(0)]
    [InlineData(20)]
    public async Task DisposeStopsPollingAndSleepingThreadsAlike(int pauseMs)
    {
        var pool = new WorkerPool(3);
        await Within10Seconds(() => pool.Run(3, (_, _) => { }));
        await Task.Delay(pauseMs);
        await Within10Seconds(pool.Dispose);
    }
}
