namespace Mistral.Merge.Benchmarks;

/// <summary>
/// Stopwatch benchmarks, each a subcommand: <c>dotnet run -c Release --project tests/Mistral.Merge.Benchmarks -- NAME [options]</c>.
/// Every benchmark reports its figures as ratios against a baseline measured in the same run.
/// Register a new benchmark with one line in <see cref="Benchmarks"/>.
/// </summary>
public static class Program
{
    private static readonly Dictionary<string, (string Help, Func<string[], int> Run)> Benchmarks = new()
    {
        ["io"] = ("read/write throughput of a 7B-shaped 4-layer bf16 checkpoint vs a plain file copy [--dir DIR] [--layers N] [--keep]", IoBenchmark.Run),
    };

    public static int Main(string[] args)
    {
        if (args.Length == 0 || !Benchmarks.TryGetValue(args[0], out var b))
        {
            Console.Error.WriteLine("usage: Mistral.Merge.Benchmarks NAME [options]");
            foreach (var (name, (help, _)) in Benchmarks) Console.Error.WriteLine($"  {name,-10} {help}");
            return 2;
        }
        try { return b.Run(args[1..]); }
        catch (MergeException e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 1;
        }
    }
}
