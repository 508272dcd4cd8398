using System.Diagnostics;
using Mistral.Merge.Cuda;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Benchmarks.Cuda;

/// <summary>
/// GPU benchmark (NOT YET RUN: written without access to a GPU).
///  1. Baselines measured in the same run: device-to-device copy bandwidth (HBM) and cuBLAS bf16 GEMM peak
///     (8192³, f32 accumulation).
///  2. A 7B-shaped bf16 Mistral (4096 hidden, 32 layers, 32/8 heads, 14336 MLP, 32000 vocab), weights synthesized
///     in memory: decode tokens/s as a fraction of the roofline (measured bandwidth ÷ weight bytes per token;
///     target ≥ 70 %), and perplexity-style prefill tokens/s with achieved TFLOP/s as a fraction of the GEMM peak
///     (target ≥ 30 %).
///  3. A Mixtral-8x7B-shaped bf16 model with --offload (94 GB of weights through two device slots): prefill and
///     decode throughput and the achieved host→device streaming rate.
/// Options: --quick (small shapes, a smoke run), --skip-mixtral, --decode-steps N (128), --prefill-windows N (4).
/// </summary>
public static class CudaBenchmark
{
    public static int Run(string[] args)
    {
        bool quick = args.Contains("--quick"), skipMixtral = args.Contains("--skip-mixtral");
        int decodeSteps = IntOpt(args, "--decode-steps", quick ? 16 : 128);
        int windows = IntOpt(args, "--prefill-windows", quick ? 1 : 4);

        using var ctx = CudaRuntime.Open();
        Console.WriteLine($"# CUDA benchmark — {ctx} — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        var sw = Stopwatch.StartNew();
        _ = ctx.Kernels;
        Console.WriteLine($"kernels: {(ctx.Kernels.LoadedFromCache ? "from cache" : "compiled by NVRTC")} in {sw.Elapsed.TotalSeconds:F2} s");

        double bandwidth = MeasureBandwidth(ctx, quick ? 256L << 20 : 2L << 30);
        double gemmPeak = MeasureGemmPeak(ctx, quick ? 2048 : 8192);
        Console.WriteLine($"| baseline | value |\n|---|---|");
        Console.WriteLine($"| device copy bandwidth (read+write) | {bandwidth / 1e9:F0} GB/s (theoretical {ctx.TheoreticalBandwidth / 1e9:F0} GB/s) |");
        Console.WriteLine($"| cuBLAS bf16 GEMM peak | {gemmPeak / 1e12:F1} TFLOP/s |");

        var dense = quick
            ? SyntheticWeights.MakeConfig("mistral", 1024, 4, 8, 2, 3584, 32000)
            : SyntheticWeights.MakeConfig("mistral", 4096, 32, 32, 8, 14336, 32000);
        RunModel(ctx, "7B-shaped (bf16, resident)", dense, offload: false, bandwidth, gemmPeak, decodeSteps, windows);

        if (!skipMixtral)
        {
            var moe = quick
                ? SyntheticWeights.MakeConfig("mixtral", 1024, 4, 8, 2, 3584, 32000, experts: 8, expertsPerToken: 2)
                : SyntheticWeights.MakeConfig("mixtral", 4096, 32, 32, 8, 14336, 32000, experts: 8, expertsPerToken: 2);
            RunModel(ctx, "Mixtral-8x7B-shaped (bf16, --offload)", moe, offload: true, bandwidth, gemmPeak, quick ? 4 : 8, 1);
        }
        return 0;
    }

    private static int IntOpt(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var v) && v > 0 ? v : fallback;
    }

    private static void RunModel(CudaContext ctx, string label, ModelConfig config, bool offload, double bandwidth, double gemmPeak, int decodeSteps, int windows)
    {
        var src = new SyntheticWeights(config, DType.BF16, seed: 42, shareAcrossLayers: true);
        var sw = Stopwatch.StartNew();
        using var m = CudaTransformer.Load(ctx, src, new CudaTransformerOptions { Offload = offload, ChunkTokens = 512, MaxSequence = 4096 });
        double load = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"\n## {label}\nweights {ByteSize.Format(m.WeightBytesPerToken)} ({(m.Offloaded ? "streamed" : "resident")}), load {load:F1} s");

        // Prefill: perplexity-style windows of 512 tokens scored from an empty cache.
        var rng = new Random(1);
        var window = Enumerable.Range(0, 512).Select(_ => rng.Next(config.VocabSize)).ToArray();
        m.TokenNll(window);   // warm-up (cuBLAS heuristics, first-touch)
        sw.Restart();
        for (int w = 0; w < windows; w++) m.TokenNll(window);
        double prefillS = sw.Elapsed.TotalSeconds;
        double tokens = (double)windows * window.Length;
        double flops = tokens * FlopsPerToken(config, window.Length);
        Console.WriteLine("| measure | value | vs baseline |\n|---|---|---|");
        Console.WriteLine($"| prefill (512-token windows) | {tokens / prefillS:F0} tokens/s, {flops / prefillS / 1e12:F1} TFLOP/s | {flops / prefillS / gemmPeak:P0} of GEMM peak (target ≥ 30 %) |");

        // Decode: one token at a time over the KV cache after a 16-token prompt.
        m.Reset();
        m.Forward(window.AsSpan(0, 16));
        m.Forward(window.AsSpan(16, 1));   // warm-up of the decode kernels
        sw.Restart();
        for (int s = 0; s < decodeSteps; s++) m.Forward(window.AsSpan(17 + s % 400, 1));
        double perToken = sw.Elapsed.TotalSeconds / decodeSteps;
        if (!m.Offloaded)
        {
            double roofline = bandwidth / m.WeightBytesPerToken;
            Console.WriteLine($"| decode | {1 / perToken:F1} tokens/s | {1 / perToken / roofline:P0} of the HBM roofline {roofline:F1} tokens/s (target ≥ 70 %) |");
        }
        else
        {
            double streamed = (double)m.LayerBytes * config.NumHiddenLayers;
            Console.WriteLine($"| decode (streamed) | {perToken:F2} s/token | host→device {streamed / perToken / 1e9:F1} GB/s of layer weights |");
            Console.WriteLine($"| prefill streaming rate | {streamed * windows / prefillS / 1e9:F1} GB/s | every layer crosses PCIe once per 512-token window |");
        }
    }

    /// <summary>2 · (matmul parameters touched per token) + attention (QKᵀ and PV over the causal average T/2 keys).</summary>
    private static double FlopsPerToken(ModelConfig c, int T)
    {
        double h = c.HiddenSize, d = c.HeadDim, H = c.NumAttentionHeads, kv = c.NumKeyValueHeads, I = c.IntermediateSize;
        double attnProj = h * (H + 2 * kv) * d + H * d * h;
        double mlp = 3 * h * I * (c.IsMoe ? c.NumExpertsPerTok : 1) + (c.IsMoe ? h * c.NumLocalExperts : 0);
        double perLayer = 2 * (attnProj + mlp) + 2 * 2 * (T / 2.0) * H * d;
        return c.NumHiddenLayers * perLayer + 2 * h * c.VocabSize;
    }

    /// <summary>Device-to-device copies of <paramref name="bytes"/>; counts bytes read + written.</summary>
    private static double MeasureBandwidth(CudaContext ctx, long bytes)
    {
        using var a = ctx.Alloc(bytes, "bandwidth source");
        using var b = ctx.Alloc(bytes, "bandwidth destination");
        using var s = ctx.CreateStream();
        using var e0 = ctx.CreateEvent(timing: true);
        using var e1 = ctx.CreateEvent(timing: true);
        s.CopyDeviceAsync(b.Ptr, a.Ptr, bytes);
        s.Synchronize();
        const int Reps = 10;
        e0.Record(s);
        for (int i = 0; i < Reps; i++) s.CopyDeviceAsync(b.Ptr, a.Ptr, bytes);
        e1.Record(s);
        e1.Synchronize();
        return 2.0 * bytes * Reps / (e1.ElapsedSince(e0) / 1000.0);
    }

    private static double MeasureGemmPeak(CudaContext ctx, int n)
    {
        long elems = (long)n * n;
        using var w = ctx.Alloc(elems * 2, "GEMM W");
        using var x = ctx.Alloc(elems * 2, "GEMM X");
        using var y = ctx.Alloc(elems * 4, "GEMM Y");
        using var s = ctx.CreateStream();
        using var blas = new CudaBlas(ctx, s);
        ctx.Kernels.FillRandomBf16(s, w.Ptr, elems, 1, 0.05f);
        ctx.Kernels.FillRandomBf16(s, x.Ptr, elems, 2, 1f);
        for (int i = 0; i < 3; i++) blas.Linear(true, w.Ptr, x.Ptr, y.Ptr, n, n, n);
        using var e0 = ctx.CreateEvent(timing: true);
        using var e1 = ctx.CreateEvent(timing: true);
        const int Reps = 10;
        e0.Record(s);
        for (int i = 0; i < Reps; i++) blas.Linear(true, w.Ptr, x.Ptr, y.Ptr, n, n, n);
        e1.Record(s);
        e1.Synchronize();
        return 2.0 * n * n * (double)n * Reps / (e1.ElapsedSince(e0) / 1000.0);
    }
}
