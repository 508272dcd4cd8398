using Mistral.Merge.Numerics;

namespace Mistral.Merge.IO;

/// <summary>
/// The worker loop of the writers that compute their bytes (convert, synth), on the <see cref="WorkerPool"/>:
/// at most <c>--threads</c> workers (0 = one per core), chunks handed out one at a time in list order (no range
/// partitioning), so the workers write neighbouring pieces and the file grows front to back (fewer extents,
/// sequential write-back); each worker reuses one float and one byte buffer, so memory is bounded by workers × chunk.
/// </summary>
internal static class ChunkWorkers
{
    /// <summary>Elements per chunk: a few MB per worker, many chunks per tensor to share out.</summary>
    public const int ChunkElements = 1 << 20;

    public static void Run<T>(List<T> chunks, Action<T, float[], byte[]> body, int threads, CancellationToken cancel)
    {
        var buffers = new (float[] Floats, byte[] Bytes)?[WorkerPool.ThreadsFor(threads, chunks.Count)];
        WorkerPool.For(threads, chunks.Count, (i, worker) =>
        {
            if (cancel.IsCancellationRequested) return;
            var b = buffers[worker] ??= (new float[ChunkElements], new byte[ChunkElements * sizeof(float)]);
            body(chunks[i], b.Floats, b.Bytes);
        });
        cancel.ThrowIfCancellationRequested();
    }
}
