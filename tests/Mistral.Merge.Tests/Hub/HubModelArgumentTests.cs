using Mistral.Merge.Hub;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Hub;

/// <summary>A Hub id as any command's MODEL argument and in a recipe: from the cache, downloaded when absent.</summary>
public sealed class HubModelArgumentTests : IDisposable
{
    private readonly TempDir _d = new();
    private readonly FakeHub _hub = new();
    private readonly string _src;
    private readonly string _commit;

    public HubModelArgumentTests()
    {
        _src = TinyModels.Write(_d["src"], 21);
        _commit = _hub.Add("org/tiny").Commit(Directory.GetFiles(_src).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes), "main");
    }

    public void Dispose()
    {
        _hub.Dispose();
        _d.Dispose();
    }

    private string Snapshot => Path.Combine(_d["hf"], "hub", "models--org--tiny", "snapshots", _commit);
    private Dictionary<string, string> Env(params (string, string)[] more) => _hub.Environment(_d["hf"], more);

    [Fact]
    public void InspectDownloadsAHubIdThenReadsItFromTheCache()
    {
        var r = CliRunner.RunIn(Env(), "inspect", "org/tiny", "--quiet");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Stderr);
        Assert.Equal(CliRunner.Run("inspect", Snapshot).Stdout, r.Stdout);
        Assert.True(File.Exists(Path.Combine(Snapshot, "model.safetensors")));
        int before = _hub.Requests.Count;
        var again = CliRunner.RunIn(Env(("HF_HUB_OFFLINE", "1")), "inspect", "org/tiny");
        Assert.Equal(r.Stdout, again.Stdout);
        Assert.Equal(before, _hub.Requests.Count);
    }

    [Fact]
    public void ADownloadShowsItsProgressUnlessQuiet()
    {
        var r = CliRunner.RunIn(Env(), "inspect", "org/tiny");
        Assert.Equal(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var size = Mistral.Merge.IO.ByteSize.Format(new FileInfo(Path.Combine(_src, "model.safetensors")).Length);
        Assert.StartsWith($"download org/tiny: 100% ({size} of {size}, ", Assert.Single(lines));
    }

    [Fact]
    public void ConvertAndTokenizeTakeAHubIdToo()
    {
        var r = CliRunner.RunIn(Env(), "convert", "org/tiny", _d["out"], "--dtype", "bfloat16", "--quiet");
        Assert.Equal(0, r.ExitCode);
        Assert.True(File.Exists(Path.Combine(_d["out"], "model.safetensors")));
        // a model without tokenizer files: the tokenizer's own error, about the downloaded snapshot
        var t = CliRunner.RunIn(Env(), "tokenize", "org/tiny", "hi");
        Assert.Equal(1, t.ExitCode);
        Assert.Contains(Snapshot, t.Stderr);
    }

    [Fact]
    public void ExportGgufResolvesAHubIdToItsSnapshot()
    {
        // the tiny model has no tokenizer: export-gguf's own refusal, about the downloaded snapshot
        var r = CliRunner.RunIn(Env(), "export-gguf", "org/tiny", _d["out.gguf"], "--quiet");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(Snapshot, r.Stderr);
        Assert.True(File.Exists(Path.Combine(Snapshot, "model.safetensors")));
        Assert.False(File.Exists(_d["out.gguf"]));
    }

    [Fact]
    public void AHubIdMissingEverywhereNamesTheLocalFolderAndTheHub()
    {
        var r = CliRunner.RunIn(Env(), "inspect", "org/nope");
        CliRunner.AssertOneLineError(r, $"no local folder {Path.GetFullPath("org/nope")}, and org/nope: repository not found on {_hub.Url}");
        File.WriteAllText(_d["t.txt"], "some text");
        var offline = CliRunner.RunIn(Env(("HF_HUB_OFFLINE", "1")), "perplexity", "org/nope", "--text", _d["t.txt"]);
        CliRunner.AssertOneLineError(offline, $"model 'org/nope' not found: looked in local folder {Path.GetFullPath("org/nope")} and Hugging Face cache ");
        Assert.Contains("(HF_HUB_OFFLINE is set: not downloaded)", offline.Stderr);
    }

    [Fact]
    public void ALocalFolderWinsOverTheHub()
    {
        Assert.Equal(CliRunner.Run("inspect", _src).Stdout.Replace(_src, "X"),
            CliRunner.RunIn(Env(), "inspect", _src).Stdout.Replace(_src, "X"));
        Assert.Empty(_hub.Requests);
    }

    [Fact]
    public void ARecipeMergesAHubModelWithALocalOne()
    {
        var recipe = TinyModels.Recipe(_d.Path, $$"""
            merge_method: linear
            models:
              - model: org/tiny
                parameters: {weight: 0.5}
              - model: {{_src}}
                parameters: {weight: 0.5}
            dtype: float32
            """);
        var r = CliRunner.RunIn(Env(), "merge", recipe, _d["merged"], "--quiet");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("org/tiny", File.ReadAllText(Path.Combine(_d["merged"], "README.md")));
        // the same merge with the snapshot folder written out: the same weights, bit for bit
        var byPath = TinyModels.Recipe(_d.Path, File.ReadAllText(recipe).Replace("org/tiny", Snapshot), "by-path.yml");
        Assert.Equal(0, CliRunner.Run("merge", byPath, _d["merged2"], "--quiet").ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(_d["merged2"], "model.safetensors")), File.ReadAllBytes(Path.Combine(_d["merged"], "model.safetensors")));
    }

    [Fact]
    public void ARecipeReportsAHubFailureAtTheModelsLine()
    {
        var recipe = TinyModels.Recipe(_d.Path, """
            merge_method: linear
            models:
              - model: org/nope
                parameters: {weight: 1.0}
            """);
        var r = CliRunner.RunIn(Env(), "merge", recipe, _d["merged"]);
        Assert.True(r.ExitCode == 1, r.Stderr);
        Assert.Contains($"recipe.yml:3:12: model 'org/nope': no local folder {_d["org/nope"]}, and org/nope: repository not found on {_hub.Url}", r.Stderr);
    }

    [Fact]
    public void HubSettingsComeFromTheEnvironmentAsHuggingfaceHubReadsThem()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var none = HubOptions.FromEnvironment(_ => null);
        Assert.Equal(HubOptions.DefaultEndpoint, none.Endpoint);
        Assert.Equal("https://huggingface.co", none.Endpoint);
        Assert.Equal(Path.Combine(home, ".cache", "huggingface", "hub"), none.Cache);
        Assert.False(none.Offline);
        Dictionary<string, string> env = new() { ["HF_HOME"] = _d["h"], ["HF_ENDPOINT"] = "http://mirror/", ["HF_HUB_OFFLINE"] = "true" };
        var o = HubOptions.FromEnvironment(n => env.GetValueOrDefault(n));
        Assert.Equal((Path.Combine(_d["h"], "hub"), "http://mirror", true, (string?)null), (o.Cache, o.Endpoint, o.Offline, o.Token));
        env["HF_HUB_CACHE"] = _d["c"];
        env["HF_HUB_OFFLINE"] = "0";
        Directory.CreateDirectory(_d["h"]);
        File.WriteAllText(Path.Combine(_d["h"], "token"), " hf_file \n");
        o = HubOptions.FromEnvironment(n => env.GetValueOrDefault(n));
        Assert.Equal((_d["c"], false, "hf_file"), (o.Cache, o.Offline, o.Token));
        env["HF_TOKEN"] = "hf_env";
        Assert.Equal("hf_env", HubOptions.FromEnvironment(n => env.GetValueOrDefault(n)).Token);
        Assert.Equal(_d["x"], HubOptions.FromEnvironment(n => env.GetValueOrDefault(n), cacheOverride: _d["x"]).Cache);
    }

    [Fact]
    public void AFullDiskIsOneClearLine()
    {
        var e = BlobDownload.DiskError("/cache/blobs/abc.incomplete", new IOException("No space left on device", 28), "org/tiny", "model.safetensors");
        Assert.Equal("/cache/blobs/abc.incomplete: no space left on device (ENOSPC): free some space and run the command again to resume it (downloading org/tiny: model.safetensors)", e.Message);
    }
}
