using System.CommandLine;
using System.Diagnostics;
using System.Globalization;

namespace Mistral.Merge.Cli.Terminal;

/// <summary>
/// How far one piece of work is: <see cref="Done"/> of <see cref="Total"/> units. It reads 100 % only once
/// <see cref="Complete"/> says the work has ended: while work remains (or the last unit is done but the command still
/// writes, commits or measures) it stays below, whatever the counts say, and the ETA is only shown while units remain.
/// </summary>
internal sealed class ProgressState
{
    public long Done { get; private set; }
    public long Total { get; private set; }
    public bool Completed { get; private set; }

    public void Update(long done, long total)
    {
        if (Completed) return;
        // Reports from several threads may arrive out of order: the count never goes back for the same total.
        if (total != Total) Done = 0;
        Total = Math.Max(0, total);
        Done = Math.Max(Done, Math.Clamp(done, 0, Total));
    }

    public void Complete()
    {
        Completed = true;
        Done = Total;
    }

    /// <summary>Tenths of a percent, rounded down; at most 999 until <see cref="Complete"/>.</summary>
    public int PerMille => Completed ? 1000 : Total <= 0 ? 0 : (int)Math.Min(999, Done * 1000 / Total);

    public string Percent => (PerMille / 10.0).ToString("0.0", CultureInfo.InvariantCulture) + "%";

    /// <summary>Time left at the rate so far; null when it cannot be told or nothing is left to count.</summary>
    public TimeSpan? Eta(TimeSpan elapsed)
        => Completed || Done <= 0 || Done >= Total ? null : TimeSpan.FromSeconds(elapsed.TotalSeconds * (Total - Done) / Done);

    /// <summary>[#####.....] over <paramref name="width"/> characters, full only when complete.</summary>
    public string Bar(int width)
    {
        int filled = (int)((long)PerMille * width / 1000);
        return "[" + new string('#', filled) + new string('.', width - filled) + "]";
    }
}

/// <summary>
/// The one progress display of the CLI, for every long command. On a terminal (stderr not redirected): one live
/// line redrawn in place (bar, percent, counts, ETA), at most every 100 ms. Otherwise: a few plain lines (at 25, 50
/// and 75 % once the work has run 2 s, and when the work ends), with no carriage return and no escape sequence.
/// With --quiet: nothing.
/// The library reports through plain callbacks (<see cref="Report(long, long)"/> fits an
/// <c>Action&lt;long, long&gt;</c>); reports may come from several threads.
/// </summary>
internal sealed class Progress : IDisposable
{
    public enum Mode { Quiet, Lines, Live }

    private const int BarWidth = 30;
    /// <summary>The unit whose counts are shown as sizes (1.2 GB of 3.4 GB).</summary>
    public const string Bytes = "bytes";
    /// <summary>Off a terminal, the 25/50/75 % lines start once the work has run this long.</summary>
    public static readonly TimeSpan QuietStart = TimeSpan.FromSeconds(2);
    private readonly TextWriter _err;
    private readonly string _label, _unit;
    private readonly Mode _mode;
    private readonly Func<TimeSpan> _clock;
    private readonly ProgressState _state = new();
    private readonly object _lock = new();
    private string? _detail;
    private int _quarter;          // Lines: quarters already printed
    private TimeSpan _lastDraw = TimeSpan.FromDays(-1);
    private int _drawn;            // Live: characters of the line on screen (0: none)
    private bool _ended;

    public Progress(TextWriter err, string label, string unit, Mode mode, Func<TimeSpan>? clock = null)
    {
        _err = err;
        _label = label;
        _unit = unit;
        _mode = mode;
        var sw = Stopwatch.StartNew();
        _clock = clock ?? (() => sw.Elapsed);
    }

    /// <summary>The progress of a command: quiet with --quiet, live when its stderr is this process's terminal, else lines.</summary>
    public static Progress For(ParseResult p, string label, string unit)
    {
        var err = p.InvocationConfiguration.Error;
        return new Progress(err, label, unit, ModeFor(err, CommonOptions.IsQuiet(p)));
    }

    public static Mode ModeFor(TextWriter err, bool quiet)
        => quiet ? Mode.Quiet : ReferenceEquals(err, Console.Error) && !Console.IsErrorRedirected ? Mode.Live : Mode.Lines;

    public bool IsQuiet => _mode == Mode.Quiet;

    /// <summary><paramref name="done"/> of <paramref name="total"/> units.</summary>
    public void Report(long done, long total) => Report(done, total, null);

    /// <summary>As <see cref="Report(long, long)"/>, with <paramref name="detail"/> shown instead of the unit counts.</summary>
    public void Report(long done, long total, string? detail)
    {
        if (_mode == Mode.Quiet) return;
        lock (_lock)
        {
            if (_ended) return;
            _state.Update(done, total);
            _detail = detail;
            if (_mode == Mode.Live)
            {
                var now = _clock();
                if (now - _lastDraw < TimeSpan.FromMilliseconds(100)) return;
                _lastDraw = now;
                Draw(now);
            }
            else
            {
                int quarter = Math.Min(3, _state.PerMille / 250);
                if (quarter <= _quarter) return;
                var now = _clock();
                if (now < QuietStart) return; // a short job prints its final line only
                _quarter = quarter;
                _err.WriteLine(Line(now));
            }
        }
    }

    /// <summary>A line (a warning, a note) printed above the live bar, or as it is otherwise.</summary>
    public void WriteLine(string line)
    {
        lock (_lock)
        {
            if (_mode == Mode.Live && _drawn > 0)
            {
                _err.Write("\r" + new string(' ', _drawn) + "\r");
                _err.WriteLine(line);
                _drawn = 0;
                if (!_ended) Draw(_clock());
                return;
            }
            _err.WriteLine(line);
        }
    }

    /// <summary>The work has ended: the display reads 100 % and ends its line.</summary>
    public void Complete()
    {
        if (_mode == Mode.Quiet) return;
        lock (_lock)
        {
            if (_ended) return;
            _state.Complete();
            _ended = true;
            if (_mode == Mode.Live)
            {
                Draw(_clock());
                _err.WriteLine();
            }
            else _err.WriteLine(Line(_clock()));
        }
    }

    /// <summary>Ends a live line that did not complete (an error or a cancellation), without claiming 100 %.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_ended) return;
            _ended = true;
            if (_mode == Mode.Live && _drawn > 0) _err.WriteLine();
        }
    }

    private void Draw(TimeSpan now)
    {
        var line = Line(now);
        _err.Write("\r" + line + (line.Length < _drawn ? new string(' ', _drawn - line.Length) : ""));
        _drawn = Math.Max(line.Length, _drawn);
    }

    /// <summary>"label [####....]  42.0%  21/50 windows  3.1 s  ETA 0:04" (live), "label: 42% (21/50 windows, 3.1 s)" (lines).</summary>
    internal string Line(TimeSpan elapsed)
    {
        var ci = CultureInfo.InvariantCulture;
        var counts = _detail ?? (_unit == Bytes ? $"{IO.ByteSize.Format(_state.Done)} of {IO.ByteSize.Format(_state.Total)}"
            : $"{_state.Done.ToString("N0", ci)}/{_state.Total.ToString("N0", ci)} {_unit}");
        var secs = elapsed.TotalSeconds.ToString("0.0", ci) + " s";
        if (_mode != Mode.Live) return $"{_label}: {_state.PerMille / 10}% ({counts}, {secs})";
        var eta = _state.Eta(elapsed) is { } e ? $"  ETA {(int)e.TotalMinutes}:{e.Seconds:00}" : "";
        return $"{_label} {_state.Bar(BarWidth)} {_state.Percent,6}  {counts}  {secs}{eta}";
    }
}
