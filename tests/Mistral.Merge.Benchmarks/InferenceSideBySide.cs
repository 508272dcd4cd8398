using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Mistral.Merge.Inference;
using Mistral.Merge.Inference.Gguf;
using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Tests;
using Mistral.Merge.Tests.Benchmarks;

namespace Mistral.Merge.Benchmarks;

/// <summary>
/// Issue 13's side-by-side table: our prefill (128 and 512 tokens) and decode on the 7B-shaped model as bf16 and as
/// q8_0 (our own GGUF export, loaded by GgufModelLoader), and, with <c>--llama-bench PATH</c>, llama.cpp's pp128/pp512/tg32
/// on that model exported by our export-gguf to F16, BF16 and Q8_0, with ours/llama.cpp ratios. Every figure is the
/// best of <c>reps</c> runs (llama-bench: the best of its -r repetitions, after its warm-up); with <c>rounds</c> &gt; 1
/// the whole sequence (ours, then llama-bench) runs again and each figure is its best over the rounds, so that a slow
/// minute of a noisy machine does not land on one side only.
/// </summary>
public static class InferenceSideBySide
{
    private const int Decode = 32;
    private static readonly int[] Prompts = [128, 512];

    /// <summary>Our figures for one weight format, tokens/s.</summary>
    private sealed record Ours(double Ppl128, double Ppl512, double Fwd128, double Fwd512, double FwdAll512, double Tg32)
    {
        public Ours Max(Ours? o) => o == null ? this : new(Math.Max(Ppl128, o.Ppl128), Math.Max(Ppl512, o.Ppl512),
            Math.Max(Fwd128, o.Fwd128), Math.Max(Fwd512, o.Fwd512), Math.Max(FwdAll512, o.FwdAll512), Math.Max(Tg32, o.Tg32));
    }

    /// <summary>A --llama-bench path that is not a file: one-line error before anything is measured.</summary>
    public static void CheckBinary(string? llamaBench)
    {
        if (llamaBench != null && !File.Exists(llamaBench))
            throw new MergeException($"--llama-bench: {llamaBench} does not exist (build it with tests/llama-bench/build.sh)");
    }

    public static void Run(string modelDir, int threads, double fmaPeak, string? llamaBench, int reps, int rounds = 1)
    {
        Console.WriteLine();
        Console.WriteLine($"side by side: {MachineLine(threads)}");
        Console.WriteLine($"  FMA peak {fmaPeak:0.0} GFLOP/s (MachinePeak.FmaGflops: 12 independent chains per thread, {threads} threads)");

        var q8 = Exported(modelDir, GgmlType.Q8_0, threads);
        var files = llamaBench == null ? [] : new[] { ("F16", Exported(modelDir, GgmlType.F16, threads)), ("BF16", Exported(modelDir, GgmlType.BF16, threads)), ("Q8_0", q8) };
        Ours? bf16 = null, q80 = null;
        Dictionary<string, Dictionary<string, LlamaBenchResult>>? llama = llamaBench == null ? null : [];
        var perRound = new List<string>(); // the goals' ratios of each round alone
        for (int round = 1; round <= rounds; round++)
        {
            if (rounds > 1) Console.WriteLine($"  round {round} of {rounds}");
            Ours b16, q;
            using (var model = TransformerModel.Load(modelDir)) bf16 = (b16 = Measure("bf16", model, threads, reps)).Max(bf16);
            using (var model = GgufModelLoader.Load(q8)) q80 = (q = Measure("q8_0", model, threads, reps)).Max(q80);
            var thisRound = new Dictionary<string, double>();
            foreach (var (name, file) in files)
            {
                var results = LlamaBench.Run(llamaBench!, file, threads, Prompts, Decode, reps, TimeSpan.FromMinutes(20));
                var best = llama!.TryGetValue(name, out var b) ? b : llama[name] = [];
                foreach (var r in results)
                {
                    Console.WriteLine($"  llama-bench {name} {r.Test}: best {r.BestTokensPerSecond:0.00}, mean {r.AvgTokensPerSecond:0.00} ± {r.StddevTokensPerSecond:0.00} tokens/s");
                    if (!best.TryGetValue(r.Test, out var old) || r.BestTokensPerSecond > old.BestTokensPerSecond) best[r.Test] = r;
                    thisRound[$"{name} {r.Test}"] = r.BestTokensPerSecond;
                }
            }
            if (files.Length > 0)
                perRound.Add($"round {round}: {b16.Fwd512 / thisRound["F16 pp512"]:0.00}, {b16.Tg32 / thisRound[$"F16 tg{Decode}"]:0.00}, {q.Tg32 / thisRound[$"Q8_0 tg{Decode}"]:0.00}");
        }
        if (llama != null)
        {
            var any = llama["F16"].Values.First();
            Console.WriteLine($"  llama.cpp build {any.BuildNumber} ({any.BuildCommit}), cpu_info '{any.CpuInfo}', {any.Threads} threads");
        }
        PrintTable(bf16!, q80!, llama);
        // Each figure above is its best over the rounds; each round alone shows how far the machine's noise moves
        // a ratio (a quiet minute can land on one side only).
        if (perRound.Count > 1)
            Console.WriteLine($"  issue 13's goals per round (prefill 512 forward alone / F16 pp512, bf16 decode / F16 tg{Decode}, q8_0 decode / Q8_0 tg{Decode}): {string.Join("; ", perRound)}.");
    }

    private static void PrintTable(Ours bf16, Ours q80, Dictionary<string, Dictionary<string, LlamaBenchResult>>? llama)
    {
        string L(string type, string test) => llama == null ? "—" : $"{llama[type][test].BestTokensPerSecond:0.0}";
        string R(double ours, string type, string test) => llama == null ? "—" : $"{ours / llama[type][test].BestTokensPerSecond:0.00}×";
        Console.WriteLine();
        Console.WriteLine("| tokens/s | ours bf16 | ours q8_0 | llama.cpp F16 | llama.cpp BF16 | llama.cpp Q8_0 | bf16 / F16 | bf16 / BF16 | q8_0 / Q8_0 |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        void Row(string label, double b, double q, string test) =>
            Console.WriteLine($"| {label} | {b:0.0} | {q:0.0} | {L("F16", test)} | {L("BF16", test)} | {L("Q8_0", test)} | {R(b, "F16", test)} | {R(b, "BF16", test)} | {R(q, "Q8_0", test)} |");
        Row("prefill 512, perplexity path (ours) / pp512", bf16.Ppl512, q80.Ppl512, "pp512");
        Row("prefill 512, forward alone (ours) / pp512", bf16.Fwd512, q80.Fwd512, "pp512");
        Row("prefill 128, perplexity path (ours) / pp128", bf16.Ppl128, q80.Ppl128, "pp128");
        Row("prefill 128, forward alone (ours) / pp128", bf16.Fwd128, q80.Fwd128, "pp128");
        Row($"decode {Decode} from an empty cache / tg{Decode}", bf16.Tg32, q80.Tg32, $"tg{Decode}");
        Console.WriteLine();
        Console.WriteLine("  perplexity path: Perplexity.Evaluate over one window of N tokens (what `perplexity --ctx N` runs): logits for");
        Console.WriteLine("    all N positions and their log-softmax NLL; tokens/s = N / time.");
        Console.WriteLine("  forward alone: one CpuBackend.Forward of N tokens from an empty cache with the logits of the last token only;");
        Console.WriteLine("    llama-bench ppN computes the same (N tokens in one batch, logits of the last token only; both run the last");
        Console.WriteLine("    layer past its keys and values for the output row only).");
        Console.WriteLine($"  decode: {Decode} single-token forwards from an empty cache (= llama-bench tg{Decode}).");
        Console.WriteLine($"  perplexity path / forward with the logits of all 512 positions (the same model work; issue 13 asks ≥ 0.9):");
        Console.WriteLine($"    bf16 {bf16.Ppl512:0.0} / {bf16.FwdAll512:0.0} = {bf16.Ppl512 / bf16.FwdAll512:0.00}, q8_0 {q80.Ppl512:0.0} / {q80.FwdAll512:0.0} = {q80.Ppl512 / q80.FwdAll512:0.00}.");
        Console.WriteLine("  ours q8_0: our export-gguf --type q8_0 of the same model, loaded by GgufModelLoader (the same file llama-bench reads).");
    }

    private static Ours Measure(string label, TransformerModel model, int threads, int reps)
    {
        using var backend = new CpuBackend(model, threads);
        int vocab = backend.Shape.Vocab;
        var rng = new Random(3);
        var ids = Enumerable.Range(0, 512).Select(_ => rng.Next(3, vocab)).ToArray();
        var positions = Enumerable.Range(0, 512).ToArray();
        var last = new float[vocab];
        using var cache = backend.CreateCache(512);
        backend.Forward(ids.AsSpan(0, 32), positions.AsSpan(0, 32), cache, last); // warm-up: JIT, page-in

        double Best(Action a)
        {
            double best = double.MaxValue;
            for (int r = 0; r < reps; r++)
            {
                var sw = Stopwatch.StartNew();
                a();
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return best;
        }
        double Forward(int n) => n / Best(() => { cache.Reset(); backend.Forward(ids.AsSpan(0, n), positions.AsSpan(0, n), cache, last); });
        double Ppl(int n) => n / Best(() => Perplexity.Evaluate(backend, ids[..n], n, n));
        var all = new float[512L * vocab];
        double ForwardAll(int n) => n / Best(() => { cache.Reset(); backend.Forward(ids.AsSpan(0, n), positions.AsSpan(0, n), cache, all.AsSpan(0, n * vocab)); });
        double Tg() => Decode / Best(() =>
        {
            cache.Reset();
            for (int t = 0; t < Decode; t++) backend.Forward(ids.AsSpan(t, 1), positions.AsSpan(t, 1), cache, last);
        });
        var o = new Ours(Ppl(128), Ppl(512), Forward(128), Forward(512), ForwardAll(512), Tg());
        Console.WriteLine($"  ours {label}: perplexity path {o.Ppl128:0.0} / {o.Ppl512:0.0}, forward alone {o.Fwd128:0.0} / {o.Fwd512:0.0} tokens/s at 128 / 512, with all 512 logits {o.FwdAll512:0.0}; decode {o.Tg32:0.0} tokens/s");
        return o;
    }

    private static readonly GgmlType[] ExportTypes = [GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0];

    /// <summary>Where the GGUF export of <paramref name="modelDir"/> to <paramref name="type"/> goes: beside the folder.</summary>
    private static string ExportPath(string modelDir, GgmlType type) =>
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir)) + "." + type.ToString().ToLowerInvariant() + ".gguf";

    /// <summary>Deletes the GGUF exports of a model folder the benchmark made for this run only (no --keep).</summary>
    public static void DeleteExports(string modelDir)
    {
        foreach (var type in ExportTypes) File.Delete(ExportPath(modelDir, type));
    }

    /// <summary>The model exported by our GGUF exporter to <paramref name="type"/>, beside the model folder (kept with it).</summary>
    private static string Exported(string modelDir, GgmlType type, int threads)
    {
        var path = ExportPath(modelDir, type);
        if (File.Exists(path)) return path;
        // a GGUF file must carry a vocabulary: the synthesized model gets Mistral's 32000-piece tokenizer.model
        var tok = Path.Combine(modelDir, "tokenizer.model");
        if (!File.Exists(tok))
        {
            var fixture = SharedFixtures.PathOf("tokenizers", "mistral-v1", "tokenizer.model");
            if (!File.Exists(fixture)) throw new MergeException($"{modelDir}: no tokenizer.model for the GGUF export, and {fixture} is not there to copy");
            File.Copy(fixture, tok);
        }
        var sw = Stopwatch.StartNew();
        GgufExporter.Export(modelDir, path, new GgufExportOptions { Type = type, Threads = threads });
        Console.WriteLine($"  exported {path} ({new FileInfo(path).Length / 1e9:0.00} GB) in {sw.Elapsed.TotalSeconds:0.0} s");
        return path;
    }

    /// <summary>CPU model, instruction set (with the AVX-512 sub-features and NEON dot product that MachinePeak.InstructionSet leaves out) and core count.</summary>
    private static string MachineLine(int threads)
    {
        string cpu = RuntimeInformation.ProcessArchitecture.ToString();
        if (File.Exists("/proc/cpuinfo"))
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu;
        string isa = Avx512F.IsSupported ? "AVX-512F" + (Avx512BW.IsSupported ? "+BW" : "") + (Avx512Vbmi.IsSupported ? "+VBMI" : "")
            : Avx2.IsSupported && Fma.IsSupported ? "AVX2+FMA (no AVX-512)"
            : AdvSimd.IsSupported ? "NEON (AdvSimd)" + (Dp.IsSupported ? "+dotprod" : "")
            : "no SIMD beyond SSE";
        return $"{cpu}, {isa}, Vector512 accelerated {Vector512.IsHardwareAccelerated}, {Environment.ProcessorCount} logical processors, {threads} threads";
    }
}
