using Mistral.Merge.Numerics;

namespace Mistral.Merge.Models;

/// <summary>
/// Counts NaN, ±Inf and all-zero tensors of a model straight from the memory maps: every tensor is
/// cut into chunks that are scanned on the <see cref="WorkerPool"/> (<c>--threads</c>, 0 = all cores), so neither a float32 copy nor a whole tensor is
/// ever held, and one huge tensor is spread over the cores like many small ones.
/// </summary>
public static class TensorCheck
{
    private const int ChunkBytes = 16 << 20; // a multiple of every element size

    /// <summary>Per tensor of <see cref="ModelFolder.TensorNames"/>, in that order.</summary>
    public static ValueCounts[] Scan(ModelFolder folder, int threads = 0)
    {
        var names = folder.TensorNames;
        var pieces = new List<(int Tensor, long Offset, int Length)>();
        for (int i = 0; i < names.Count; i++)
        {
            long total = folder.Info(names[i]).ByteLength;
            for (long off = 0; off < total; off += ChunkBytes) pieces.Add((i, off, (int)Math.Min(ChunkBytes, total - off)));
        }
        var counts = new ValueCounts[pieces.Count];
        WorkerPool.For(threads, pieces.Count, (k, _) =>
        {
            var (tensor, offset, length) = pieces[k];
            var (file, info) = folder.Lookup(names[tensor]);
            counts[k] = FiniteScan.Count(file.GetBytes(info, offset, length), info.DType);
        });
        var result = new ValueCounts[names.Count];
        var seen = new bool[names.Count];
        for (int k = 0; k < pieces.Count; k++)
        {
            int t = pieces[k].Tensor;
            result[t] = seen[t] ? result[t].Add(counts[k]) : counts[k];
            seen[t] = true;
        }
        return result; // an empty tensor keeps the default: no NaN/Inf, not flagged all-zero
    }
}
