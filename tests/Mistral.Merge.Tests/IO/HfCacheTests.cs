using System.Diagnostics;
using System.Security.Cryptography;

namespace Mistral.Merge.Tests.IO;

/// <summary>
/// Every command on a model laid out as the Hugging Face cache stores it: the files are content-addressed blobs,
/// <c>snapshots/REV/</c> holds symbolic links to them and <c>refs/main</c> names REV. Each command must give
/// exactly what it gives on the same model as a plain folder (the links were once measured as the link itself).
/// </summary>
public sealed class HfCacheTests : IDisposable
{
    private const string Revision = "0123456789abcdef0123456789abcdef01234567";
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    /// <summary>Moves a folder's files into <c>hub/models--org--name/blobs</c> and links them from the snapshot.</summary>
    private static string LayOut(string plain, string hub, string id)
    {
        var repo = Path.Combine(hub, "models--" + id.Replace("/", "--"));
        var snapshot = Path.Combine(repo, "snapshots", Revision);
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        foreach (var file in Directory.GetFiles(plain))
        {
            var blob = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file))).ToLowerInvariant();
            File.Copy(file, Path.Combine(repo, "blobs", blob), overwrite: true);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", blob));
        }
        File.WriteAllText(Path.Combine(repo, "refs", "main"), Revision);
        return snapshot;
    }

    private (string Plain, string Linked) Model(string name, params string[] synthArgs)
    {
        var plain = _d[name];
        var r = CliRunner.Run(["synth", plain, .. synthArgs, "--tokenizer", "byte-level", "--seed", "5"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var linked = LayOut(plain, _d["hub"], "org/" + name);
        Assert.NotNull(new FileInfo(Path.Combine(linked, "model.safetensors")).LinkTarget);
        return (plain, linked);
    }

    private (string Plain, string Linked) Dense() =>
        Model("tiny", "--arch", "mistral", "--hidden", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "48", "--vocab", "448");

    private (string Plain, string Linked) Moe() =>
        Model("tiny-moe", "--arch", "mixtral", "--hidden", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "24",
            "--vocab", "448", "--experts", "4", "--experts-per-token", "2", "--dtype", "float32");

    private string Text()
    {
        var p = _d["text.txt"];
        File.WriteAllText(p, string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 20)));
        return p;
    }

    /// <summary>Runs a command on the plain folder and on the linked snapshot; both succeed with the same stdout (paths aside).</summary>
    private static string Same((string Plain, string Linked) m, params string[] args)
    {
        var a = CliRunner.Run([.. args.Select(x => x == "MODEL" ? m.Plain : x)]);
        var b = CliRunner.Run([.. args.Select(x => x == "MODEL" ? m.Linked : x)]);
        Assert.True(a.ExitCode == 0, a.Stderr);
        Assert.True(b.ExitCode == 0, b.Stderr);
        Assert.Equal(a.Stdout.Replace(m.Plain, "MODEL"), b.Stdout.Replace(m.Linked, "MODEL"));
        return b.Stdout;
    }

    [Fact]
    public void InspectReadsTheTargetsOfTheLinks()
    {
        var m = Dense();
        var text = Same(m, "inspect", "MODEL");
        Assert.Contains("layers:       2", text);
        Same(m, "inspect", "MODEL", "--json");
    }

    [Fact]
    public void TokenizePerplexityGenerateAndCompareOnTheSnapshot()
    {
        var m = Dense();
        var text = Text();
        Same(m, "tokenize", "MODEL", "hello world");
        // timing fields differ between runs: compare the model's answers only
        var ppl = CliRunner.Run("perplexity", m.Linked, "--text", text, "--ctx", "128", "--json");
        var pplPlain = CliRunner.Run("perplexity", m.Plain, "--text", text, "--ctx", "128", "--json");
        Assert.True(ppl.ExitCode == 0, ppl.Stderr);
        Assert.Equal(Field(pplPlain.Stdout, "perplexity"), Field(ppl.Stdout, "perplexity"));
        Same(m, "generate", "MODEL", "--prompt", "The quick", "--temperature", "0", "--max-new-tokens", "12");
        var kl = CliRunner.Run("compare", m.Plain, m.Linked, "--text", text, "--ctx", "128", "--json");
        Assert.True(kl.ExitCode == 0, kl.Stderr);
        Assert.Equal("0", Field(kl.Stdout, "kl_max"));
    }

    private static string Field(string json, string name) => System.Text.Json.Nodes.JsonNode.Parse(json)![name]!.ToJsonString();

    [Fact]
    public void ConvertWritesRegularFilesWithTheTargetsBytes()
    {
        var m = Dense();
        Assert.Equal(0, CliRunner.Run("convert", m.Plain, _d["out-plain"], "--dtype", "float32").ExitCode);
        var r = CliRunner.Run("convert", m.Linked, _d["out-linked"], "--dtype", "float32");
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (var f in Directory.GetFiles(_d["out-plain"]))
        {
            var linkedOut = Path.Combine(_d["out-linked"], Path.GetFileName(f));
            Assert.Null(new FileInfo(linkedOut).LinkTarget);
            Assert.Equal(File.ReadAllBytes(f), File.ReadAllBytes(linkedOut));
        }
        // same dtype: the kernel-copy path reads through the link too
        Assert.Equal(0, CliRunner.Run("convert", m.Linked, _d["copy"]).ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(m.Plain, "model.safetensors")), File.ReadAllBytes(Path.Combine(_d["copy"], "model.safetensors")));
    }

    [Fact]
    public void SynthTakesALinkedConfig()
    {
        var m = Dense();
        var r = CliRunner.Run("synth", _d["again"], "--config", Path.Combine(m.Linked, "config.json"), "--tokenizer", "byte-level", "--seed", "5");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(m.Plain, "model.safetensors")), File.ReadAllBytes(Path.Combine(_d["again"], "model.safetensors")));
    }

    [Fact]
    public void MoeCommandsOnTheSnapshot()
    {
        var m = Moe();
        var text = Text();
        Same(m, "moe-stats", "MODEL", "--text", text, "--json");
        var a = CliRunner.Run("moe-convert", m.Plain, _d["dense-plain"], "--strategy", "mean");
        var b = CliRunner.Run("moe-convert", m.Linked, _d["dense-linked"], "--strategy", "mean");
        Assert.True(a.ExitCode == 0, a.Stderr);
        Assert.True(b.ExitCode == 0, b.Stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(_d["dense-plain"], "model.safetensors")), File.ReadAllBytes(Path.Combine(_d["dense-linked"], "model.safetensors")));
    }

    /// <summary>A recipe naming <c>org/name</c> resolves through $HF_HUB_CACHE and refs/main (a child process: the variable is process-wide).</summary>
    [Fact]
    public void MergeResolvesHubIdsThroughRefsAndLinks()
    {
        var m = Dense();
        var recipe = Path.Combine(_d.Path, "recipe.yml");
        File.WriteAllText(recipe, "merge_method: linear\nmodels:\n  - model: org/tiny\n    parameters: {weight: 0.5}\n  - model: PLAIN\n    parameters: {weight: 0.5}\ndtype: float32\n".Replace("PLAIN", m.Plain));
        var r = RunChild(new() { ["HF_HUB_CACHE"] = _d["hub"] }, "merge", recipe, _d["merged"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        // the average of a model with itself is the model (float32 throughout)
        using var merged = Mistral.Merge.Models.ModelFolder.Open(_d["merged"]);
        using var plain = Mistral.Merge.Models.ModelFolder.Open(m.Plain);
        foreach (var name in plain.TensorNames) Assert.Equal(plain.ReadSingle(name), merged.ReadSingle(name));
    }

    /// <summary>Runs the built CLI (mistral-merge.dll beside the tests) in a child process.</summary>
    internal static CliRunner.Result RunChild(Dictionary<string, string> env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mistral-merge.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("mistral-merge did not finish in 120 s"); }
        return new CliRunner.Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
