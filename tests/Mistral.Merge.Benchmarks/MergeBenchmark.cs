using System.Diagnostics;
using System.Globalization;
using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Planning;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// SLERP of two 7B-shaped synthesized bf16 models (Mistral-7B config, 4 layers) against a plain
/// copy in the same run: the copy reads every input byte and writes the output-sized checkpoint
/// through the same writer. Reports time, throughput ratio (merge / copy; target ≥ 0.8) and the
/// peak private memory (RssAnon, sampled every 2 ms; target &lt; 2 GB), then the peak again for the same
/// merge of 8-layer models: it must not grow with the number of layers.
/// </summary>
public static class MergeBenchmark
{
    private const string Recipe = """
        merge_method: slerp
        base_model: aSUFFIX
        slices:
          - sources:
              - model: aSUFFIX
                layer_range: [0, LAYERS]
              - model: bSUFFIX
                layer_range: [0, LAYERS]
        parameters:
          t:
            - filter: self_attn
              value: [0, 0.5, 0.3, 0.7, 1]
            - filter: mlp
              value: [1, 0.5, 0.7, 0.3, 0]
            - value: 0.5
        dtype: bfloat16
        """;

    public static int Run(string[] args)
    {
        var work = args.Length > 0 && !args[0].StartsWith("--") ? args[0] : Path.Combine(Path.GetTempPath(), "mm-merge-bench");
        int threads = BenchmarkArgs.Int(args, "--threads", Environment.ProcessorCount);
        Directory.CreateDirectory(work);
        var cfg = Synthesizer.MakeConfig("mistral", hidden: 4096, layers: 32, heads: 32, kvHeads: 8, intermediate: 14336, vocab: 32000);
        var recipePath = WriteModelsAndRecipe(work, cfg, 4);
        using var plan = MergePlanner.PlanFile(recipePath);
        Console.WriteLine($"plan: {plan.Tasks.Count} tensors, read {ByteSize.Format(plan.ReadBytes)}, write {ByteSize.Format(plan.WriteBytes)}, threads {threads}");
        Copy(plan, Path.Combine(work, "warm"), threads); // page cache warm-up for both contenders

        double copyBest = double.MaxValue, mergeBest = double.MaxValue;
        long peak = 0, baseline = RssAnon();
        for (int rep = 0; rep < 2; rep++)
        {
            var sw = Stopwatch.StartNew();
            Copy(plan, Path.Combine(work, "copy"), threads);
            copyBest = Math.Min(copyBest, sw.Elapsed.TotalSeconds);

            TiesMemoryBenchmark.Compact();
            using var sampler = new PeakSampler();
            sw.Restart();
            MergeExecutor.Run(plan, Path.Combine(work, "merged"), new ExecuteOptions { Threads = threads, Force = true });
            mergeBest = Math.Min(mergeBest, sw.Elapsed.TotalSeconds);
            peak = Math.Max(peak, sampler.Stop());
        }
        double bytes = plan.ReadBytes + plan.WriteBytes;
        Console.WriteLine($"copy  (read all inputs + write output): {copyBest:0.00} s  {bytes / copyBest / 1e9:0.00} GB/s");
        Console.WriteLine($"merge (slerp):                          {mergeBest:0.00} s  {bytes / mergeBest / 1e9:0.00} GB/s");
        Console.WriteLine($"throughput ratio merge/copy: {copyBest / mergeBest:0.00} (target >= 0.8)");
        Console.WriteLine($"peak RssAnon during merge: {peak / 1e6:0} MB (process baseline before runs {baseline / 1e6:0} MB; target < 2000 MB)");
        foreach (var d in new[] { "warm", "copy", "merged" }) Directory.Delete(Path.Combine(work, d), true);

        // Bounded memory: the same merge with twice the layers.
        using (var plan8 = MergePlanner.PlanFile(WriteModelsAndRecipe(work, cfg, 8)))
        {
            long peak8 = 0;
            for (int rep = 0; rep < 2; rep++) // two runs, like the 4-layer figure
            {
                TiesMemoryBenchmark.Compact(); // the 8-layer models may have just been synthesized in this process
                using var sampler = new PeakSampler();
                MergeExecutor.Run(plan8, Path.Combine(work, "merged8"), new ExecuteOptions { Threads = threads, Force = true });
                peak8 = Math.Max(peak8, sampler.Stop());
            }
            Console.WriteLine($"peak RssAnon with 8 layers: {peak8 / 1e6:0} MB ({ByteSize.Format(plan8.WriteBytes)} written) vs {peak / 1e6:0} MB with 4: ratio {(double)peak8 / peak:0.00} (must not grow with layers)");
            Directory.Delete(Path.Combine(work, "merged8"), true);
        }
        return 0;
    }

    /// <summary>Synthesizes the two models with <paramref name="layers"/> layers (kept between runs) and writes the recipe.</summary>
    private static string WriteModelsAndRecipe(string work, ModelConfig cfg, int layers)
    {
        string suffix = layers == 4 ? "" : layers.ToString(CultureInfo.InvariantCulture);
        foreach (var (m, seed) in new[] { ("a" + suffix, 1UL), ("b" + suffix, 2UL) })
            if (!File.Exists(Path.Combine(work, m, "config.json")))
            {
                Console.WriteLine($"synthesizing {m} ...");
                Synthesizer.Write(Path.Combine(work, m), cfg, new SynthOptions { LayersOverride = layers, DType = DType.BF16, Seed = seed });
            }
        var path = Path.Combine(work, $"slerp{suffix}.yml");
        File.WriteAllText(path, Recipe.Replace("SUFFIX", suffix).Replace("LAYERS", layers.ToString(CultureInfo.InvariantCulture)));
        return path;
    }

    /// <summary>The baseline: every input byte read (summed, so it cannot be skipped), the output written.</summary>
    private static void Copy(MergePlan plan, string dest, int threads)
    {
        using var writer = new CheckpointWriter(dest, plan.OutputTensors, new WriterOptions { Force = true });
        long sink = 0;
        // Tensors handed out one at a time in file order, as the writers of convert/synth do (fewer extents).
        var inOrder = System.Collections.Concurrent.Partitioner.Create(plan.Tasks, System.Collections.Concurrent.EnumerablePartitionerOptions.NoBuffering);
        Parallel.ForEach(inOrder, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => 0L, (task, _, acc) =>
        {
            foreach (var input in task.Inputs)
            {
                long len = input.Info.ByteLength;
                for (long off = 0; off < len; off += 1 << 24)
                {
                    var span = input.File.GetBytes(input.Info, off, (int)Math.Min(1 << 24, len - off));
                    acc += Sum(span);
                }
            }
            var src = task.Inputs[0];
            for (long off = 0; off < task.WriteBytes; off += 1 << 24)
                writer.Write(task.OutputName, src.File.GetBytes(src.Info, off, (int)Math.Min(1 << 24, task.WriteBytes - off)), off);
            return acc;
        }, acc => Interlocked.Add(ref sink, acc));
        writer.Commit(force: true);
        if (sink == 42) Console.Write(""); // keep the reads observable
    }

    private static long Sum(ReadOnlySpan<byte> s)
    {
        var v = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(s);
        ulong acc = 0;
        foreach (var x in v) acc += x;
        return (long)acc;
    }

    public static long RssAnon()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }

    internal sealed class PeakSampler : IDisposable
    {
        private long _peak;
        private volatile bool _stop;
        private readonly Thread _t;
        public PeakSampler()
        {
            _t = new Thread(() => { while (!_stop) { _peak = Math.Max(_peak, RssAnon()); Thread.Sleep(2); } }) { IsBackground = true };
            _t.Start();
        }
        public long Stop() { _stop = true; _t.Join(); return Math.Max(_peak, RssAnon()); }
        public void Dispose() { if (!_stop) Stop(); }
    }
}
