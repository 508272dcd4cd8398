namespace Mistral.Merge.Hub;

/// <summary>A snapshot in the cache: its folder, its commit, how many files it has and how many were downloaded now.</summary>
public sealed record HubSnapshot(string Path, string Commit, int Files, int Downloaded, long DownloadedBytes);

/// <summary>
/// <c>snapshot_download</c> for the files the tool reads (<see cref="HubFiles"/>): asks the Hub which commit the
/// revision is and which files it holds, fetches the missing ones (several at once; a file already in the snapshot
/// costs no request), links each into <c>snapshots/COMMIT</c> once its blob is complete and checked, and writes
/// <c>refs/REVISION</c> for a branch or tag name last, so a ref never names a snapshot still being filled.
/// With <see cref="HubOptions.Offline"/> only the cache is read.
/// </summary>
public static class HubDownloader
{
    public static HubSnapshot Download(HubId id, HubOptions o, CancellationToken ct = default)
        => DownloadAsync(id, o, ct).GetAwaiter().GetResult();

    private static async Task<HubSnapshot> DownloadAsync(HubId id, HubOptions o, CancellationToken ct)
    {
        var cache = new HubCache(o.Cache, id);
        if (o.Offline)
        {
            var cached = cache.TryResolve(id.Revision, out var looked);
            if (cached == null)
                throw new HubException(HubFailure.Offline, $"{id} is not in the Hugging Face cache (looked in {looked}) and HF_HUB_OFFLINE is set, so it is not downloaded");
            return new HubSnapshot(cached, Path.GetFileName(cached), Directory.EnumerateFileSystemEntries(cached).Count(), 0, 0);
        }
        using var client = new HubClient(o);
        RepoRevision revision;
        try { revision = await client.GetRevisionAsync(id, ct); }
        catch (HubException e) when (e.Kind == HubFailure.Network && cache.TryResolve(id.Revision, out _) is { } cached)
        {
            o.Notice?.Invoke($"warning: {e.Message}; using the cached snapshot {cached}");
            return new HubSnapshot(cached, Path.GetFileName(cached), Directory.EnumerateFileSystemEntries(cached).Count(), 0, 0);
        }
        var commit = revision.Commit;
        var run = new Run(client, cache, id, commit, o);
        await run.FetchAsync(HubFiles.First(revision.Files), reportProgress: false, ct);
        var weights = HubFiles.Weights(revision.Files, cache.Snapshot(commit), id.Repo);
        if (weights.Count == 0)
            throw new HubException(HubFailure.Other, $"{id}: the repository holds no *.safetensors or pytorch_model*.bin file at commit {commit}");
        await run.FetchAsync(weights, reportProgress: true, ct);
        cache.WriteRef(id.Revision, commit);
        int files = HubFiles.First(revision.Files).Count + weights.Count;
        return new HubSnapshot(cache.Snapshot(commit), commit, files, run.Downloaded, run.Bytes);
    }

    /// <summary>One download of one commit: fetches lists of files, counting what it downloaded.</summary>
    private sealed class Run(HubClient client, HubCache cache, HubId id, string commit, HubOptions o)
    {
        public int Downloaded;
        public long Bytes;

        public async Task FetchAsync(List<string> files, bool reportProgress, CancellationToken outer)
        {
            var missing = files.Where(f => !File.Exists(cache.SnapshotFile(commit, f))).ToList();
            if (missing.Count == 0) return;
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(outer); // the first failure stops the rest
            var metas = await ForEach(missing, f => client.HeadAsync(id, commit, f, cts.Token), cts);
            long total = metas.Where(m => !File.Exists(cache.Blob(m.Etag))).GroupBy(m => m.Etag).Sum(g => g.First().Size);
            long done = 0;
            void Advanced(long n)
            {
                var now = Interlocked.Add(ref done, n);
                if (reportProgress) o.Progress?.Invoke(now, total);
            }
            // one download per blob: two files with the same content share it
            await ForEach(metas.GroupBy(m => m.Etag).Select(g => g.First()).ToList(),
                m => new BlobDownload(client, cache, id, m, Advanced, o.Timeout).RunAsync(cts.Token), cts);
            foreach (var m in metas) cache.Link(commit, m.File, m.Etag);
            Downloaded += metas.Count;
            Bytes += total;
        }

        /// <summary>Runs <paramref name="work"/> on every item, <see cref="HubOptions.Parallel"/> at a time; the first error cancels the others and is the one thrown.</summary>
        private async Task<List<T>> ForEach<TItem, T>(List<TItem> items, Func<TItem, Task<T>> work, CancellationTokenSource cts)
        {
            using var gate = new SemaphoreSlim(Math.Max(1, o.Parallel));
            Exception? first = null;
            var tasks = items.Select(async item =>
            {
                await gate.WaitAsync(cts.Token);
                try { return await work(item); }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref first, e, null);
                    cts.Cancel();
                    throw;
                }
                finally { gate.Release(); }
            }).ToList();
            try { return [.. await Task.WhenAll(tasks)]; }
            catch when (first is not null and not OperationCanceledException)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
                throw;
            }
        }

        private Task<List<bool>> ForEach<TItem>(List<TItem> items, Func<TItem, Task> work, CancellationTokenSource cts)
            => ForEach(items, async i => { await work(i); return true; }, cts);
    }
}
