using Mistral.Merge.Cli.Terminal;

namespace Mistral.Merge.Tests.Cli;

/// <summary>The one progress display: 100 % only when the work ends, plain lines off a terminal, nothing with --quiet.</summary>
public sealed class ProgressTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    [Fact]
    public void StateNeverReads100PercentBeforeComplete()
    {
        var s = new ProgressState();
        s.Update(0, 1000);
        Assert.Equal(0, s.PerMille);
        s.Update(999_999, 1_000_000);
        Assert.Equal(999, s.PerMille);
        s.Update(1000, 1000); // every unit counted, but the command still writes and commits
        Assert.Equal(999, s.PerMille);
        Assert.Equal("99.9%", s.Percent);
        Assert.Null(s.Eta(TimeSpan.FromSeconds(5))); // no "ETA 0:00" while the work goes on
        Assert.Equal("[" + new string('#', 29) + ".]", s.Bar(30)); // the bar is not full yet
        s.Complete();
        Assert.Equal(1000, s.PerMille);
        Assert.Equal("100.0%", s.Percent);
        Assert.Equal("[" + new string('#', 30) + "]", s.Bar(30));
    }

    [Fact]
    public void StateCountsNeverGoBackAndEtaFollowsTheRate()
    {
        var s = new ProgressState();
        s.Update(600, 1000);
        s.Update(500, 1000); // a report from another thread arriving late
        Assert.Equal(600, s.Done);
        Assert.Equal(TimeSpan.FromSeconds(4), s.Eta(TimeSpan.FromSeconds(6)));
        s.Update(5000, 1000);
        Assert.Equal(1000, s.Done);
    }

    [Fact]
    public void LinesModePrintsAFewPlainLinesAnd100PercentOnlyAtTheEnd()
    {
        var err = new StringWriter();
        var p = new Progress(err, "convert", "tensors", Progress.Mode.Lines, () => TimeSpan.FromSeconds(2));
        for (int i = 0; i <= 100; i++) p.Report(i, 100);
        Assert.DoesNotContain("100%", err.ToString());
        p.Complete();
        var lines = err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["convert: 25% (25/100 tensors, 2.0 s)", "convert: 50% (50/100 tensors, 2.0 s)", "convert: 75% (75/100 tensors, 2.0 s)",
            "convert: 100% (100/100 tensors, 2.0 s)"], lines);
        Assert.DoesNotContain('\r', err.ToString());
        Assert.DoesNotContain('\u001b', err.ToString());
    }

    [Fact]
    public void LinesModePrintsOnlyTheFinalLineOfAShortJob()
    {
        var err = new StringWriter();
        var clock = TimeSpan.Zero;
        var p = new Progress(err, "routing", "tokens", Progress.Mode.Lines, () => clock);
        for (int i = 0; i <= 100; i++) { clock = TimeSpan.FromMilliseconds(10 * i); p.Report(i, 100); }
        Assert.Equal("", err.ToString());
        p.Complete();
        Assert.Equal("routing: 100% (100/100 tokens, 1.0 s)\n", err.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void LiveModeRedrawsOneLineAndEndsItAtCompletion()
    {
        var err = new StringWriter();
        var clock = TimeSpan.Zero;
        var p = new Progress(err, "merge", Progress.Bytes, Progress.Mode.Live, () => clock);
        p.Report(0, 2 << 20);
        clock += TimeSpan.FromSeconds(1);
        p.Report(2 << 20, 2 << 20);
        Assert.DoesNotContain("100.0%", err.ToString());
        Assert.DoesNotContain('\n', err.ToString());
        p.WriteLine("warning: something");
        p.Complete();
        var text = err.ToString();
        Assert.Contains("\rwarning: something\n", text);
        Assert.EndsWith("\n", text);
        var last = text.TrimEnd('\n').Split('\r')[^1];
        Assert.StartsWith("merge [" + new string('#', 30) + "] 100.0%", last);
        Assert.Contains("2.10 MB of 2.10 MB", last);
    }

    [Fact]
    public void QuietModePrintsNothingAndAFailedRunNeverClaims100Percent()
    {
        var err = new StringWriter();
        using (var p = new Progress(err, "x", "units", Progress.Mode.Quiet)) { p.Report(1, 2); p.Complete(); }
        Assert.Equal("", err.ToString());
        using (var p = new Progress(err, "x", "units", Progress.Mode.Lines)) p.Report(99, 100);
        Assert.DoesNotContain("100%", err.ToString());
    }

    [Fact]
    public void ConvertAndSynthReportProgressOffATerminalAndNothingWithQuiet()
    {
        string[] small = ["--arch", "mistral", "--hidden", "64", "--layers", "2", "--heads", "4", "--intermediate", "128", "--vocab", "256"];
        var s = CliRunner.Run(["synth", _d["a"], .. small]);
        Assert.True(s.ExitCode == 0, s.Stderr);
        var lines = s.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.InRange(lines.Length, 1, 4);
        Assert.StartsWith("synth: 100% (", lines[^1]);
        Assert.All(lines, l => Assert.StartsWith("synth: ", l));
        var c = CliRunner.Run("convert", _d["a"], _d["b"], "--dtype", "float32");
        Assert.True(c.ExitCode == 0, c.Stderr);
        Assert.StartsWith("convert: 100% (", c.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        var q = CliRunner.Run("convert", _d["a"], _d["c"], "--dtype", "float32", "--quiet");
        Assert.Equal("", q.Stderr);
    }
}
