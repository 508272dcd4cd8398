using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Mistral.Merge.Tests.Hub;

/// <summary>
/// A Hugging Face Hub served over real HTTP on 127.0.0.1 (an ephemeral port), answering as huggingface.co does the
/// calls the client makes: <c>GET /api/models/REPO/revision/REV</c> (sha, siblings), <c>HEAD /REPO/resolve/COMMIT/FILE</c>
/// (X-Repo-Commit; an LFS file (*.safetensors, *.bin) redirects to /lfs/SHA256 with X-Linked-Etag and X-Linked-Size;
/// another file answers 200 with its git blob sha1 as ETag), GET of either with Range, and the Hub's errors with their
/// X-Error-Code (RepoNotFound, RevisionNotFound, GatedRepo). One connection per request (Connection: close).
/// </summary>
public sealed class FakeHub : IDisposable
{
    public sealed class Repo
    {
        /// <summary>commit → file → bytes.</summary>
        public Dictionary<string, Dictionary<string, byte[]>> Commits { get; } = [];
        /// <summary>branch or tag → commit.</summary>
        public Dictionary<string, string> Refs { get; } = [];
        /// <summary>A gated repository whose licence nobody accepted: files answer 401 without a token, 403 with one (GatedRepo).</summary>
        public bool Gated { get; set; }
        /// <summary>A private repository: every request needs "Authorization: Bearer TOKEN".</summary>
        public string? Token { get; set; }

        /// <summary>Adds a commit holding <paramref name="files"/> and points <paramref name="refs"/> at it; returns its sha.</summary>
        public string Commit(Dictionary<string, byte[]> files, params string[] refs)
        {
            var sha = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"commit {Commits.Count} {string.Join(",", files.Keys)}")))[..40];
            Commits[sha] = files;
            foreach (var r in refs) Refs[r] = sha;
            return sha;
        }
    }

    public sealed record Request(string Method, string Path, string? Range, string? Authorization);

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public Dictionary<string, Repo> Repos { get; } = [];
    public ConcurrentQueue<Request> Requests { get; } = new();
    /// <summary>Files whose first GET sends only this many bytes of the body, then closes the connection.</summary>
    public ConcurrentDictionary<string, long> CutOnce { get; } = new();
    /// <summary>How many GETs of a file in <see cref="CutOnce"/> are cut (default 1): each sends that many bytes of its body.</summary>
    public ConcurrentDictionary<string, int> CutTimes { get; } = new();
    /// <summary>Files whose GET ignores a Range header and answers 200 with the whole file.</summary>
    public HashSet<string> IgnoreRange { get; } = [];
    /// <summary>Files whose GET with a Range header answers 416 Range Not Satisfiable.</summary>
    public HashSet<string> RefuseRange { get; } = [];
    /// <summary>Statuses answered, one per request, to the next revision API calls (e.g. 503), before the real answer.</summary>
    public ConcurrentQueue<int> ApiFailures { get; } = new();
    /// <summary>Revision API calls that send their headers and then close the connection without the JSON.</summary>
    public int ApiCuts { get; set; }
    /// <summary>Files served with their last byte changed (the etag still names the right content).</summary>
    public HashSet<string> Corrupt { get; } = [];

    /// <summary>How long each GET of an LFS file waits before answering (to see downloads overlap).</summary>
    public TimeSpan LfsDelay { get; set; }
    /// <summary>The most LFS GETs that were in progress at once.</summary>
    public int MaxLfsInFlight => _maxInFlight;
    private int _inFlight, _maxInFlight;

    public string Url { get; }

    public FakeHub()
    {
        _listener.Start();
        Url = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
        _loop = Task.Run(AcceptLoop);
    }

    public Repo Add(string id)
    {
        var r = new Repo();
        Repos[id] = r;
        return r;
    }

    /// <summary>The environment a CLI run against this hub sees: HF_ENDPOINT here, HF_HOME in <paramref name="home"/>.</summary>
    public Dictionary<string, string> Environment(string home, params (string Name, string Value)[] more)
    {
        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = Url, ["HF_HOME"] = home };
        foreach (var (n, v) in more) env[n] = v;
        return env;
    }

    public static string Sha256(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    /// <summary>git's blob id, the etag the Hub gives a file that is not in LFS.</summary>
#pragma warning disable CA5350 // git's object ids are SHA-1: the fake hub must give the Hub's etags
    public static string GitSha1(byte[] b)
        => Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {b.Length}\0"), .. b]));

#pragma warning restore CA5350

    public static bool IsLfs(string file) => file.EndsWith(".safetensors", StringComparison.Ordinal) || file.EndsWith(".bin", StringComparison.Ordinal);

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient c;
            try { c = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Serve(c));
        }
    }

    private async Task Serve(TcpClient client)
    {
        using (client)
        {
            try
            {
                var s = client.GetStream();
                var (method, path, headers) = await ReadRequest(s);
                headers.TryGetValue("range", out var range);
                headers.TryGetValue("authorization", out var auth);
                Requests.Enqueue(new Request(method, path, range, auth));
                await Answer(s, method, path.Split('?')[0], range, auth);
                client.Client.Shutdown(SocketShutdown.Send);
            }
            catch (IOException) { }
            catch (SocketException) { }
        }
    }

    private static async Task<(string, string, Dictionary<string, string>)> ReadRequest(NetworkStream s)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (bytes.Count < 4 || !(bytes[^4] == '\r' && bytes[^3] == '\n' && bytes[^2] == '\r' && bytes[^1] == '\n'))
        {
            if (await s.ReadAsync(one) == 0) throw new IOException("closed");
            bytes.Add(one[0]);
        }
        var lines = Encoding.ASCII.GetString([.. bytes]).Split("\r\n");
        var first = lines[0].Split(' ');
        var headers = new Dictionary<string, string>();
        foreach (var l in lines.Skip(1).Where(l => l.Contains(':')))
            headers[l[..l.IndexOf(':')].Trim().ToLowerInvariant()] = l[(l.IndexOf(':') + 1)..].Trim();
        return (first[0], first[1], headers);
    }

    private async Task Answer(NetworkStream s, string method, string path, string? range, string? auth)
    {
        // split before unescaping, as the Hub does: a revision like refs%2Fpr%2F1 is one segment
        var parts = path.TrimStart('/').Split('/').Select(Uri.UnescapeDataString).ToArray();
        if (parts is ["lfs", var sha])
        {
            var found = Repos.Values.SelectMany(r => r.Commits.Values).SelectMany(f => f).FirstOrDefault(kv => Sha256(kv.Value) == sha);
            if (found.Value == null) { await Send(s, 404, [], null, method); return; }
            int now = Interlocked.Increment(ref _inFlight);
            for (int seen = _maxInFlight; now > seen; seen = _maxInFlight) Interlocked.CompareExchange(ref _maxInFlight, now, seen);
            try
            {
                await Task.Delay(LfsDelay);
                await SendFile(s, method, found.Key, found.Value, range, []);
            }
            finally { Interlocked.Decrement(ref _inFlight); }
            return;
        }
        bool api = parts is ["api", "models", _, _, "revision", _];
        var id = api ? $"{parts[2]}/{parts[3]}" : parts.Length >= 4 ? $"{parts[0]}/{parts[1]}" : "";
        if (!Repos.TryGetValue(id, out var repo)) { await Error(s, 404, "RepoNotFound", "Repository not found", method); return; }
        if (repo.Token != null && auth != $"Bearer {repo.Token}") { await Error(s, 401, "RepoNotFound", "Invalid username or password.", method); return; }
        if (api)
        {
            if (ApiFailures.TryDequeue(out var failure)) { await Error(s, failure, "", "try again", method); return; }
            if (ApiCuts > 0)
            {
                ApiCuts--;
                await Head(s, 200, [("Content-Type", "application/json")], 1000);
                await s.FlushAsync();
                return; // the connection closes before the JSON
            }
            var rev = parts[5];
            var commit = repo.Refs.TryGetValue(rev, out var c) ? c : repo.Commits.ContainsKey(rev) ? rev : null;
            if (commit == null) { await Error(s, 404, "RevisionNotFound", $"Invalid rev id: {rev}", method); return; }
            var doc = new JsonObject
            {
                ["id"] = id, ["sha"] = commit, ["gated"] = repo.Gated ? "manual" : false,
                ["siblings"] = new JsonArray([.. repo.Commits[commit].Keys.Select(f => (JsonNode)new JsonObject { ["rfilename"] = f })]),
            };
            await Send(s, 200, [("Content-Type", "application/json")], Encoding.UTF8.GetBytes(doc.ToJsonString()), method);
            return;
        }
        if (parts.Length < 5 || parts[2] != "resolve") { await Send(s, 404, [], null, method); return; }
        if (repo.Gated && auth == null) { await Error(s, 401, "GatedRepo", $"Access to model {id} is restricted. You must have access to it and be authenticated to access it. Please log in.", method); return; }
        if (repo.Gated) { await Error(s, 403, "GatedRepo", $"Access to model {id} is restricted and you are not in the authorized list.", method); return; }
        var revision = parts[3];
        var at = repo.Refs.TryGetValue(revision, out var cc) ? cc : revision;
        var file = string.Join('/', parts[4..]);
        if (!repo.Commits.TryGetValue(at, out var files)) { await Error(s, 404, "RevisionNotFound", "Invalid rev id", method); return; }
        if (!files.TryGetValue(file, out var content)) { await Error(s, 404, "EntryNotFound", "Entry not found", method); return; }
        (string, string)[] hub = [("X-Repo-Commit", at)];
        if (IsLfs(file))
        {
            var lfs = Sha256(content);
            await Send(s, 302, [.. hub, ("Location", $"{Url}/lfs/{lfs}"), ("X-Linked-Etag", $"\"{lfs}\""), ("X-Linked-Size", content.Length.ToString()),
                ("ETag", $"\"{GitSha1(Encoding.ASCII.GetBytes("pointer"))}\"")], null, method);
            return;
        }
        await SendFile(s, method, file, content, range, [.. hub, ("ETag", $"\"{GitSha1(content)}\"")]);
    }

    private async Task SendFile(NetworkStream s, string method, string file, byte[] content, string? range, (string, string)[] headers)
    {
        if (Corrupt.Contains(file)) { content = (byte[])content.Clone(); content[^1] ^= 0xFF; }
        if (range != null && RefuseRange.Contains(file)) { await Send(s, 416, [("Content-Range", $"bytes */{content.Length}")], null, method); return; }
        if (IgnoreRange.Contains(file)) range = null;
        long from = range != null && range.StartsWith("bytes=") ? long.Parse(range[6..].TrimEnd('-')) : 0;
        var body = content[(int)from..];
        (string, string)[] h = [.. headers, ("Content-Type", "application/octet-stream")];
        if (range != null) h = [.. h, ("Content-Range", $"bytes {from}-{content.Length - 1}/{content.Length}")];
        if (method == "GET" && CutOnce.TryGetValue(file, out var cut))
        {
            if (CutTimes.AddOrUpdate(file, 0, (_, n) => n - 1) <= 0) CutOnce.TryRemove(file, out _);
            await Head(s, range != null ? 206 : 200, h, body.Length);
            await s.WriteAsync(body.AsMemory(0, (int)Math.Min(cut, body.Length)));
            await s.FlushAsync();
            return; // the connection closes with the body short
        }
        await Send(s, range != null ? 206 : 200, h, body, method);
    }

    private static Task Error(NetworkStream s, int status, string code, string message, string method)
        => Send(s, status, [("X-Error-Code", code), ("X-Error-Message", message), ("Content-Type", "application/json")],
            Encoding.UTF8.GetBytes(new JsonObject { ["error"] = message }.ToJsonString()), method);

    private static async Task Send(NetworkStream s, int status, (string, string)[] headers, byte[]? body, string method)
    {
        await Head(s, status, headers, body?.Length ?? 0);
        if (body != null && method != "HEAD") await s.WriteAsync(body);
        await s.FlushAsync();
    }

    private static async Task Head(NetworkStream s, int status, (string Name, string Value)[] headers, long length)
    {
        var sb = new StringBuilder($"HTTP/1.1 {status} {Reason(status)}\r\n");
        foreach (var (n, v) in headers) sb.Append($"{n}: {v}\r\n");
        sb.Append($"Content-Length: {length}\r\nConnection: close\r\n\r\n");
        await s.WriteAsync(Encoding.ASCII.GetBytes(sb.ToString()));
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        206 => "Partial Content",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
}
