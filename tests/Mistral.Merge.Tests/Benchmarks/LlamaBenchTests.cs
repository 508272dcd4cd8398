namespace Mistral.Merge.Tests.Benchmarks;

/// <summary>
/// llama-bench's <c>-o json</c> output as the inference benchmark reads it. The sample is real output: the llama-bench
/// of tests/llama-bench/build-prebuilt.sh (provenance in docs/performance.md) on stories260k exported by our
/// export-gguf to f16, <c>-t 2 -p 128,512 -n 32 -r 3 -o json</c>; the expected values are copied from that file.
/// </summary>
public sealed class LlamaBenchTests
{
    private static readonly string Sample = Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "Benchmarks", "llama-bench-sample.json");

    [Fact]
    public void ParseReadsEveryTestOfACommittedLlamaBenchRunWithItsBuildThreadsAndSpeeds()
    {
        var r = LlamaBench.Parse(File.ReadAllText(Sample), Sample);
        Assert.Equal(["pp128", "pp512", "tg32"], r.Select(x => x.Test));
        Assert.All(r, x => Assert.Equal(("5b4ebc5", 1, 2, "stories260k.f16.gguf"), (x.BuildCommit, x.BuildNumber, x.Threads, Path.GetFileName(x.ModelFile))));
        Assert.Equal(("llama ?B F16", "AMD EPYC"), (r[0].ModelType, r[0].CpuInfo));
        Assert.Equal((128, 0), (r[0].Prompt, r[0].Gen));
        Assert.Equal((0, 32), (r[2].Prompt, r[2].Gen));
        Assert.Equal((39.41812, 1.211193, 40.3536), (r[0].AvgTokensPerSecond, r[0].StddevTokensPerSecond, r[0].BestTokensPerSecond));
        Assert.Equal((220.148777, 246.163), (r[1].AvgTokensPerSecond, r[1].BestTokensPerSecond));
        Assert.Equal((157.137478, 298.247), (r[2].AvgTokensPerSecond, r[2].BestTokensPerSecond));
    }

    [Fact]
    public void ParseOfTextThatIsNotJsonIsOneLineNamingTheSource()
    {
        var e = Assert.Throws<MergeException>(() => LlamaBench.Parse("| model | size |\n|---|---|", "llama-bench output for m.gguf"));
        Assert.StartsWith("llama-bench output for m.gguf: not llama-bench JSON output (", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void ParseOfAResultWithoutItsTokensPerSecondNamesTheResultAndTheField()
    {
        var e = Assert.Throws<MergeException>(() => LlamaBench.Parse(
            """[{"model_filename":"m.gguf","model_type":"llama ?B F16","n_threads":2,"n_prompt":512,"n_gen":0}]""", "out.json"));
        Assert.Equal("out.json: result 0 has no number 'avg_ts'", e.Message);
    }

    [Fact]
    public void ParseOfAnEmptyArrayIsAnError()
    {
        var e = Assert.Throws<MergeException>(() => LlamaBench.Parse("[]", "out.json"));
        Assert.Equal("out.json: expected a non-empty JSON array of llama-bench results", e.Message);
    }

    [Fact]
    public void RunWithAMissingBinaryIsOneLineNamingThePath()
    {
        using var d = new TempDir();
        var e = Assert.Throws<MergeException>(() => LlamaBench.Run(d["llama-bench"], d["m.gguf"], 2, [128, 512], 32, 1, TimeSpan.FromSeconds(30)));
        Assert.Equal($"--llama-bench: {d["llama-bench"]} does not exist (build it with tests/llama-bench/build.sh)", e.Message);
    }

    [LinuxFact]
    public void RunWithABinaryThatFailsIsOneLineWithItsExitCodeAndLastErrorLine()
    {
        using var d = new TempDir();
        var bin = d["llama-bench"];
        Script(bin, "echo 'llama_model_load: loading model' >&2\necho 'main: error: failed to load model' >&2\nexit 3");
        var e = Assert.Throws<MergeException>(() => LlamaBench.Run(bin, d["m.gguf"], 2, [128, 512], 32, 1, TimeSpan.FromSeconds(30)));
        Assert.Equal($"llama-bench failed on {d["m.gguf"]} (exit code 3): main: error: failed to load model", e.Message);
    }

    [LinuxFact]
    public void RunPassesThreadsPromptsGenerationAndRepetitionsAndParsesTheJsonItPrints()
    {
        using var d = new TempDir();
        var bin = d["llama-bench"];
        // a stand-in that echoes its arguments into the one result it prints
        Script(bin, "echo \"[{\\\"model_filename\\\":\\\"$*\\\",\\\"model_type\\\":\\\"t\\\",\\\"n_threads\\\":2,\\\"n_prompt\\\":0,\\\"n_gen\\\":32,"
            + "\\\"avg_ts\\\":10.5,\\\"stddev_ts\\\":0.25,\\\"samples_ts\\\":[10.25,10.75],\\\"build_commit\\\":\\\"abc\\\",\\\"build_number\\\":7,\\\"cpu_info\\\":\\\"cpu\\\"}]\"");
        var r = Assert.Single(LlamaBench.Run(bin, "m.gguf", 2, [128, 512], 32, 3, TimeSpan.FromSeconds(30)));
        Assert.Equal("-m m.gguf -t 2 -p 128,512 -n 32 -r 3 -o json", r.ModelFile);
        Assert.Equal(("tg32", 10.5, 0.25, 10.75, "abc", 7), (r.Test, r.AvgTokensPerSecond, r.StddevTokensPerSecond, r.BestTokensPerSecond, r.BuildCommit, r.BuildNumber));
    }

    private static void Script(string path, string body)
    {
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}
