using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Hub;

/// <summary><c>download</c> against a <see cref="FakeHub"/> that misbehaves: cut connections, odd Range answers, busy answers, odd revisions.</summary>
public sealed class HubResilienceTests : IDisposable
{
    private readonly TempDir _d = new();
    private readonly FakeHub _hub = new();

    public void Dispose()
    {
        _hub.Dispose();
        _d.Dispose();
    }

    private Dictionary<string, byte[]> TinyFiles(ulong seed)
    {
        var dir = TinyModels.Write(_d[$"src-{seed}"], seed);
        return Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
    }

    private string Repo(string id) => Path.Combine(_d["hf"], "hub", "models--" + id.Replace("/", "--"));
    private Dictionary<string, string> Env(params (string, string)[] more) => _hub.Environment(_d["hf"], more);
    private List<string?> Ranges(string sha) => _hub.Requests.Where(q => q.Method == "GET" && q.Path == $"/lfs/{sha}").Select(q => q.Range).ToList();

    [Fact]
    public void AConnectionCutThreeTimesMidBodyIsResumedWithinOneRun()
    {
        var files = TinyFiles(21);
        var weights = files["model.safetensors"];
        var sha = FakeHub.Sha256(weights);
        var commit = _hub.Add("org/tiny").Commit(files, "main");
        long cut = weights.Length / 10;
        _hub.CutOnce["model.safetensors"] = cut;
        _hub.CutTimes["model.safetensors"] = 3;
        var r = CliRunner.RunIn(Env(), "download", "org/tiny", "--quiet");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal([null, $"bytes={cut}-", $"bytes={2 * cut}-", $"bytes={3 * cut}-"], Ranges(sha));
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(Repo("org/tiny"), "snapshots", commit, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(Repo("org/tiny"), "blobs", sha + ".incomplete")));
    }

    [Fact]
    public void AServerThatIgnoresTheRangeSendsTheWholeFileWhichReplacesThePartOne()
    {
        var files = TinyFiles(22);
        var weights = files["model.safetensors"];
        var sha = FakeHub.Sha256(weights);
        var commit = _hub.Add("org/tiny").Commit(files, "main");
        _hub.CutOnce["model.safetensors"] = weights.Length / 3;
        _hub.IgnoreRange.Add("model.safetensors");
        Assert.Equal(0, CliRunner.RunIn(Env(), "download", "org/tiny", "--quiet").ExitCode);
        Assert.Equal([null, $"bytes={weights.Length / 3}-"], Ranges(sha)); // the resume asks for the rest; the answer is 200 with all
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(Repo("org/tiny"), "snapshots", commit, "model.safetensors")));
    }

    [Fact]
    public void ARangeNotSatisfiableAnswerStartsTheFileOverFromTheFirstByte()
    {
        var files = TinyFiles(23);
        var weights = files["model.safetensors"];
        var sha = FakeHub.Sha256(weights);
        var commit = _hub.Add("org/tiny").Commit(files, "main");
        Directory.CreateDirectory(Path.Combine(Repo("org/tiny"), "blobs"));
        File.WriteAllBytes(Path.Combine(Repo("org/tiny"), "blobs", sha + ".incomplete"), weights[..100]);
        _hub.RefuseRange.Add("model.safetensors");
        Assert.Equal(0, CliRunner.RunIn(Env(), "download", "org/tiny", "--quiet").ExitCode);
        Assert.Equal(["bytes=100-", null], Ranges(sha));
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(Repo("org/tiny"), "snapshots", commit, "model.safetensors")));
    }

    [Fact]
    public void APartialFileOfOtherBytesFailsTheSha256CheckIsDeletedAndTheNextRunSucceeds()
    {
        var files = TinyFiles(24);
        var weights = files["model.safetensors"];
        var sha = FakeHub.Sha256(weights);
        var commit = _hub.Add("org/tiny").Commit(files, "main");
        var incomplete = Path.Combine(Repo("org/tiny"), "blobs", sha + ".incomplete");
        Directory.CreateDirectory(Path.GetDirectoryName(incomplete)!);
        File.WriteAllBytes(incomplete, new byte[100]); // e.g. left by another version of the file
        var bad = CliRunner.RunIn(Env(), "download", "org/tiny");
        CliRunner.AssertOneLineError(bad, "org/tiny: model.safetensors: SHA-256 ");
        Assert.Contains($"does not match the Hub's {sha}; the download was deleted, run the command again", bad.Stderr);
        Assert.False(File.Exists(incomplete));
        Assert.Equal(0, CliRunner.RunIn(Env(), "download", "org/tiny", "--quiet").ExitCode);
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(Repo("org/tiny"), "snapshots", commit, "model.safetensors")));
    }

    [Fact]
    public void BusyAnswersOfTheHubAreAskedAgainAndAPersistentOneIsOneLine()
    {
        var commit = _hub.Add("org/tiny").Commit(TinyFiles(25), "main");
        _hub.ApiFailures.Enqueue(503);
        _hub.ApiFailures.Enqueue(429);
        var r = CliRunner.RunIn(Env(), "download", "org/tiny", "--quiet");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(Path.Combine(Repo("org/tiny"), "snapshots", commit) + "\n", r.Stdout.ReplaceLineEndings("\n"));
        Assert.Equal(3, _hub.Requests.Count(q => q.Path == "/api/models/org/tiny/revision/main"));

        _hub.Add("org/other").Commit(TinyFiles(31), "main");
        for (int i = 0; i < 4; i++) _hub.ApiFailures.Enqueue(503); // the first call and its 3 retries
        var down = CliRunner.RunIn(Env(), "download", "org/other");
        CliRunner.AssertOneLineError(down, $"org/other: the Hub answered 503 Service Unavailable for {_hub.Url}/api/models/org/other/revision/main");
    }

    [Fact]
    public void ARevisionCallCutBeforeItsJsonIsAskedAgain()
    {
        var commit = _hub.Add("org/tiny").Commit(TinyFiles(26), "main");
        _hub.ApiCuts = 2;
        var r = CliRunner.RunIn(Env(), "download", "org/tiny", "--quiet");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(Path.Combine(Repo("org/tiny"), "snapshots", commit) + "\n", r.Stdout.ReplaceLineEndings("\n"));

        _hub.Add("org/two").Commit(TinyFiles(30), "main");
        _hub.ApiCuts = 3; // the first call and its 2 retries: nothing cached to fall back on
        var cut = CliRunner.RunIn(Env(), "download", "org/two");
        CliRunner.AssertOneLineError(cut, "cannot reach 127.0.0.1:");
    }

    [Theory]
    [InlineData("refs/pr/1", "refs%2Fpr%2F1")]
    [InlineData("feature/x", "feature%2Fx")]
    [InlineData("v1.0-rc_2", "v1.0-rc_2")]
    public void ABranchNameWithSlashesTravelsAsOneEscapedSegmentAndWritesItsRef(string revision, string onTheWire)
    {
        var repo = _hub.Add("my-org/tiny.model_v2");
        repo.Commit(TinyFiles(27), "main");
        var commit = repo.Commit(TinyFiles(28), revision);
        var r = CliRunner.RunIn(Env(), "download", $"my-org/tiny.model_v2@{revision}", "--quiet");
        Assert.Equal(0, r.ExitCode);
        var snap = Path.Combine(Repo("my-org/tiny.model_v2"), "snapshots", commit);
        Assert.Equal(snap + "\n", r.Stdout.ReplaceLineEndings("\n"));
        Assert.Contains(_hub.Requests, q => q.Path == $"/api/models/my-org/tiny.model_v2/revision/{onTheWire}");
        Assert.Equal(commit, File.ReadAllText(Path.Combine(Repo("my-org/tiny.model_v2"), "refs", revision)));
        var offline = CliRunner.RunIn(Env(("HF_HUB_OFFLINE", "1")), "download", $"my-org/tiny.model_v2@{revision}", "--quiet");
        Assert.Equal(snap + "\n", offline.Stdout.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void AnInterruptedDownloadOfACommitIsNeverServedOfflineOrAsTheFallback()
    {
        var files = TinyFiles(29);
        var weights = files["model.safetensors"];
        var commit = _hub.Add("org/tiny").Commit(files, "main");
        _hub.CutOnce["model.safetensors"] = 10;
        _hub.CutTimes["model.safetensors"] = BlobDownloadRetries + 1;
        var broken = CliRunner.RunIn(Env(), "download", $"org/tiny@{commit}");
        CliRunner.AssertOneLineError(broken, "org/tiny: model.safetensors: the download was interrupted at 60 of ");
        var snap = Path.Combine(Repo("org/tiny"), "snapshots", commit);
        Assert.True(File.Exists(Path.Combine(snap, "config.json"))); // the side files are in place, the weights are not

        var offline = CliRunner.RunIn(Env(("HF_HUB_OFFLINE", "1")), "download", $"org/tiny@{commit}");
        CliRunner.AssertOneLineError(offline, $"org/tiny@{commit} is not in the Hugging Face cache (looked in Hugging Face cache {snap}, which lacks its weights (*.safetensors or pytorch_model*.bin) (an interrupted download)) and HF_HUB_OFFLINE is set, so it is not downloaded");
        var inspect = CliRunner.RunIn(Env(("HF_HUB_OFFLINE", "1")), "inspect", $"org/tiny@{commit}");
        Assert.NotEqual(0, inspect.ExitCode);
        Assert.Contains("which lacks its weights", inspect.Stderr);
        Assert.DoesNotContain("   at ", inspect.Stderr);
    }

    [Fact]
    public void AShardedPytorchBinRepositoryDownloadsConvertsAndScoresLikeItsSafetensorsReference()
    {
        var files = Directory.GetFiles(IO.Pytorch.PytorchFixtures.PathOf("llama-sharded")).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        foreach (var (name, bytes) in Mistral.Merge.Cli.BuiltinTokenizer.Files(448)) files[name] = bytes;
        files["README.md"] = "# card"u8.ToArray();
        var commit = _hub.Add("org/llama-bin").Commit(files, "main");
        var download = CliRunner.RunIn(Env(), "download", "org/llama-bin", "--quiet");
        Assert.True(download.ExitCode == 0, download.Stderr);
        var snap = Path.Combine(Repo("org/llama-bin"), "snapshots", commit);
        Assert.Equal(files.Keys.Where(k => k != "README.md").Order(), Directory.GetFileSystemEntries(snap).Select(Path.GetFileName).Order());

        var converted = CliRunner.RunIn(Env(), "convert", "org/llama-bin", _d["st"], "--quiet");
        Assert.True(converted.ExitCode == 0, converted.Stderr);
        using (var a = Mistral.Merge.Models.ModelFolder.Open(IO.Pytorch.PytorchFixtures.PathOf("llama-reference")))
        using (var b = Mistral.Merge.Models.ModelFolder.Open(_d["st"]))
        {
            Assert.Equal(a.TensorNames, b.TensorNames);
            foreach (var n in a.TensorNames) Assert.True(a.GetBytes(n).SequenceEqual(b.GetBytes(n)), n);
        }

        var reference = IO.Pytorch.PytorchFixtures.CopyFolder("llama-reference", _d["ref"], tokenizer: true);
        File.WriteAllText(_d["text.txt"], "The quick brown fox jumps over the lazy dog. Pickles are not weights.\n");
        string[] Ppl(string m) => ["perplexity", m, "--text", _d["text.txt"], "--ctx", "16", "--json", "--quiet"];
        var hub = CliRunner.RunIn(Env(("HF_HUB_OFFLINE", "1")), Ppl("org/llama-bin"));
        var local = CliRunner.Run(Ppl(reference));
        Assert.True(hub.ExitCode == 0, hub.Stderr);
        Assert.Equal((double)System.Text.Json.Nodes.JsonNode.Parse(local.Stdout)!["perplexity"]!, (double)System.Text.Json.Nodes.JsonNode.Parse(hub.Stdout)!["perplexity"]!);
    }

    private const int BlobDownloadRetries = 5;
}
