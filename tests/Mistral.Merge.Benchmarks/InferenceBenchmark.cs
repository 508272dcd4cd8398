using System.Diagnostics;
using System.Runtime.Intrinsics;
using Mistral.Merge.Inference;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// Forward-pass speed on a 7B-shaped synthesized bf16 model (4 layers by default) and on stories260k:
/// prefill tokens/s with the GFLOP/s of the projections, decode tokens/s with the weight-streaming
/// GB/s. Baselines measured in the same run: the machine's FMA peak (<see cref="MachinePeak"/>) and
/// the read bandwidth of a plain vectorized sum over the same weights (<see cref="WeightRead"/>).
/// </summary>
public static unsafe class InferenceBenchmark
{
    public static int Run(string[] args)
    {
        int threads = BenchmarkArgs.Int(args, "--threads", CpuTopology.PhysicalCoreCount);
        int prefill = BenchmarkArgs.Int(args, "--prefill", 128);
        int decode = BenchmarkArgs.Int(args, "--decode", 16);
        int layers = BenchmarkArgs.Int(args, "--layers", 4);
        string? keep = BenchmarkArgs.String(args, "--keep");
        string? llamaBench = BenchmarkArgs.String(args, "--llama-bench");
        InferenceSideBySide.CheckBinary(llamaBench); // before the long part: a wrong path is a one-line error at once
        bool decodeOnly = args.Contains("--decode-only"); // skip the prefill timings and the GEMM-only lines
        Console.WriteLine($"inference benchmark: {threads} threads, GEMM kernel {PackedGemmKernel.NativeBits}-bit, .NET's Vector512 accelerated {Vector512.IsHardwareAccelerated}, {Environment.ProcessorCount} logical processors");

        double peak = MachinePeak.FmaGflops(threads);
        Console.WriteLine($"machine FMA peak ({MachinePeak.InstructionSet}, 12 independent chains per thread, {threads} threads): {peak:0.0} GFLOP/s");

        string dir = keep ?? Path.Combine(Path.GetTempPath(), "mm-bench-7b-" + Environment.ProcessId);
        try
        {
            if (!File.Exists(Path.Combine(dir, "config.json")))
            {
                var sw = Stopwatch.StartNew();
                var config = Synthesizer.MakeConfig("mistral", 4096, 32, 32, 8, 14336, 32000);
                Synthesizer.Write(dir, config, new SynthOptions { LayersOverride = layers, DType = DType.BF16, Seed = 1, Writer = new WriterOptions { Force = true } });
                Console.WriteLine($"synthesized a 7B-shaped bf16 model with {layers} layers in {sw.Elapsed.TotalSeconds:0.0} s");
            }
            using (var model = TransformerModel.Load(dir))
            {
                double stream = StreamBaseline(model, threads);
                Console.WriteLine($"baseline weight read (vectorized sum over the same {model.WeightBytes / 1e9:0.00} GB in the GEMV's jobs on the pool, {threads} threads, the faster of plain and prefetching): {stream:0.0} GB/s");
                Measure("7B-shaped bf16, " + layers + " layers", model, threads, decodeOnly ? 0 : prefill, decode, peak, stream);
                if (!decodeOnly) GemmOnly(threads, peak = RemeasuredPeak(peak, threads));
            }
            // --weights q8_0: the same model quantized at load; its read baseline is over the Q8_0 bytes.
            var swq = Stopwatch.StartNew();
            using (var model = TransformerModel.Load(dir, WeightFormat.Q8_0, threads))
            {
                Console.WriteLine($"quantized to q8_0 at load in {swq.Elapsed.TotalSeconds:0.0} s ({model.WeightBytes / 1e9:0.00} GB of projections)");
                double stream = StreamBaseline(model, threads);
                Console.WriteLine($"baseline weight read (vectorized sum over the same {model.WeightBytes / 1e9:0.00} GB in the GEMV's jobs on the pool, {threads} threads, the faster of plain and prefetching): {stream:0.0} GB/s");
                Measure("7B-shaped q8_0, " + layers + " layers", model, threads, 0, decode, peak, stream);
                using var bf16 = TransformerModel.Load(dir);
                GemvOnly("gate_proj", bf16.Layers[0].Gate!.Value, model.Layers[0].Gate!.Value, threads);
                GemvOnly("down_proj", bf16.Layers[0].Down!.Value, model.Layers[0].Down!.Value, threads);
            }
            // issue 13's table: bf16 and q8_0 at 128/512 tokens, and llama-bench on our GGUF exports (with --llama-bench,
            // three rounds by default: one round lets a slow minute of a shared machine land on one side only, and on
            // the Zen 5 of 2026-12-01 two rounds still did once in four runs — each side's decode in the other's minute)
            InferenceSideBySide.Run(dir, threads, peak = RemeasuredPeak(peak, threads), llamaBench, BenchmarkArgs.Int(args, "--reps", 3), BenchmarkArgs.Int(args, "--rounds", llamaBench != null ? 3 : 1));
            var stories = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../../shared/fixtures/stories260k"));
            if (Directory.Exists(stories))
                using (var model = TransformerModel.Load(stories)) Measure("stories260k (f32)", model, threads, 256, 256, peak, 0);
            else Console.WriteLine($"stories260k not found at {stories}; skipped");
        }
        finally
        {
            if (keep == null)
            {
                // the synthesized model and its GGUF exports (5.7 GB beside the folder) were made for this run only
                if (Directory.Exists(dir)) Directory.Delete(dir, true);
                InferenceSideBySide.DeleteExports(dir);
            }
        }
        return 0;
    }

    private static void Measure(string label, TransformerModel model, int threads, int prefill, int decode, double peak, double stream)
    {
        var s = model.Shape;
        using var backend = new CpuBackend(model, threads);
        var rng = new Random(1);
        var tokens = Enumerable.Range(0, prefill + decode).Select(_ => rng.Next(3, s.Vocab)).ToArray();
        var logits = new float[(long)prefill * s.Vocab];
        var one = new float[s.Vocab];
        // projection FLOPs per token: 2 × (every layer matrix + the head); MoE: the routed experts only
        long perLayer = (long)s.Hidden * (s.QDim + 2 * s.KvDim) + (long)s.QDim * s.Hidden
            + (s.IsMoe ? s.ExpertsPerToken : 1) * 3L * s.Hidden * s.Intermediate + (s.IsMoe ? (long)s.Experts * s.Hidden : 0);
        double flopsPerToken = 2.0 * (s.Layers * perLayer + (long)s.Vocab * s.Hidden);

        using var cache = backend.CreateCache(prefill + decode);
        if (prefill == 0) // decode only: one warm-up token (JIT, page-in), then decode from position 0
        {
            backend.Forward(tokens.AsSpan(0, 1), [0], cache, one);
            cache.Reset();
        }
        else // warm-up (JIT, page-in), then the best of 3 prefills
            using (var c = backend.CreateCache(prefill + decode)) backend.Forward(tokens.AsSpan(0, Math.Min(prefill, 32)), Enumerable.Range(0, Math.Min(prefill, 32)).ToArray(), c, logits.AsSpan(0, Math.Min(prefill, 32) * s.Vocab));
        double best = double.MaxValue;
        for (int rep = 0; rep < 3 && prefill > 0; rep++)
        {
            cache.Reset();
            var sw = Stopwatch.StartNew();
            backend.Forward(tokens.AsSpan(0, prefill), Enumerable.Range(0, prefill).ToArray(), cache, logits);
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        double gflops = flopsPerToken * prefill / best / 1e9;
        if (prefill > 0) Console.WriteLine($"[{label}] prefill {prefill} tokens: {prefill / best:0.0} tokens/s, projections {gflops:0.0} GFLOP/s ({gflops / peak * 100:0}% of the FMA peak; whole forward pass timed)");

        var sw2 = Stopwatch.StartNew();
        for (int t = 0; t < decode; t++)
            backend.Forward(tokens.AsSpan(prefill + t, 1), [prefill + t], cache, one);
        double secs = sw2.Elapsed.TotalSeconds;
        double gbs = (double)model.WeightBytes * decode / secs / 1e9;
        Console.WriteLine($"[{label}] decode {decode} tokens: {decode / secs:0.0} tokens/s, weights streamed {gbs:0.00} GB/s" + (stream > 0 ? $" ({gbs / stream * 100:0}% of the read baseline)" : ""));

        // where a decode token's time goes: the same tokens again from the same start, timed per stage
        var profile = new ForwardProfile();
        using var again = backend.CreateCache(prefill + decode);
        if (prefill > 0) backend.Forward(tokens.AsSpan(0, prefill), Enumerable.Range(0, prefill).ToArray(), again, one);
        backend.Profile = profile;
        var sw3 = Stopwatch.StartNew();
        for (int t = 0; t < decode; t++)
            backend.Forward(tokens.AsSpan(prefill + t, 1), [prefill + t], again, one);
        double wall = sw3.Elapsed.TotalSeconds;
        backend.Profile = null;
        Console.WriteLine($"[{label}] decode stages, ms per token: " + string.Join(", ", ForwardProfile.Stages.Select(st => $"{st.ToString().ToLowerInvariant()} {profile[st].TotalMilliseconds / decode:0.00}"))
            + $"; outside the stages {(wall - profile.Total.TotalSeconds) * 1e3 / decode:0.00}; total {wall * 1e3 / decode:0.00}");
    }

    /// <summary>
    /// The FMA peak measured again before a section that reports a fraction of it, the best so far kept: on a shared
    /// machine one measurement can land in a slow minute (121 against 185–200 GFLOP/s once), which made every
    /// fraction after it read above 100 %.
    /// </summary>
    private static double RemeasuredPeak(double peak, int threads)
    {
        double now = MachinePeak.FmaGflops(threads);
        Console.WriteLine($"machine FMA peak measured again: {now:0.0} GFLOP/s; the best so far, {Math.Max(peak, now):0.0}, is the peak from here on");
        return Math.Max(peak, now);
    }

    /// <summary>The prefill projections alone: the packed GEMM on the 7B shapes at 128 and 512 tokens (<see cref="GemmBenchmark"/>).</summary>
    private static void GemmOnly(int threads, double peak) => GemmBenchmark.Report(threads, peak, [128, 512]);

    /// <summary>
    /// The decode projection alone on one matrix (gate_proj [14336, 4096]; down_proj [4096, 14336], whose x of 57 KB
    /// overflows a 48 KB L1) in bf16, in fp16 (a copy of the bf16 weights rounded to half, widened in registers by the
    /// GEMV) and in q8_0, each against a vectorized read of its own bytes on the same pool (the faster of the plain and
    /// the prefetching read); the nine are timed in turn, 10 rounds, best of each (robust on a shared machine).
    /// </summary>
    private static unsafe void GemvOnly(string name, WeightMatrix bf16, WeightMatrix q8, int threads)
    {
        using var pool = new WorkerPool(threads);
        using var gemv = new Gemv(pool);
        var reader = new WeightRead(pool);
        var rng = new Random(3);
        var x = new float[bf16.Cols];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextDouble() - 0.5f;
        var y = new float[bf16.Rows];
        byte* f16Bytes = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bf16.ByteLength, 64);
        try
        {
            var row = new float[bf16.Cols];
            for (int r = 0; r < bf16.Rows; r++)
            {
                Conversions.ToSingle(new ReadOnlySpan<byte>(bf16.At(r, 0), (int)bf16.RowBytes), DType.BF16, row);
                Conversions.FromSingle(row, DType.F16, new Span<byte>(f16Bytes + r * bf16.RowBytes, (int)bf16.RowBytes));
            }
            var f16 = new WeightMatrix(f16Bytes, DType.F16, bf16.Rows, bf16.Cols);
            WeightMatrix[] mats = [bf16, f16, q8];
            string[] names = ["bf16", "f16", "q8_0"];
            var best = new double[9]; // per matrix: the GEMV, the plain read, the prefetching read
            Array.Fill(best, double.MaxValue);
            for (int round = 0; round < 10; round++)
                for (int k = 0; k < 9; k++)
                {
                    var w = mats[k / 3];
                    var sw = Stopwatch.StartNew();
                    if (k % 3 == 0) gemv.Multiply(w, x, y);
                    else reader.Read(w, prefetch: k % 3 == 2);
                    best[k] = Math.Min(best[k], sw.Elapsed.TotalSeconds);
                }
            for (int i = 0; i < 3; i++)
            {
                var w = mats[i];
                double read = w.ByteLength / Math.Min(best[3 * i + 1], best[3 * i + 2]) / 1e9, mine = w.ByteLength / best[3 * i] / 1e9;
                Console.WriteLine($"[GEMV only] {name} [{w.Rows}, {w.Cols}] {names[i]}: {best[3 * i] * 1e3:0.00} ms, {mine:0.0} GB/s ({mine / read * 100:0}% of a read of its {w.ByteLength / 1e6:0} MB: {read:0.0} GB/s)");
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(f16Bytes);
        }
    }

    /// <summary>GB/s of a vectorized read of every layer matrix and the head, dealt out on the pool in the GEMV's jobs (<see cref="WeightRead"/>); best of 3 plain and 3 prefetching reads, alternated.</summary>
    private static double StreamBaseline(TransformerModel model, int threads)
    {
        var mats = new List<WeightMatrix>();
        foreach (var l in model.Layers) mats.AddRange([l.Q, l.K, l.V, l.O, l.Gate!.Value, l.Up!.Value, l.Down!.Value]);
        mats.Add(model.LmHead);
        using var pool = new WorkerPool(threads);
        var read = new WeightRead(pool);
        double best = 0;
        for (int rep = 0; rep < 6; rep++)
        {
            var sw = Stopwatch.StartNew();
            long bytes = 0;
            foreach (var m in mats) { read.Read(m, prefetch: rep % 2 == 1); bytes += m.ByteLength; }
            best = Math.Max(best, bytes / sw.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }
}
