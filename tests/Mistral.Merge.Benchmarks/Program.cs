namespace Mistral.Merge.Benchmarks;

/// <summary>Benchmark entry: <c>dotnet run -c Release --project tests/Mistral.Merge.Benchmarks -- NAME [args]</c>.
/// Each benchmark reports its figures as ratios against a baseline measured in the same run.</summary>
public static class Program
{
    private static readonly Dictionary<string, Func<string[], int>> Benchmarks = new()
    {
        ["merge"] = MergeBenchmark.Run,
        ["moe-assignment"] = Moe.AssignmentBenchmark.Run,
        ["inference"] = InferenceBenchmark.Run,
    };

    public static int Main(string[] args)
    {
        if (args.Length == 0 || !Benchmarks.TryGetValue(args[0], out var run))
        {
            Console.Error.WriteLine($"usage: Mistral.Merge.Benchmarks <{string.Join("|", Benchmarks.Keys)}> [args]");
            return 2;
        }
        return run(args[1..]);
    }
}
