using System.Globalization;
using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Planning;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// Peak private memory (RssAnon) of a TIES merge, whose magnitude selection spans whole tensors,
/// against a linear merge of the same three bf16 models in the same run (the streaming baseline):
/// (a) 7B-shaped (Mistral-7B config, 2 layers), (b) the same with a 128256-token vocabulary
/// (128256×4096 embedding and lm_head, 1 layer). The models are deleted afterwards.
/// </summary>
public static class TiesMemoryBenchmark
{
    public static int Run(string[] args)
    {
        var work = args.Length > 0 && !args[0].StartsWith("--") ? args[0] : Path.Combine(Path.GetTempPath(), "mm-ties-bench");
        int threads = BenchmarkArgs.Int(args, "--threads", Environment.ProcessorCount);
        foreach (var (label, vocab, layers) in new[] { ("7B-shaped, vocab 32000", 32000, 2), ("vocab 128256", 128256, 1) })
        {
            var dir = Path.Combine(work, vocab.ToString(CultureInfo.InvariantCulture));
            try { Measure(label, dir, vocab, layers, threads); }
            finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
        }
        return 0;
    }

    private static void Measure(string label, string dir, int vocab, int layers, int threads)
    {
        var cfg = Synthesizer.MakeConfig("mistral", hidden: 4096, layers: 32, heads: 32, kvHeads: 8, intermediate: 14336, vocab: vocab);
        foreach (var (m, seed) in new[] { ("a", 1UL), ("b", 2UL), ("c", 3UL) })
        {
            Console.WriteLine($"synthesizing {label} {m} ...");
            Synthesizer.Write(Path.Combine(dir, m), cfg, new SynthOptions { LayersOverride = layers, DType = DType.BF16, Seed = seed });
        }
        long linear = Peak(dir, "linear", """
            merge_method: linear
            models:
              - {model: a, parameters: {weight: 0.2}}
              - {model: b, parameters: {weight: 0.5}}
              - {model: c, parameters: {weight: 0.3}}
            dtype: bfloat16
            """, threads);
        long ties = Peak(dir, "ties", """
            merge_method: ties
            base_model: a
            models:
              - {model: b, parameters: {weight: 0.5, density: 0.5}}
              - {model: c, parameters: {weight: 0.3, density: 0.3}}
            dtype: bfloat16
            """, threads);
        Console.WriteLine($"{label}: peak RssAnon linear {linear / 1e6:0} MB, ties {ties / 1e6:0} MB, ratio ties/linear {(double)ties / linear:0.00}");
    }

    /// <summary>Starts a measurement from the merge's own footprint: synthesis leaves large buffers on the heap.</summary>
    internal static void Compact()
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    /// <summary>Runs the recipe once and returns the peak RssAnon during the merge.</summary>
    private static long Peak(string dir, string name, string yaml, int threads)
    {
        var recipe = Path.Combine(dir, name + ".yml");
        File.WriteAllText(recipe, yaml);
        Compact();
        using var plan = MergePlanner.PlanFile(recipe);
        var outDir = Path.Combine(dir, "out-" + name);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        long peak;
        using (var sampler = new MergeBenchmark.PeakSampler())
        {
            MergeExecutor.Run(plan, outDir, new ExecuteOptions { Threads = threads, Force = true });
            peak = sampler.Stop();
        }
        Console.WriteLine($"  {name}: {plan.Tasks.Count} tensors, {ByteSize.Format(plan.WriteBytes)} written in {sw.Elapsed.TotalSeconds:0.0} s, peak RssAnon {peak / 1e6:0} MB");
        Directory.Delete(outDir, true);
        return peak;
    }
}
