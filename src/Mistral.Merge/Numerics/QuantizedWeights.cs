using System.Runtime.InteropServices;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Numerics;

/// <summary>
/// Q8_0 copies of float weight matrices made at load time, owned here (native memory, freed on dispose). Each
/// matrix is quantized straight from its stored (usually memory-mapped) rows: a worker widens one row to float32
/// into its own scratch and quantizes it (ggml's <c>quantize_row_q8_0_ref</c>, <see cref="Q8_0.Quantize"/>), so
/// the only memory added is the Q8_0 matrix itself (34 bytes per 32 weights) — never a float32 copy.
/// </summary>
public sealed unsafe class QuantizedWeights : IDisposable
{
    private readonly List<nint> _buffers = [];

    /// <summary>Bytes held.</summary>
    public long Bytes { get; private set; }

    /// <summary>
    /// A Q8_0 copy of <paramref name="src"/> (F32/F16/BF16; its columns a multiple of 32), quantized row by row on
    /// <paramref name="threads"/> threads (0 = all); the same bytes for any thread count.
    /// </summary>
    public WeightMatrix ToQ8_0(WeightMatrix src, int threads)
    {
        if (src.IsQuantized) throw new ArgumentException("already quantized", nameof(src));
        if (src.Cols % Q8_0.BlockSize != 0) throw new ArgumentException($"columns ({src.Cols}) are not a multiple of {Q8_0.BlockSize}", nameof(src));
        long rowBytes = Q8_0.ByteCount(src.Cols), total = rowBytes * src.Rows;
        byte* dst = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(total, 1), 64);
        _buffers.Add((nint)dst);
        Bytes += total;
        const int RowsPerJob = 64;
        int jobs = (src.Rows + RowsPerJob - 1) / RowsPerJob;
        var scratch = new float[WorkerPool.ThreadsFor(threads, jobs)][];
        WorkerPool.For(threads, jobs, (job, worker) =>
        {
            var row = scratch[worker] ??= new float[src.Cols];
            int r1 = Math.Min(src.Rows, (job + 1) * RowsPerJob);
            for (int r = job * RowsPerJob; r < r1; r++)
            {
                src.WidenRow(r, 0, src.Cols, row);
                Q8_0.Quantize(row, new Span<byte>(dst + r * rowBytes, (int)rowBytes));
            }
        });
        return new WeightMatrix(dst, BlockQuant.Q8_0, src.Rows, src.Cols);
    }

    public void Dispose()
    {
        foreach (var p in _buffers) NativeMemory.AlignedFree((void*)p);
        _buffers.Clear();
        Bytes = 0;
    }
}
