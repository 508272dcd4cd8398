namespace Mistral.Merge.Benchmarks;

/// <summary>Benchmarks are run by name: <c>dotnet run -c Release --project tests/Mistral.Merge.Benchmarks -- merge [WORKDIR]</c>.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var name = args.Length > 0 ? args[0] : "";
        switch (name)
        {
            case "merge": return MergeBenchmark.Run(args[1..]);
            default:
                Console.Error.WriteLine("usage: Mistral.Merge.Benchmarks merge [WORKDIR] [--threads N]");
                return 2;
        }
    }
}
