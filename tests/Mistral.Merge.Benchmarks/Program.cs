namespace Mistral.Merge.Benchmarks;

/// <summary>Speed measurements (not unit tests): <c>dotnet run -c Release --project tests/Mistral.Merge.Benchmarks -- &lt;name&gt; [options]</c>.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var name = args.Length > 0 ? args[0] : "";
        switch (name)
        {
            case "inference": return InferenceBenchmark.Run(args[1..]);
            default:
                Console.Error.WriteLine("usage: Mistral.Merge.Benchmarks inference [--threads N] [--prefill N] [--decode N] [--layers N] [--keep DIR]");
                return 2;
        }
    }
}
