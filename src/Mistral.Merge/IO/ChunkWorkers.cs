using System.Collections.Concurrent;

namespace Mistral.Merge.IO;

/// <summary>
/// The worker loop of the writers that compute their bytes (convert, synth): at most one worker per core, chunks
/// handed out one at a time in list order (no range partitioning), so the workers write neighbouring pieces and the
/// file grows front to back (fewer extents, sequential write-back); each worker reuses one float and one byte
/// buffer, so memory is bounded by workers × chunk.
/// </summary>
internal static class ChunkWorkers
{
    /// <summary>Elements per chunk: a few MB per worker, many chunks per tensor to share out.</summary>
    public const int ChunkElements = 1 << 20;

    public static void Run<T>(List<T> chunks, Action<T, float[], byte[]> body, CancellationToken cancel) =>
        Parallel.ForEach(Partitioner.Create(chunks, EnumerablePartitionerOptions.NoBuffering),
            new ParallelOptions { CancellationToken = cancel, MaxDegreeOfParallelism = Environment.ProcessorCount },
            () => (Floats: new float[ChunkElements], Bytes: new byte[ChunkElements * sizeof(float)]),
            (chunk, _, buffers) =>
            {
                body(chunk, buffers.Floats, buffers.Bytes);
                return buffers;
            },
            _ => { });
}
