using System.Net;
using System.Security.Cryptography;

namespace Mistral.Merge.Hub;

/// <summary>
/// Downloads one file into its blob: bytes go to <c>blobs/ETAG.incomplete</c> (resumed with a Range request from
/// what an interrupted run left there), are checked (SHA-256 against an LFS etag, which is the file's sha256; the
/// size otherwise) and only then renamed to <c>blobs/ETAG</c>. A file that fails the check is deleted, so no partial
/// or wrong file is ever presented as complete.
/// </summary>
internal sealed class BlobDownload(HubClient client, HubCache cache, HubId id, FileMeta meta, Action<long> advanced, TimeSpan stall)
{
    private const int BufferSize = 1 << 20;

    /// <summary>True when the etag is an LFS file's sha256 (64 hex digits), which the content must hash to.</summary>
    public static bool IsSha256(string etag) => etag.Length == 64 && etag.All(char.IsAsciiHexDigitLower);

    public async Task RunAsync(CancellationToken ct)
    {
        var blob = cache.Blob(meta.Etag);
        if (File.Exists(blob)) return;
        var incomplete = cache.Incomplete(meta.Etag);
        Directory.CreateDirectory(cache.Blobs);
        using var hash = IsSha256(meta.Etag) ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        await using (var file = Open(incomplete))
        {
            long have = file.Length;
            if (have > meta.Size) { file.SetLength(0); have = 0; }
            if (hash != null && have > 0) HashExisting(file, have, hash, ct);
            advanced(have);
            if (have < meta.Size) await FetchWithRetriesAsync(file, hash, ct);
            else file.Seek(0, SeekOrigin.End);
            try { await file.FlushAsync(ct); }
            catch (IOException e) { throw Disk(incomplete, e); }
            if (file.Length != meta.Size)
                throw new HubException(HubFailure.Network, $"{id.Repo}: {meta.File}: the download ended at {file.Length} of {meta.Size} bytes; run the command again to resume it");
        }
        if (hash != null)
        {
            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (actual != meta.Etag)
            {
                File.Delete(incomplete);
                throw new HubException(HubFailure.Other, $"{id.Repo}: {meta.File}: SHA-256 {actual} does not match the Hub's {meta.Etag}; the download was deleted, run the command again");
            }
        }
        File.Move(incomplete, blob, overwrite: true);
    }

    private FileStream Open(string incomplete)
    {
        try { return new FileStream(incomplete, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, BufferSize, useAsync: true); }
        catch (IOException e) { throw Disk(incomplete, e); }
    }

    private static void HashExisting(FileStream file, long have, IncrementalHash hash, CancellationToken ct)
    {
        var buffer = new byte[BufferSize];
        file.Seek(0, SeekOrigin.Begin);
        for (long left = have; left > 0;)
        {
            ct.ThrowIfCancellationRequested();
            int n = file.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n <= 0) throw new EndOfStreamException();
            hash.AppendData(buffer, 0, n);
            left -= n;
        }
    }

    /// <summary>Retries of a download cut short within one run (huggingface_hub's http_get resumes 5 times too).</summary>
    public const int Retries = 5;

    /// <summary>
    /// Fetches the rest of the file; a connection cut mid-body (or refused) is resumed from what arrived, up to
    /// <see cref="Retries"/> times with a short growing pause. A server gone silent is retried only when its last try
    /// sent some bytes, so a hung server fails after one timeout, not six.
    /// </summary>
    private async Task FetchWithRetriesAsync(FileStream file, IncrementalHash? hash, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            long before = file.Length;
            try
            {
                await FetchAsync(file, before, hash, ct);
                return;
            }
            catch (HubException e) when (e.Kind == HubFailure.Network && attempt <= Retries && !ct.IsCancellationRequested
                && (file.Length > before || e.InnerException is not (TimeoutException or TaskCanceledException)))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250 * attempt), ct);
            }
        }
    }

    /// <summary>Appends the bytes from <paramref name="have"/> on; a server that ignores the Range starts the file over.</summary>
    private async Task FetchAsync(FileStream file, long have, IncrementalHash? hash, CancellationToken ct)
    {
        using var res = await client.GetAsync(id, meta, have, ct);
        if (res.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable || (have > 0 && res.StatusCode != HttpStatusCode.PartialContent))
        {
            // the partial file cannot be continued: begin again from the first byte
            file.SetLength(0);
            hash?.GetHashAndReset();
            advanced(-have);
            if (res.StatusCode != HttpStatusCode.OK) { await FetchAsync(file, 0, hash, ct); return; }
            have = 0;
        }
        file.Seek(have, SeekOrigin.Begin);
        var buffer = new byte[BufferSize];
        using var stalled = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Stream body;
        try { body = await res.Content.ReadAsStreamAsync(ct); }
        catch (Exception e) when (e is HttpRequestException or IOException) { throw Interrupted(e, file.Length); }
        await using (body)
        {
            while (true)
            {
                int n;
                stalled.CancelAfter(stall); // a server that stops sending fails the download instead of hanging it
                try { n = await body.ReadAsync(buffer, stalled.Token); }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested) { throw Interrupted(new TimeoutException($"no data for {stall.TotalSeconds:0} s"), file.Length); }
                catch (Exception e) when (e is HttpRequestException or IOException) { throw Interrupted(e, file.Length); }
                if (n == 0) break;
                if (n > meta.Size - file.Length)
                {
                    // more bytes than the Hub announced: no resume can fix that, so the partial file goes
                    file.SetLength(0);
                    throw new HubException(HubFailure.Other, $"{id.Repo}: {meta.File}: the server sent more than the {meta.Size} bytes the Hub announced; the download was deleted");
                }
                try { await file.WriteAsync(buffer.AsMemory(0, n), ct); }
                catch (IOException e) { throw Disk(file.Name, e); }
                hash?.AppendData(buffer, 0, n);
                advanced(n);
            }
        }
    }

    private HubException Interrupted(Exception e, long have)
        => new(HubFailure.Network, $"{id.Repo}: {meta.File}: the download was interrupted at {have} of {meta.Size} bytes ({Reason(e)}); run the command again to resume it", e);

    private static string Reason(Exception e)
    {
        while (e.InnerException != null && e is not System.Net.Sockets.SocketException) e = e.InnerException;
        return e.Message.TrimEnd('.');
    }

    /// <summary>A failed write: a full disk says so (the partial file is kept for a later resume).</summary>
    private HubException Disk(string path, IOException e) => DiskError(path, e, id.Repo, meta.File);

    public static HubException DiskError(string path, IOException e, string repo, string file)
    {
        int errno = IO.IoErrors.ErrnoOf(e);
        var what = errno is 28 or 122 || e.HResult is unchecked((int)0x80070070) or unchecked((int)0x80070027)
            ? "no space left on device (ENOSPC): free some space and run the command again to resume it"
            : IO.IoErrors.Describe(e);
        return new HubException(HubFailure.Other, $"{path}: {what} (downloading {repo}: {file})", e);
    }
}
