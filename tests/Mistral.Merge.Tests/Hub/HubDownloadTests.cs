using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Hub;

/// <summary><c>download</c> against a <see cref="FakeHub"/>: the cache layout huggingface_hub writes, resume, checks, errors.</summary>
public sealed class HubDownloadTests : IDisposable
{
    private readonly TempDir _d = new();
    private readonly FakeHub _hub = new();

    public void Dispose()
    {
        _hub.Dispose();
        _d.Dispose();
    }

    /// <summary>A tiny model's files (model.safetensors, config.json) plus files the tool does not read.</summary>
    private Dictionary<string, byte[]> TinyFiles(ulong seed, string name = "tiny")
    {
        var dir = TinyModels.Write(_d[$"src-{name}-{seed}"], seed);
        var files = Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        files["README.md"] = "# card"u8.ToArray();
        files["original/consolidated.safetensors"] = [1, 2, 3];
        return files;
    }

    private string Repo(string id) => Path.Combine(_d["hf"], "hub", "models--" + id.Replace("/", "--"));
    private Dictionary<string, string> Env(params (string, string)[] more) => _hub.Environment(_d["hf"], more);
    private int Count(string method) => _hub.Requests.Count(r => r.Method == method);

    [Fact]
    public void DownloadWritesTheHuggingFaceCacheLayoutAndPrintsTheSnapshotFolder()
    {
        var files = TinyFiles(1);
        var commit = _hub.Add("org/tiny").Commit(files, "main");
        var r = CliRunner.RunIn(Env(), "download", "org/tiny", "--quiet");
        Assert.Equal(0, r.ExitCode);
        var repo = Repo("org/tiny");
        var snap = Path.Combine(repo, "snapshots", commit);
        Assert.Equal(snap + "\n", r.Stdout.ReplaceLineEndings("\n"));
        Assert.Equal("", r.Stderr);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(repo, "refs", "main")));
        var weights = files["model.safetensors"];
        Assert.Equal("../../blobs/" + FakeHub.Sha256(weights), new FileInfo(Path.Combine(snap, "model.safetensors")).LinkTarget);
        Assert.Equal("../../blobs/" + FakeHub.GitSha1(files["config.json"]), new FileInfo(Path.Combine(snap, "config.json")).LinkTarget);
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(repo, "blobs", FakeHub.Sha256(weights))));
        Assert.Equal(files["config.json"], File.ReadAllBytes(Path.Combine(snap, "config.json")));
        Assert.Equal(["config.json", "model.safetensors"], Directory.GetFileSystemEntries(snap).Select(Path.GetFileName).Order());
        Assert.Equal(2, Directory.GetFiles(Path.Combine(repo, "blobs")).Length); // no .incomplete left, nothing else fetched
        // one revision lookup, one HEAD per file, one GET per file (the LFS one through its redirect)
        Assert.Equal([("GET", 3), ("HEAD", 2)], _hub.Requests.GroupBy(q => q.Method).Select(g => (g.Key, g.Count())).Order());
    }

    [Fact]
    public void DownloadJsonNamesTheCommitAndWhatWasDownloaded()
    {
        var files = TinyFiles(2);
        var commit = _hub.Add("org/tiny").Commit(files, "main");
        var r = CliRunner.RunIn(Env(), "download", "org/tiny", "--json");
        Assert.Equal(0, r.ExitCode);
        var doc = System.Text.Json.Nodes.JsonNode.Parse(r.Stdout)!;
        Assert.Equal(commit, (string)doc["commit"]!);
        Assert.Equal(Path.Combine(Repo("org/tiny"), "snapshots", commit), (string)doc["path"]!);
        Assert.Equal(2, (int)doc["downloaded"]!);
        Assert.Equal(files["model.safetensors"].Length + files["config.json"].Length, (long)doc["downloaded_bytes"]!);
    }

    [Fact]
    public void FilesAlreadyInTheCacheAreNotFetchedAgain()
    {
        _hub.Add("org/tiny").Commit(TinyFiles(3), "main");
        var first = CliRunner.RunIn(Env(), "download", "org/tiny");
        int before = _hub.Requests.Count;
        var second = CliRunner.RunIn(Env(), "download", "org/tiny");
        Assert.Equal(0, second.ExitCode);
        Assert.Equal(first.Stdout, second.Stdout);
        Assert.Equal([new FakeHub.Request("GET", "/api/models/org/tiny/revision/main", null, null)], _hub.Requests.Skip(before));
    }

    [Fact]
    public void AnInterruptedDownloadResumesWithARangeRequestFromThePartialFile()
    {
        var files = TinyFiles(4);
        var weights = files["model.safetensors"];
        var sha = FakeHub.Sha256(weights);
        var commit = _hub.Add("org/tiny").Commit(files, "main");
        long cut = weights.Length / 10;
        _hub.CutOnce["model.safetensors"] = cut;
        _hub.CutTimes["model.safetensors"] = 6; // the first try and its 5 retries within the run
        long reached = 6 * cut;
        var blobs = Path.Combine(Repo("org/tiny"), "blobs");

        var broken = CliRunner.RunIn(Env(), "download", "org/tiny", "--quiet");
        CliRunner.AssertOneLineError(broken, $"org/tiny: model.safetensors: the download was interrupted at {reached} of {weights.Length} bytes");
        Assert.Contains("run the command again to resume it", broken.Stderr);
        Assert.Equal(reached, new FileInfo(Path.Combine(blobs, sha + ".incomplete")).Length);
        Assert.False(File.Exists(Path.Combine(blobs, sha)));
        Assert.False(Path.Exists(Path.Combine(Repo("org/tiny"), "snapshots", commit, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(Repo("org/tiny"), "refs", "main")));

        var resumed = CliRunner.RunIn(Env(), "download", "org/tiny");
        Assert.Equal(0, resumed.ExitCode);
        Assert.Contains(_hub.Requests, q => q.Method == "GET" && q.Path == $"/lfs/{sha}" && q.Range == $"bytes={reached}-");
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(blobs, sha)));
        Assert.False(File.Exists(Path.Combine(blobs, sha + ".incomplete")));
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(Repo("org/tiny"), "snapshots", commit, "model.safetensors")));
    }

    [Fact]
    public void ABlobWhoseSha256DiffersFromTheEtagIsDeletedAndReported()
    {
        var files = TinyFiles(5);
        var sha = FakeHub.Sha256(files["model.safetensors"]);
        var commit = _hub.Add("org/tiny").Commit(files, "main");
        _hub.Corrupt.Add("model.safetensors");
        var r = CliRunner.RunIn(Env(), "download", "org/tiny");
        CliRunner.AssertOneLineError(r, $"org/tiny: model.safetensors: SHA-256 ");
        Assert.Contains($"does not match the Hub's {sha}; the download was deleted", r.Stderr);
        var blobs = Path.Combine(Repo("org/tiny"), "blobs");
        Assert.False(File.Exists(Path.Combine(blobs, sha)));
        Assert.False(File.Exists(Path.Combine(blobs, sha + ".incomplete")));
        Assert.False(Path.Exists(Path.Combine(Repo("org/tiny"), "snapshots", commit, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(Repo("org/tiny"), "refs", "main")));
    }

    [Fact]
    public void AGatedRepositoryNamesThePageToAcceptItsLicence()
    {
        var repo = _hub.Add("org/gated");
        repo.Commit(TinyFiles(6), "main");
        repo.Gated = true;
        var r = CliRunner.RunIn(Env(("HF_TOKEN", "hf_user")), "download", "org/gated");
        CliRunner.AssertOneLineError(r, $"org/gated is gated (403 Forbidden): accept its licence at {_hub.Url}/org/gated with the account of your token");
        var anonymous = CliRunner.RunIn(Env(), "download", "org/gated");
        CliRunner.AssertOneLineError(anonymous, $"org/gated is gated (401 Unauthorized): set HF_TOKEN or run huggingface-cli login, and accept its licence at {_hub.Url}/org/gated");
        Assert.False(Directory.Exists(Path.Combine(Repo("org/gated"), "snapshots")));
    }

    [Fact]
    public void APrivateRepositoryNeedsTheTokenFromHfTokenOrTheLoginFile()
    {
        var repo = _hub.Add("org/private");
        var commit = repo.Commit(TinyFiles(7), "main");
        repo.Token = "hf_secret";
        var none = CliRunner.RunIn(Env(), "download", "org/private");
        CliRunner.AssertOneLineError(none, "org/private: the Hub refused access without a token (401 Unauthorized)");
        Assert.Contains("set HF_TOKEN or run huggingface-cli login", none.Stderr);
        var wrong = CliRunner.RunIn(Env(("HF_TOKEN", "hf_wrong")), "download", "org/private");
        CliRunner.AssertOneLineError(wrong, "org/private: the Hub refused the token (401 Unauthorized)");

        var env = CliRunner.RunIn(Env(("HF_TOKEN", "hf_secret")), "download", "org/private");
        Assert.Equal(Path.Combine(Repo("org/private"), "snapshots", commit) + "\n", env.Stdout.ReplaceLineEndings("\n"));
        Directory.Delete(Path.Combine(_d["hf"], "hub"), true);
        File.WriteAllText(Path.Combine(_d["hf"], "token"), "hf_secret\n"); // as huggingface-cli login writes it
        Assert.Equal(0, CliRunner.RunIn(Env(), "download", "org/private").ExitCode);
        Directory.Delete(Path.Combine(_d["hf"], "hub"), true);
        File.Delete(Path.Combine(_d["hf"], "token"));
        File.WriteAllText(_d["elsewhere-token"], "hf_secret");
        Assert.Equal(0, CliRunner.RunIn(Env(("HF_TOKEN_PATH", _d["elsewhere-token"])), "download", "org/private").ExitCode);
        // the token went to the Hub's own host with every request that succeeded
        Assert.All(_hub.Requests.Where(q => q.Authorization != null), q => Assert.Contains(q.Authorization, new[] { "Bearer hf_secret", "Bearer hf_wrong" }));
        Assert.Equal(3, _hub.Requests.Count(q => q.Authorization == "Bearer hf_secret" && q.Path.StartsWith("/api/")));
    }

    [Fact]
    public void AMissingRepositoryAndAMissingRevisionAreNamed()
    {
        _hub.Add("org/tiny").Commit(TinyFiles(8), "main");
        CliRunner.AssertOneLineError(CliRunner.RunIn(Env(), "download", "org/nope"), $"org/nope: repository not found on {_hub.Url}");
        CliRunner.AssertOneLineError(CliRunner.RunIn(Env(), "download", "org/tiny@v9"), $"org/tiny: revision 'v9' not found on {_hub.Url}");
        Assert.False(Directory.Exists(Path.Combine(_d["hf"], "hub", "models--org--tiny", "snapshots")));
    }

    [Fact]
    public void ATagWritesItsRefAndACommitShaNeedsNone()
    {
        var repo = _hub.Add("org/tiny");
        var files1 = TinyFiles(9);
        var files2 = TinyFiles(10);
        var v1 = repo.Commit(files1, "v1");
        var head = repo.Commit(files2, "main");
        var tag = CliRunner.RunIn(Env(), "download", "org/tiny@v1");
        Assert.Equal(Path.Combine(Repo("org/tiny"), "snapshots", v1) + "\n", tag.Stdout.ReplaceLineEndings("\n"));
        Assert.Equal(v1, File.ReadAllText(Path.Combine(Repo("org/tiny"), "refs", "v1")));
        Assert.Equal(files1["model.safetensors"], File.ReadAllBytes(Path.Combine(Repo("org/tiny"), "snapshots", v1, "model.safetensors")));

        var bySha = CliRunner.RunIn(Env(), "download", $"org/tiny@{head}");
        Assert.Equal(Path.Combine(Repo("org/tiny"), "snapshots", head) + "\n", bySha.Stdout.ReplaceLineEndings("\n"));
        Assert.Equal(files2["model.safetensors"], File.ReadAllBytes(Path.Combine(Repo("org/tiny"), "snapshots", head, "model.safetensors")));
        Assert.Equal(["v1"], Directory.GetFiles(Path.Combine(Repo("org/tiny"), "refs")).Select(Path.GetFileName));
    }

    [Fact]
    public void OfflineModeReadsOnlyTheCache()
    {
        _hub.Add("org/tiny").Commit(TinyFiles(11), "main");
        var absent = CliRunner.RunIn(Env(("HF_HUB_OFFLINE", "1")), "download", "org/tiny");
        CliRunner.AssertOneLineError(absent, "org/tiny is not in the Hugging Face cache (looked in Hugging Face cache ");
        Assert.Contains("and HF_HUB_OFFLINE is set, so it is not downloaded", absent.Stderr);
        Assert.Empty(_hub.Requests);

        var online = CliRunner.RunIn(Env(), "download", "org/tiny");
        int before = _hub.Requests.Count;
        var cached = CliRunner.RunIn(Env(("HF_HUB_OFFLINE", "1")), "download", "org/tiny");
        Assert.Equal(0, cached.ExitCode);
        Assert.Equal(online.Stdout, cached.Stdout);
        Assert.Equal(before, _hub.Requests.Count);
    }

    [Fact]
    public void PytorchBinFilesAreFetchedOnlyWhenThereIsNoSafetensors()
    {
        var config = "{\"model_type\": \"mistral\"}"u8.ToArray();
        var bin = new byte[] { 1, 2, 3, 4, 5 };
        var binOnly = _hub.Add("org/bin").Commit(new() { ["config.json"] = config, ["pytorch_model.bin"] = bin }, "main");
        Assert.Equal(0, CliRunner.RunIn(Env(), "download", "org/bin").ExitCode);
        Assert.Equal(bin, File.ReadAllBytes(Path.Combine(Repo("org/bin"), "snapshots", binOnly, "pytorch_model.bin")));

        var files = TinyFiles(12);
        files["pytorch_model.bin"] = bin;
        var both = _hub.Add("org/both").Commit(files, "main");
        Assert.Equal(0, CliRunner.RunIn(Env(), "download", "org/both").ExitCode);
        Assert.Equal(["config.json", "model.safetensors"],
            Directory.GetFileSystemEntries(Path.Combine(Repo("org/both"), "snapshots", both)).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void AnIndexDecidesWhichShardsAreFetchedAndTheyDownloadSeveralAtOnce()
    {
        var files = new Dictionary<string, byte[]> { ["config.json"] = "{}"u8.ToArray(), ["consolidated.safetensors"] = [9, 9, 9] };
        var shards = Enumerable.Range(1, 6).Select(i => $"model-{i:00000}-of-00006.safetensors").ToList();
        foreach (var (name, i) in shards.Select((n, i) => (n, i))) files[name] = Enumerable.Repeat((byte)i, 1000 + i).ToArray();
        files["model.safetensors.index.json"] = System.Text.Encoding.UTF8.GetBytes(
            "{\"metadata\": {}, \"weight_map\": {" + string.Join(", ", shards.Select((n, i) => $"\"t{i}\": \"{n}\"")) + "}}");
        var commit = _hub.Add("org/sharded").Commit(files, "main");
        _hub.LfsDelay = TimeSpan.FromMilliseconds(80);
        Assert.Equal(0, CliRunner.RunIn(Env(), "download", "org/sharded").ExitCode);
        var snap = Path.Combine(Repo("org/sharded"), "snapshots", commit);
        Assert.Equal(["config.json", .. shards, "model.safetensors.index.json"], Directory.GetFileSystemEntries(snap).Select(Path.GetFileName).Order());
        Assert.All(shards, n => Assert.Equal(files[n], File.ReadAllBytes(Path.Combine(snap, n))));
        Assert.InRange(_hub.MaxLfsInFlight, 2, 4); // four at a time
    }

    [Fact]
    public void AnUnreachableHubNamesTheHostAndTheReason()
    {
        var closed = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        closed.Start();
        int port = ((System.Net.IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop(); // nothing listens there now: the connection is refused
        var r = CliRunner.RunIn(new Dictionary<string, string> { ["HF_ENDPOINT"] = $"http://127.0.0.1:{port}", ["HF_HOME"] = _d["hf"] }, "download", "org/tiny");
        CliRunner.AssertOneLineError(r, $"cannot reach 127.0.0.1:{port}: Connection refused");
    }

    [Fact]
    public void AnUnreachableHubFallsBackToTheCachedSnapshotWithAWarning()
    {
        _hub.Add("org/tiny").Commit(TinyFiles(14), "main");
        var online = CliRunner.RunIn(Env(), "download", "org/tiny");
        var closed = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        closed.Start();
        int port = ((System.Net.IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var r = CliRunner.RunIn(new Dictionary<string, string> { ["HF_ENDPOINT"] = $"http://127.0.0.1:{port}", ["HF_HOME"] = _d["hf"] }, "download", "org/tiny", "--quiet");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(online.Stdout, r.Stdout);
        Assert.StartsWith($"warning: cannot reach 127.0.0.1:{port}: Connection refused", r.Stderr);
        Assert.EndsWith($"; using the cached snapshot {online.Stdout.Trim()}\n", r.Stderr.ReplaceLineEndings("\n"));
    }

    [Theory]
    [InlineData("/abs/path")]
    [InlineData("org/name@../../etc")]
    [InlineData("./org/name")]
    public void ATextThatIsNoHubIdIsRefused(string text)
        => CliRunner.AssertOneLineError(CliRunner.RunIn(Env(), "download", text), $"download: '{text}' is not a Hub model id ORG/NAME[@REVISION]");
}
