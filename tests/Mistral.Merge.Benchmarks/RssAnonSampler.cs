using System.Globalization;

namespace Mistral.Merge.Benchmarks;

/// <summary>Samples RssAnon (private, non-file-backed resident memory) every 5 ms; Peak is the maximum seen.</summary>
internal sealed class RssAnonSampler : IDisposable
{
    private readonly Thread _thread;
    private volatile bool _stop;
    public long Peak { get; private set; }

    public RssAnonSampler()
    {
        Peak = Read();
        _thread = new Thread(() => { while (!_stop) { Peak = Math.Max(Peak, Read()); Thread.Sleep(5); } }) { IsBackground = true };
        _thread.Start();
    }

    private static long Read()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }

    public void Dispose()
    {
        if (_stop) return;
        _stop = true;
        _thread.Join();
        Peak = Math.Max(Peak, Read());
    }
}
