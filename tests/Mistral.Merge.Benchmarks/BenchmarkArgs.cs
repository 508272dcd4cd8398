using System.Globalization;

namespace Mistral.Merge.Benchmarks;

/// <summary>The benchmarks' <c>--name VALUE</c> options: the value after the name, or the default when absent.</summary>
public static class BenchmarkArgs
{
    public static int Int(string[] args, string name, int fallback) =>
        String(args, name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public static string? String(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
