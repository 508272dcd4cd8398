using System.Reflection;
namespace Mistral.Merge.Benchmarks;

/// <summary>
/// Benchmarks are not unit tests: run one by name, e.g. <c>dotnet run -c Release --project tests/Mistral.Merge.Benchmarks -- merge</c>.
/// Each reports ratios against a baseline measured in the same run.
/// </summary>
public static class Program
{
    private static readonly Dictionary<string, (string Help, Func<string[], int> Run)> Benchmarks = new()
    {
        ["io"] = ("read/write throughput of a 7B-shaped 4-layer bf16 checkpoint vs a plain file copy [--dir DIR] [--layers N] [--keep]", IoBenchmark.Run),
        ["merge"] = ("SLERP merge of two 7B-shaped bf16 models vs a plain read-inputs/write-output copy; peak RssAnon", MergeBenchmark.Run),
        ["merge-ties"] = ("peak RssAnon of TIES (chunked exact magnitude selection) vs a linear merge: 7B-shaped and 128256-vocab bf16 models [WORKDIR] [--threads N]", TiesMemoryBenchmark.Run),
        ["gemm"] = ("prefill GEMM alone: GFLOP/s and % of the measured FMA peak on the 7B projection shapes at 128 and 512 tokens [--threads N]", GemmBenchmark.Run),
        ["pool"] = ("WorkerPool: the cost of a run after a short serial step, polling (the default) vs sleeping threads [--threads N]", WorkerPoolBenchmark.Run),
        ["inference"] = ("CPU forward pass: prefill GFLOP/s and decode GB/s on a 7B-shaped bf16 model and stories260k; bf16/q8_0 side by side with llama.cpp [--keep DIR] [--threads N] [--reps N] [--llama-bench PATH] [--rounds N, default 3 with --llama-bench]", InferenceBenchmark.Run),
        ["perplexity-path"] = ("Perplexity.Evaluate vs the forward pass alone at ctx 512 and 128 on the 7B-shaped bf16 model, with a time breakdown [--model DIR] [--ctx 512,128] [--reps N] [--threads N] [--cold]", PerplexityPathBenchmark.Run),
        ["moe-assignment"] = ("aligned_mean weight matching: LAPJV and the similarity GEMM at Mixtral sizes", Moe.AssignmentBenchmark.Run),
        ["moe-refit"] = ("moe_to_dense refit, one layer at Mixtral-8x7B size: MoE targets, Gram per 1k tokens, Cholesky, w2 solve, RssAnon [tokens] [n] [hidden] [experts] [top-k]", Moe.RefitBenchmark.Run),
        ["cuda"] = ("GPU forward pass: 7B decode vs HBM roofline, prefill vs cuBLAS bf16 peak, Mixtral-shaped with --offload", Cuda.CudaBenchmark.Run),
        ["cuda-validate"] = ("runs the [GpuFact] tests of Mistral.Merge.Tests without a test runner (for a GPU machine without the .NET SDK)", Cuda.GpuValidation.Run),
        ["tests"] = ("runs the [Fact]/[Theory] tests of Mistral.Merge.Tests without a test runner, e.g. on ARM64 under qemu-user (tests/arm64/run.sh) [FILTER...]", args => DirectTests.Run(m => m.GetCustomAttribute<Xunit.FactAttribute>(true), args, everyTest: false, skipIsFailure: false)),
    };

    public static int Main(string[] args)
    {
        if (args.Length == 0 || !Benchmarks.TryGetValue(args[0], out var b))
        {
            Console.Error.WriteLine("usage: Mistral.Merge.Benchmarks <name> [options]");
            foreach (var (name, (help, _)) in Benchmarks) Console.Error.WriteLine($"  {name,-15} {help}");
            return 2;
        }
        try { return b.Run(args[1..]); }
        catch (MergeException e) { Console.Error.WriteLine("error: " + e.Message); return 1; }
    }
}
