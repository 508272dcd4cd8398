using System.Diagnostics;

namespace Mistral.Merge.Inference;

/// <summary>
/// Where the CPU forward pass spends its wall time, by stage (<see cref="CpuBackend.Profile"/>; null, the default,
/// reads no clock). Stages are timed on the calling thread around whole parallel steps, so they add up to the pass.
/// </summary>
public sealed class ForwardProfile
{
    public enum Stage { Embedding, Norm, Projections, Rope, Attention, Elementwise, Head }

    private readonly long[] _ticks = new long[Enum.GetValues<Stage>().Length];

    public static IReadOnlyList<Stage> Stages { get; } = Enum.GetValues<Stage>();

    public TimeSpan this[Stage stage] => TimeSpan.FromSeconds(_ticks[(int)stage] / (double)Stopwatch.Frequency);

    public TimeSpan Total => TimeSpan.FromSeconds(_ticks.Sum() / (double)Stopwatch.Frequency);

    public void Reset() => Array.Clear(_ticks);

    /// <summary>Charges the time since <paramref name="since"/> to <paramref name="stage"/> and restarts the clock there.</summary>
    internal void Lap(Stage stage, ref long since)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)stage] += now - since;
        since = now;
    }
}
