using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;

namespace Mistral.Merge.Hub;

/// <summary>A revision of a repository: its commit and the files it holds.</summary>
public sealed record RepoRevision(string Commit, IReadOnlyList<string> Files);

/// <summary>
/// What a HEAD on <c>/resolve/COMMIT/FILE</c> tells, as huggingface_hub reads it: the etag (X-Linked-Etag for an LFS
/// file, else ETag; quotes and W/ removed), the size (X-Linked-Size, else Content-Length), and where the bytes are
/// (the Location of a redirect to another host, e.g. the CDN holding LFS files, else the resolve URL).
/// </summary>
public sealed record FileMeta(string File, string Etag, long Size, Uri Location);

/// <summary>
/// The Hub's HTTP API (the two calls huggingface_hub's snapshot_download makes): <c>GET /api/models/REPO/revision/REV</c>
/// and <c>HEAD</c>/<c>GET /REPO/resolve/COMMIT/FILE</c>. Sends <c>Authorization: Bearer TOKEN</c> to the endpoint's
/// host only (never to a CDN a redirect points to); turns every failure into one <see cref="HubException"/> line.
/// </summary>
internal sealed class HubClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly HubOptions _o;
    private readonly Uri _endpoint;

    public HubClient(HubOptions o)
    {
        _o = o;
        if (!Uri.TryCreate(o.Endpoint + "/", UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            throw new HubException(HubFailure.Other, $"HF_ENDPOINT '{o.Endpoint}' is not an http(s) URL");
        _endpoint = endpoint;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false, // redirects are followed below, so the token never travels to another host
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = o.Timeout,
            MaxConnectionsPerServer = Math.Max(2, o.Parallel + 1),
        };
        _http = new HttpClient(handler) { Timeout = o.Timeout };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("mistral-merge/1.0");
    }

    public void Dispose() => _http.Dispose();

    public async Task<RepoRevision> GetRevisionAsync(HubId id, CancellationToken ct)
    {
        // the revision is one path segment: "refs/pr/1" travels as refs%2Fpr%2F1 (huggingface_hub quotes it with safe="")
        var url = new Uri(_endpoint, $"api/models/{id.Repo}/revision/{Uri.EscapeDataString(id.Revision)}");
        string body;
        for (int attempt = 1; ; attempt++)
        {
            using var res = await SendAsync(HttpMethod.Get, url, followAll: false, rangeFrom: 0, ct);
            if (!res.IsSuccessStatusCode) throw Error(res, id, null);
            try
            {
                body = await res.Content.ReadAsStringAsync(ct);
                break;
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                // a connection cut before the whole JSON arrived: asked again a few times
                if (attempt >= Retries) throw Network(e, url);
                await Task.Delay(RetryPause(attempt, null), ct);
            }
        }
        try
        {
            using var doc = JsonDocument.Parse(body);
            var sha = doc.RootElement.GetProperty("sha").GetString();
            if (sha == null || !HubId.IsCommit(sha)) throw new JsonException("sha");
            var files = new List<string>();
            if (doc.RootElement.TryGetProperty("siblings", out var siblings))
                foreach (var s in siblings.EnumerateArray())
                    if (s.TryGetProperty("rfilename", out var f) && f.GetString() is { } name) files.Add(name);
            return new RepoRevision(sha, files);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new HubException(HubFailure.Other, $"{id}: {url} did not answer with the Hub's revision JSON (sha, siblings)");
        }
    }

    public async Task<FileMeta> HeadAsync(HubId id, string commit, string file, CancellationToken ct)
    {
        var url = ResolveUrl(id, commit, file);
        using var res = await SendAsync(HttpMethod.Head, url, followAll: false, rangeFrom: 0, ct);
        int status = (int)res.StatusCode;
        if (status is < 200 or >= 400) throw Error(res, id, file);
        var etag = Header(res, "X-Linked-Etag") ?? Header(res, "ETag");
        var sizeText = Header(res, "X-Linked-Size") ?? res.Content.Headers.ContentLength?.ToString();
        if (etag != null) etag = etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag;
        etag = etag?.Trim('"');
        if (string.IsNullOrEmpty(etag) || !etag.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            throw new HubException(HubFailure.Other, $"{id}: {file}: the server gave no usable ETag ({url})");
        if (!long.TryParse(sizeText, out var size) || size < 0)
            throw new HubException(HubFailure.Other, $"{id}: {file}: the server gave no size (X-Linked-Size or Content-Length) ({url})");
        var location = res.Headers.Location is { } loc && status >= 300 ? new Uri(res.RequestMessage!.RequestUri!, loc) : res.RequestMessage!.RequestUri!;
        return new FileMeta(file, etag, size, location);
    }

    /// <summary>GET the file's bytes from <paramref name="from"/> on (a Range request when above 0), redirects followed.</summary>
    public async Task<HttpResponseMessage> GetAsync(HubId id, FileMeta meta, long from, CancellationToken ct)
    {
        var res = await SendAsync(HttpMethod.Get, meta.Location, followAll: true, rangeFrom: from, ct);
        if (res.IsSuccessStatusCode || res.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) return res;
        using (res) throw Error(res, id, meta.File);
    }

    public Uri ResolveUrl(HubId id, string commit, string file)
        => new(_endpoint, $"{id.Repo}/resolve/{commit}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}");

    public string Page(HubId id) => _endpoint + id.Repo;

    /// <summary>
    /// Sends one request, following redirects: relative ones only for a HEAD (as huggingface_hub, so that the
    /// redirect of an LFS file to its CDN is read, not followed), all of them for a GET.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, bool followAll, long rangeFrom, CancellationToken ct)
    {
        int busy = 0;
        for (int hop = 0; ; hop++)
        {
            using var req = new HttpRequestMessage(method, url);
            if (_o.Token != null && url.Authority == _endpoint.Authority) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _o.Token);
            req.Headers.AcceptEncoding.ParseAdd("identity"); // the real size, never a compressed body
            if (rangeFrom > 0) req.Headers.Range = new RangeHeaderValue(rangeFrom, null);
            HttpResponseMessage res;
            try { res = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct); }
            catch (HttpRequestException e) { throw Network(e, url); }
            catch (TaskCanceledException e) when (!ct.IsCancellationRequested) { throw Network(e, url); }
            if (IsTransient(res.StatusCode) && busy < Retries)
            {
                // 429 and 5xx are asked again after a pause (Retry-After when the server gives one, at most 10 s)
                var pause = RetryPause(++busy, res.Headers.RetryAfter?.Delta);
                res.Dispose();
                await Task.Delay(pause, ct);
                hop--;
                continue;
            }
            if ((int)res.StatusCode is >= 300 and < 400 && res.Headers.Location is { } loc && hop < 10
                && (followAll || !loc.IsAbsoluteUri))
            {
                res.Dispose();
                url = new Uri(url, loc);
                continue;
            }
            return res;
        }
    }

    /// <summary>How many times a busy answer (429, 5xx) or a cut revision call is asked again.</summary>
    public const int Retries = 3;

    private static bool IsTransient(HttpStatusCode s) => (int)s is 429 or 500 or 502 or 503 or 504;

    private static TimeSpan RetryPause(int attempt, TimeSpan? retryAfter)
        => retryAfter is { } r && r >= TimeSpan.Zero ? TimeSpan.FromSeconds(Math.Min(r.TotalSeconds, 10)) : TimeSpan.FromMilliseconds(250 * attempt);

    private static string? Header(HttpResponseMessage res, string name)
        => res.Headers.TryGetValues(name, out var v) || res.Content.Headers.TryGetValues(name, out v) ? v.FirstOrDefault() : null;

    /// <summary>"cannot reach HOST: REASON": a refused or failed connection, a timeout, a cut connection.</summary>
    public HubException Network(Exception e, Uri url)
    {
        var reason = e switch
        {
            TaskCanceledException => $"no answer within {_o.Timeout.TotalSeconds:0} s",
            _ when Inner<SocketException>(e) is { } s => s.Message,
            _ when e.InnerException is { } inner => inner.Message,
            _ => e.Message,
        };
        return new HubException(HubFailure.Network, $"cannot reach {url.Host}:{url.Port}: {reason.TrimEnd('.')} (HF_ENDPOINT={_o.Endpoint}; HF_HUB_OFFLINE=1 uses the cache only)", e);
    }

    private static T? Inner<T>(Exception? e) where T : Exception
    {
        for (; e != null; e = e.InnerException) if (e is T t) return t;
        return null;
    }

    /// <summary>An HTTP error as one line: what it means for this repository and what to do.</summary>
    private HubException Error(HttpResponseMessage res, HubId id, string? file)
    {
        var code = Header(res, "X-Error-Code");
        int status = (int)res.StatusCode;
        var what = $"{status} {res.ReasonPhrase}".Trim();
        return status switch
        {
            401 when code == "GatedRepo" => new(HubFailure.Gated,
                $"{id.Repo} is gated ({what}): set HF_TOKEN or run huggingface-cli login, and accept its licence at {Page(id)}"),
            401 => new(HubFailure.Unauthorized, _o.Token == null
                ? $"{id.Repo}: the Hub refused access without a token ({what}): the repository is private, gated or does not exist; set HF_TOKEN or run huggingface-cli login"
                : $"{id.Repo}: the Hub refused the token ({what}): the repository is private or does not exist, or the token (HF_TOKEN or huggingface-cli login) is invalid"),
            403 => new(HubFailure.Gated,
                $"{id.Repo} is gated ({what}): accept its licence at {Page(id)} with the account of your token (HF_TOKEN or huggingface-cli login)"),
            404 when code == "RevisionNotFound" => new(HubFailure.RevisionNotFound, $"{id.Repo}: revision '{id.Revision}' not found on {_o.Endpoint}"),
            404 when code == "EntryNotFound" || (file != null && code != "RepoNotFound") =>
                new(HubFailure.FileNotFound, $"{id.Repo}: file '{file}' not found at revision {id.Revision} on {_o.Endpoint}"),
            404 => new(HubFailure.RepoNotFound, $"{id.Repo}: repository not found on {_o.Endpoint}"),
            _ => new(HubFailure.Other, $"{id.Repo}: the Hub answered {what} for {res.RequestMessage?.RequestUri}"),
        };
    }
}
