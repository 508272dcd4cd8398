using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;

namespace Mistral.Merge.Tests.Benchmarks;

/// <summary>
/// One llama-bench test on one model: ppN (N prompt tokens in one batch, logits of the last token only) or tgN
/// (N tokens decoded one at a time from an empty cache). Tokens/s: llama-bench's mean (avg_ts, after its warm-up run)
/// and the best of its repetitions (max of samples_ts), the latter comparable with our best-of-N figures.
/// </summary>
public sealed record LlamaBenchResult(
    string ModelFile, string ModelType, int Threads, int Prompt, int Gen,
    double AvgTokensPerSecond, double StddevTokensPerSecond, double BestTokensPerSecond,
    string BuildCommit, int BuildNumber, string CpuInfo)
{
    public string Test => Gen == 0 ? $"pp{Prompt}" : Prompt == 0 ? $"tg{Gen}" : $"pp{Prompt}+tg{Gen}";
}

/// <summary>
/// Runs llama.cpp's <c>llama-bench</c> (built by tests/llama-bench/build.sh) on a GGUF file and reads its
/// <c>-o json</c> output. Lives in the test project so that the parsing is tested against a committed sample
/// (Benchmarks/llama-bench-sample.json); the inference benchmark calls it. Every failure is one MergeException line.
/// </summary>
public static class LlamaBench
{
    /// <summary>
    /// <c>llama-bench -m MODEL -t THREADS -p PROMPTS -n GEN -r REPS -o json</c>; the results in llama-bench's order
    /// (pp tests, then tg). A missing or failing binary, a timeout or unreadable output is one-line error.
    /// </summary>
    public static IReadOnlyList<LlamaBenchResult> Run(string binary, string model, int threads, int[] prompts, int gen, int reps, TimeSpan timeout)
    {
        if (!File.Exists(binary)) throw new MergeException($"--llama-bench: {binary} does not exist (build it with tests/llama-bench/build.sh)");
        var psi = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-m", model, "-t", threads.ToString(), "-p", string.Join(',', prompts), "-n", gen.ToString(), "-r", reps.ToString(), "-o", "json" })
            psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi) ?? throw new MergeException($"--llama-bench: cannot start {binary}"); }
        catch (Win32Exception e) { throw new MergeException($"--llama-bench: cannot run {binary}: {e.Message}"); }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                throw new MergeException($"llama-bench on {model} did not finish within {timeout.TotalSeconds:0} s");
            }
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                var last = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "no output";
                throw new MergeException($"llama-bench failed on {model} (exit code {p.ExitCode}): {last}");
            }
            return Parse(stdout.Result, $"llama-bench output for {model}");
        }
    }

    /// <summary>The tests of llama-bench's <c>-o json</c> output (an array of one object per test).</summary>
    public static IReadOnlyList<LlamaBenchResult> Parse(string json, string source)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new MergeException($"{source}: not llama-bench JSON output ({e.Message.Split('\n')[0]})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array || doc.RootElement.GetArrayLength() == 0)
                throw new MergeException($"{source}: expected a non-empty JSON array of llama-bench results");
            var list = new List<LlamaBenchResult>();
            int i = 0;
            foreach (var r in doc.RootElement.EnumerateArray())
            {
                JsonElement Field(string name, JsonValueKind kind) =>
                    r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out var v) && v.ValueKind == kind ? v
                        : throw new MergeException($"{source}: result {i} has no {(kind == JsonValueKind.Number ? "number" : "string")} '{name}'");
                string S(string name) => Field(name, JsonValueKind.String).GetString()!;
                int I(string name) => Field(name, JsonValueKind.Number).GetInt32();
                double D(string name) => Field(name, JsonValueKind.Number).GetDouble();
                double avg = D("avg_ts");
                double best = r.TryGetProperty("samples_ts", out var s) && s.ValueKind == JsonValueKind.Array && s.GetArrayLength() > 0
                    ? s.EnumerateArray().Max(x => x.GetDouble()) : avg;
                list.Add(new LlamaBenchResult(S("model_filename"), S("model_type"), I("n_threads"), I("n_prompt"), I("n_gen"),
                    avg, D("stddev_ts"), best, S("build_commit"), I("build_number"), S("cpu_info")));
                i++;
            }
            return list;
        }
    }
}
