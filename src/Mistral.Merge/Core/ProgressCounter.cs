namespace Mistral.Merge.Core;

/// <summary>
/// How the library reports progress: a plain callback <c>(done, total)</c> in the work's own units (bytes, tokens,
/// layers), which the CLI turns into its one progress display. This counter adds finished units from any thread
/// and calls the callback with the running total; no callback, no cost.
/// </summary>
public sealed class ProgressCounter(long total, Action<long, long>? report)
{
    private long _done;

    public long Total => total;

    public void Add(long units)
    {
        if (report == null) return;
        report(Interlocked.Add(ref _done, units), total);
    }
}
