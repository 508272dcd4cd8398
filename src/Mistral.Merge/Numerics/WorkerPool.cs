using System.Diagnostics;

namespace Mistral.Merge.Numerics;

/// <summary>One parallel loop body; <paramref name="worker"/> (0 ≤ worker &lt; pool.Threads) indexes per-thread scratch.</summary>
public interface IParallelWork
{
    void Execute(int index, int worker);
}

/// <summary>
/// The one parallelism mechanism of the library: a fixed pool of threads. <see cref="Run(IParallelWork, int)"/>
/// hands out indices 0..count-1, in increasing order, to the calling thread and the workers and returns when
/// all are done. Nothing is allocated per call, so the token loop stays allocation-free. Not re-entrant: one
/// <see cref="Run(IParallelWork, int)"/> at a time. Loops outside the token path (merge, convert, synth, scans,
/// packing, the MoE similarity GEMM) use <see cref="For"/>, a pool made for the one loop. Every thread count is
/// a command's <c>--threads</c> value read through <see cref="Resolve"/>: 0 = all logical processors (the forward
/// pass: one per physical core, <see cref="CpuTopology"/>).
/// The first exception of a body is rethrown wrapped in an <see cref="AggregateException"/> (the inline
/// single-thread path rethrows it as is); indices not yet handed out are then skipped.
/// <para>
/// Between runs the workers poll for the next one for up to <see cref="PollMicroseconds"/> before they sleep, and
/// the caller polls for the workers' completion before it waits, as OpenMP runtimes and ggml's thread pool do: a
/// decode step is dozens of runs of a few hundred microseconds each, separated by short serial steps, and waking a
/// sleeping thread costs tens of microseconds (the `pool` benchmark). The polling loop yields the core
/// (sched_yield) at each turn, so other runnable threads — another pool's, a parallel test's — lose nothing to it:
/// a pure spin made the test suite 1.6× slower. A pool of more threads than logical processors sleeps at once.
/// </para>
/// </summary>
public sealed class WorkerPool : IDisposable
{
    public int Threads { get; }

    private readonly Thread[] _workers;
    private readonly object _gate = new();
    private readonly ManualResetEventSlim _done = new(false);
    private IParallelWork? _work;
    private int _count, _next, _running, _busy;
    private long _generation;
    private bool _stop;
    private Exception? _error;
    private int _sleepers; // workers in Monitor.Wait (guarded by _gate): the caller pulses only if any
    private readonly long _pollTicks;

    /// <summary>How long an idle worker (and a caller waiting for the workers) polls before it blocks.</summary>
    public const int PollMicroseconds = 1000;

    /// <param name="threads">The threads of the pool, the caller's among them.</param>
    /// <param name="poll">Whether idle threads poll (yielding the core) for <see cref="PollMicroseconds"/> before they
    /// sleep; off, or more threads than logical processors, they sleep at once (the benchmark's baseline).</param>
    public WorkerPool(int threads, bool poll = true)
    {
        Threads = Math.Max(1, threads);
        _pollTicks = poll && Threads <= Environment.ProcessorCount ? PollMicroseconds * Stopwatch.Frequency / 1_000_000 : 0;
        _workers = new Thread[Threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            int id = i + 1;
            _workers[i] = new Thread(() => WorkerLoop(id)) { IsBackground = true, Name = $"mm-kernel-{id}" };
            _workers[i].Start();
        }
    }

    /// <summary>The default thread count: all logical processors.</summary>
    public static int DefaultThreads => Environment.ProcessorCount;

    /// <summary>The thread count of a <c>--threads</c> value: 0 (or less) = all logical processors.</summary>
    public static int Resolve(int threads) => threads > 0 ? threads : DefaultThreads;

    /// <summary>
    /// Runs <paramref name="body"/>(index, worker) for every index in [0, <paramref name="count"/>) on
    /// min(<see cref="Resolve"/>(<paramref name="threads"/>), count) threads (the caller's among them), on a pool
    /// made for this loop; worker (0 ≤ worker &lt; that count) indexes per-thread scratch.
    /// </summary>
    public static void For(int threads, int count, Action<int, int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (count <= 0) return;
        using var pool = new WorkerPool(Math.Min(Resolve(threads), count));
        pool.Run(count, body);
    }

    /// <summary>The threads <see cref="For"/> would use for <paramref name="count"/> items (to size per-worker scratch).</summary>
    public static int ThreadsFor(int threads, int count) => Math.Max(1, Math.Min(Resolve(threads), count));

    /// <summary><see cref="Run(IParallelWork, int)"/> with a delegate (allocates: not for the token loop).</summary>
    public void Run(int count, Action<int, int> body) => Run(new DelegateWork(body), count);

    private sealed class DelegateWork(Action<int, int> body) : IParallelWork
    {
        public void Execute(int index, int worker) => body(index, worker);
    }

    public void Run(IParallelWork work, int count)
    {
        if (count <= 0) return;
        if (_workers.Length == 0 || count == 1)
        {
            for (int i = 0; i < count; i++) work.Execute(i, 0);
            return;
        }
        if (Interlocked.Exchange(ref _busy, 1) != 0) throw new InvalidOperationException("WorkerPool.Run is not re-entrant");
        try
        {
            _work = work; _count = count; _next = 0; _error = null;
            _running = _workers.Length;
            _done.Reset();
            lock (_gate)
            {
                Volatile.Write(ref _generation, _generation + 1); // polling workers read it without the lock
                if (_sleepers > 0) Monitor.PulseAll(_gate);
            }
            Drain(0);
            for (long until = Stopwatch.GetTimestamp() + _pollTicks; Volatile.Read(ref _running) != 0 && Stopwatch.GetTimestamp() < until;) Thread.Yield();
            _done.Wait();
            _work = null;
            if (_error is { } e) throw new AggregateException(e);
        }
        finally { Volatile.Write(ref _busy, 0); }
    }

    private void Drain(int worker)
    {
        var work = _work!;
        int i;
        while ((i = Interlocked.Increment(ref _next) - 1) < _count)
        {
            if (Volatile.Read(ref _error) != null) continue; // a body failed: skip what is left
            try { work.Execute(i, worker); }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
        }
    }

    private void WorkerLoop(int id)
    {
        long seen = 0;
        while (true)
        {
            for (long until = Stopwatch.GetTimestamp() + _pollTicks; Volatile.Read(ref _generation) == seen && !Volatile.Read(ref _stop) && Stopwatch.GetTimestamp() < until;) Thread.Yield();
            if (Volatile.Read(ref _stop)) return;
            long next = Volatile.Read(ref _generation);
            if (next != seen) seen = next;
            else
                lock (_gate)
                {
                    while (_generation == seen && !_stop) { _sleepers++; Monitor.Wait(_gate); _sleepers--; }
                    if (_stop) return;
                    seen = _generation;
                }
            Drain(id);
            if (Interlocked.Decrement(ref _running) == 0) _done.Set();
        }
    }

    public void Dispose()
    {
        lock (_gate) { _stop = true; Monitor.PulseAll(_gate); }
        foreach (var t in _workers) t.Join();
        _done.Dispose();
    }
}
