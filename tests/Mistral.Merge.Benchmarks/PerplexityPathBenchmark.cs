using System.Diagnostics;
using Mistral.Merge.Inference;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// The perplexity path against the forward pass alone, in one run on the 7B-shaped 4-layer bf16 model: tokens/s of
/// <see cref="Perplexity.Evaluate"/> (one window of ctx tokens, what <c>perplexity --ctx N</c> does per window) vs
/// <see cref="CpuBackend.Forward"/> over the same tokens, their ratio, and where the perplexity path spends its time
/// (<see cref="ForwardProfile"/> stages, the scoring of the logits, and the serial scoring loop it replaced).
/// Wall time and the process's CPU time are both reported: on a shared machine the CPU-time ratio is the steadier one.
/// </summary>
public static class PerplexityPathBenchmark
{
    public static int Run(string[] args)
    {
        int threads = BenchmarkArgs.Int(args, "--threads", CpuTopology.PhysicalCoreCount);
        int reps = BenchmarkArgs.Int(args, "--reps", 2);
        string dir = BenchmarkArgs.String(args, "--model") ?? "/tmp/mm7b";
        var ctxs = (BenchmarkArgs.String(args, "--ctx") ?? "512,128").Split(',').Select(int.Parse).ToArray();
        EnsureModel(dir);
        using var model = TransformerModel.Load(dir);
        using var backend = new CpuBackend(model, threads);
        Console.WriteLine($"perplexity path vs forward pass: {dir}, {backend.Name}, best of {reps}");
        var rng = new Random(1);
        var ids = Enumerable.Range(0, ctxs.Max()).Select(_ => rng.Next(3, model.Shape.Vocab)).ToArray();
        if (args.Contains("--cold")) // as the perplexity command runs it: the first forward pass of the process, JIT tiers cold
        {
            var cpu0 = CpuSeconds();
            var r = Perplexity.Evaluate(backend, ids[..ctxs[0]], ctxs[0], ctxs[0]);
            Console.WriteLine($"[ctx {ctxs[0]}] perplexity as the first call of the process (cold JIT): {r.TokensPerSecond:0.00} tokens/s ({r.Seconds:0.000} s, {CpuSeconds() - cpu0:0.000} s CPU)");
        }
        using (var c = backend.CreateCache(32)) // warm-up: JIT, page-in
            backend.Forward(ids.AsSpan(0, 32), Enumerable.Range(0, 32).ToArray(), c, new float[32 * model.Shape.Vocab]);
        foreach (int ctx in ctxs) Measure(backend, ids[..ctx], reps);
        return 0;
    }

    private static void Measure(CpuBackend backend, int[] ids, int reps)
    {
        int ctx = ids.Length, vocab = backend.Shape.Vocab;
        var logits = new float[(long)ctx * vocab];
        var positions = Enumerable.Range(0, ctx).ToArray();
        using var cache = backend.CreateCache(ctx);
        double forward = double.MaxValue, forwardCpu = double.MaxValue, pplCpu = double.MaxValue;
        PerplexityResult? best = null;
        var profile = new ForwardProfile();
        for (int rep = 0; rep < reps; rep++) // alternate, so both see the same machine load
        {
            cache.Reset();
            double cpu0 = CpuSeconds();
            var sw = Stopwatch.StartNew();
            backend.Forward(ids, positions, cache, logits);
            forward = Math.Min(forward, sw.Elapsed.TotalSeconds);
            forwardCpu = Math.Min(forwardCpu, CpuSeconds() - cpu0);

            profile.Reset();
            backend.Profile = profile;
            cpu0 = CpuSeconds();
            var r = Perplexity.Evaluate(backend, ids, ctx, ctx);
            pplCpu = Math.Min(pplCpu, CpuSeconds() - cpu0);
            backend.Profile = null;
            if (best == null || r.Seconds < best.Seconds) { best = r; Print(ctx, profile, r); }
        }
        double fwdRate = ctx / forward, pplRate = best!.TokensPerSecond;
        Console.WriteLine($"[ctx {ctx}] forward alone {fwdRate:0.00} tokens/s ({forward:0.000} s); perplexity {pplRate:0.00} tokens/s "
            + $"({best.Tokens} scored in {best.Seconds:0.000} s); perplexity/forward = {pplRate / fwdRate:0.000}");
        Console.WriteLine($"[ctx {ctx}] CPU time: forward alone {forwardCpu:0.000} s, perplexity {pplCpu:0.000} s; perplexity/forward in tokens per CPU second = {(double)best.Tokens / ctx * forwardCpu / pplCpu:0.000}");

        // the serial scoring loop Perplexity.Evaluate ran before (guard scan, then one log-softmax per position), on the same logits
        var t0 = Stopwatch.GetTimestamp();
        LogitsGuard.Check(backend, logits, ids);
        double nll = 0;
        for (int t = 1; t < ctx; t++) nll += LogMath.Nll(logits.AsSpan((t - 1) * vocab, vocab), ids[t]);
        double serial = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        Console.WriteLine($"[ctx {ctx}] scoring: parallel {best.ScoringSeconds * 1e3:0.0} ms, the former serial loop {serial * 1e3:0.0} ms (mean NLL {nll / (ctx - 1):0.000000} vs {best.MeanNll:0.000000})");
    }

    private static double CpuSeconds() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    private static void Print(int ctx, ForwardProfile p, PerplexityResult r)
    {
        var parts = ForwardProfile.Stages.Select(s => $"{s.ToString().ToLowerInvariant()} {p[s].TotalSeconds:0.000}");
        double other = r.Seconds - p.Total.TotalSeconds - r.ScoringSeconds;
        Console.WriteLine($"[ctx {ctx}] perplexity breakdown (s): {string.Join(", ", parts)}, scoring {r.ScoringSeconds:0.000}, other {other:0.000}; total {r.Seconds:0.000}");
    }

    /// <summary>The inference benchmark's model (<c>inference --keep DIR</c> writes the same one), synthesized once into a temporary folder and moved into place.</summary>
    private static void EnsureModel(string dir)
    {
        if (File.Exists(Path.Combine(dir, "config.json"))) return;
        if (Directory.Exists(dir)) throw new MergeException($"{dir} exists without a config.json (being written by another run?)");
        string tmp = dir + ".partial-" + Environment.ProcessId;
        var sw = Stopwatch.StartNew();
        var config = Synthesizer.MakeConfig("mistral", 4096, 32, 32, 8, 14336, 32000);
        Synthesizer.Write(tmp, config, new SynthOptions { LayersOverride = 4, DType = DType.BF16, Seed = 1, Writer = new WriterOptions { Force = true } });
        Directory.Move(tmp, dir);
        Console.WriteLine($"synthesized a 7B-shaped bf16 model with 4 layers into {dir} in {sw.Elapsed.TotalSeconds:0.0} s");
    }
}
