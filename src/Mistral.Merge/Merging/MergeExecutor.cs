using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Mistral.Merge.IO;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Merging;

public sealed record ExecuteOptions
{
    /// <summary>Worker threads (<c>--threads</c>; at most 256): 0 = all logical processors.</summary>
    public int Threads { get; init; }
    public long ShardSize { get; init; } = WriterOptions.DefaultShardSize;
    public bool Force { get; init; }
    public bool CopyTokenizer { get; init; } = true;
    /// <summary>Write README.md (the model card) and mergekit_config.yml (the recipe), as mergekit's --write-model-card.</summary>
    public bool WriteModelCard { get; init; } = true;
    /// <summary>float32 working memory shared by all workers; chunks are sized from it.</summary>
    public long MemoryBudget { get; init; } = 512L << 20;
    public Action<MergeProgress>? Progress { get; init; }
    public CancellationToken Cancellation { get; init; }
    /// <summary>Write NaN/Inf outputs (and outputs of non-finite inputs) with a warning instead of failing.</summary>
    public bool AllowNonFinite { get; init; }
    /// <summary>Receives warnings (one line each, no "warning:" prefix); may be called from worker threads.</summary>
    public Action<string>? Warning { get; init; }
}

public sealed record MergeProgress(int TensorsDone, int TensorsTotal, long BytesRead, long BytesWritten, long BytesTotal, TimeSpan Elapsed);

/// <summary>
/// Streams a plan's tasks to a <see cref="CheckpointWriter"/> on all cores. Inputs are read from
/// the memory maps chunk by chunk (whole rows) and widened to float32; each output chunk is
/// rounded once to its dtype and written at its final offset. Each worker owns its buffers, sized
/// from the memory budget, so peak memory depends on the thread count and chunk size, never on
/// the number of layers or on the size of a tensor.
/// </summary>
public static class MergeExecutor
{
    private const int PieceElements = 1 << 24; // conversion/write granularity (keeps spans < 2 GiB)

    /// <summary>Runs the plan into <paramref name="outDir"/> (refused when it is or holds an input).</summary>
    public static void Run(MergePlan plan, string outDir, ExecuteOptions options)
    {
        OutputFolder.CheckNotInput(outDir, plan.Models.Select(m => (m.Text, m.Folder.Path)));
        int threads = Math.Min(WorkerPool.Resolve(options.Threads), 256);
        using var writer = new CheckpointWriter(outDir, plan.OutputTensors, new WriterOptions { ShardSize = options.ShardSize, Force = options.Force });
        var run = new Execution(plan, writer, options, threads);
        run.Execute();
        OutputFiles.Write(plan, writer, options.CopyTokenizer, options.WriteModelCard);
        options.Cancellation.ThrowIfCancellationRequested();
        foreach (var m in plan.Models) m.Folder.CheckUnchanged(); // an input rewritten meanwhile: its bytes were a mix
        writer.Commit(options.Force);
    }

    private static readonly System.Collections.Concurrent.ConcurrentBag<Buffers> BufferPool = new();

    private sealed class Buffers
    {
        public float[][] Inputs = [];
        public float[] Output = [];
        public byte[] Bytes = [];

        public void Ensure(int count, int length, int outBytes)
        {
            if (Inputs.Length < count) Array.Resize(ref Inputs, count);
            for (int i = 0; i < count; i++)
                if (Inputs[i] == null || Inputs[i].Length < length) Inputs[i] = GC.AllocateUninitializedArray<float>(length);
            if (Output.Length < length) Output = GC.AllocateUninitializedArray<float>(length);
            if (Bytes.Length < outBytes) Bytes = GC.AllocateUninitializedArray<byte>(outBytes);
        }
    }

    private sealed class Execution(MergePlan plan, CheckpointWriter writer, ExecuteOptions o, int threads)
    {
        private int _done;
        private long _read, _written;
        private volatile bool _failed;
        private ExceptionDispatchInfo? _error;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly object _progressLock = new();
        private readonly long _total = plan.WriteBytes;
        private readonly FiniteCheck _finite = new(o.AllowNonFinite, o.Warning);

        // Largest tasks first: the big embeddings do not end up alone at the tail of the run.
        private readonly int[] _order = Enumerable.Range(0, plan.Tasks.Count).OrderByDescending(i => plan.Tasks[i].ReadBytes).ThenBy(i => i).ToArray();

        public void Execute()
        {
            // One index per task, handed out in _order by the worker pool; each worker keeps one set of buffers.
            int workers = WorkerPool.ThreadsFor(threads, plan.Tasks.Count);
            var buffers = new Buffers?[workers];
            try
            {
                WorkerPool.For(workers, plan.Tasks.Count, (i, worker) =>
                {
                    if (_failed) return;
                    // Buffers are reused across runs: a second merge in the same process does not allocate
                    // a second set while the garbage collector has not yet reclaimed the first.
                    var b = buffers[worker] ??= BufferPool.TryTake(out var pooled) ? pooled : new Buffers();
                    try
                    {
                        o.Cancellation.ThrowIfCancellationRequested();
                        RunTask(plan.Tasks[_order[i]], b);
                        Report(Interlocked.Increment(ref _done));
                    }
                    catch (Exception e)
                    {
                        lock (_progressLock) { _error ??= ExceptionDispatchInfo.Capture(e); }
                        _failed = true;
                    }
                });
            }
            finally
            {
                foreach (var b in buffers) if (b != null) BufferPool.Add(b);
            }
            _error?.Throw();
            o.Cancellation.ThrowIfCancellationRequested();
        }

        private void Report(int done)
        {
            if (o.Progress == null) return;
            lock (_progressLock)
                o.Progress(new MergeProgress(done, plan.Tasks.Count, Interlocked.Read(ref _read), Interlocked.Read(ref _written), _total, _clock.Elapsed));
        }

        private void RunTask(MergeTask task, Buffers b)
        {
            if (task.IsRawCopy) { CopyRaw(task); return; }
            var mt = task.MethodTask;
            var method = task.Method;
            long rows = mt.Rows, cols = mt.Cols;
            if (rows * cols == 0) return;
            long chunkElems = Math.Clamp(o.MemoryBudget / ((long)threads * (task.Inputs.Count + 1) * sizeof(float)), 1 << 16, 1 << 26);
            long chunkRows = Math.Clamp(chunkElems / cols, 1, rows);
            int maxLen = (int)(chunkRows * cols);
            int outSize = task.OutDType.SizeOf();
            b.Ensure(task.Inputs.Count, maxLen, (int)Math.Min((long)maxLen * outSize, (long)PieceElements * outSize));
            var chunk = new Chunk { Inputs = b.Inputs };
            var state = method.Begin(mt);
            long nChunks = (rows + chunkRows - 1) / chunkRows;
            bool loaded = false; // a single chunk is read once for all the passes
            void Load(long c)
            {
                if (nChunks == 1 && loaded) return;
                Read(task, chunk, c * chunkRows, (int)Math.Min(chunkRows, rows - c * chunkRows));
                loaded = true;
            }
            if (method.NeedsReduction(mt))
            {
                do
                {
                    for (long c = 0; c < nChunks; c++)
                    {
                        Load(c);
                        method.Accumulate(state, mt, chunk);
                        o.Cancellation.ThrowIfCancellationRequested();
                    }
                }
                while (method.Finish(state, mt));
            }
            for (long c = 0; c < nChunks; c++)
            {
                Load(c);
                var output = b.Output.AsSpan(0, chunk.Length);
                method.Apply(state, mt, chunk, output);
                Write(task, output, chunk.Row0 * cols, b.Bytes);
                o.Cancellation.ThrowIfCancellationRequested();
            }
        }

        /// <summary>Reads rows [row0, row0+count) of every input (the output-shaped top-left block) as float32.</summary>
        private void Read(MergeTask task, Chunk chunk, long row0, int count)
        {
            long cols = task.MethodTask.Cols;
            chunk.Row0 = row0;
            chunk.RowCount = count;
            chunk.Length = (int)(count * cols);
            for (int i = 0; i < task.Inputs.Count; i++)
            {
                var input = task.Inputs[i];
                int size = input.Info.DType.SizeOf();
                var dst = chunk.Inputs[i].AsSpan(0, chunk.Length);
                uint max = 0;
                if (task.Rows != null) max = task.Rows.Fill(task.Inputs, i, row0, count, (int)cols, dst);
                else if (input.StoredCols == cols)
                {
                    for (int done = 0; done < chunk.Length; done += PieceElements)
                    {
                        int n = Math.Min(PieceElements, chunk.Length - done);
                        var bytes = input.File.GetBytes(input.Info, (row0 * cols + done) * size, n * size);
                        max = Math.Max(max, FiniteCheck.ToSingleScanned(bytes, input.Info.DType, dst.Slice(done, n)));
                    }
                }
                else
                {
                    for (int r = 0; r < count; r++)
                    {
                        var bytes = input.File.GetBytes(input.Info, (row0 + r) * input.StoredCols * size, (int)cols * size);
                        max = Math.Max(max, FiniteCheck.ToSingleScanned(bytes, input.Info.DType, dst.Slice((int)(r * cols), (int)cols)));
                    }
                }
                if (input.Model.Adapter is { } adapter && adapter.Changes(input.TensorName))
                {
                    // model+adapter: W + s·B·A, row by row, in float32 before the method sees the rows
                    if (task.Rows != null || input.StoredCols != cols)
                        throw new MergeException($"{adapter.Path}: the adapter changes '{input.TensorName}', which this merge reads cropped or re-gathered (tokenizer merging); not supported");
                    adapter.Apply(input.TensorName, row0, count, dst);
                }
                _finite.Input(task, i, max);
                Interlocked.Add(ref _read, (long)chunk.Length * size);
            }
        }

        private void Write(MergeTask task, ReadOnlySpan<float> output, long elementOffset, byte[] scratch)
        {
            int size = task.OutDType.SizeOf();
            for (int done = 0; done < output.Length; done += PieceElements)
            {
                int n = Math.Min(PieceElements, output.Length - done);
                var bytes = scratch.AsSpan(0, n * size);
                _finite.Output(task, FiniteCheck.FromSingleScanned(output.Slice(done, n), task.OutDType, bytes));
                writer.Write(task.OutputName, bytes, (elementOffset + done) * size);
                Interlocked.Add(ref _written, bytes.Length);
            }
        }

        private void CopyRaw(MergeTask task)
        {
            var input = task.Inputs[0];
            long total = input.Info.ByteLength;
            const int piece = 64 << 20;
            for (long off = 0; off < total; off += piece)
            {
                int n = (int)Math.Min(piece, total - off);
                _finite.RawInput(task, input.File.GetBytes(input.Info, off, n));
                writer.Write(task.OutputName, input.File.GetBytes(input.Info, off, n), off);
                Interlocked.Add(ref _read, n);
                Interlocked.Add(ref _written, n);
                o.Cancellation.ThrowIfCancellationRequested();
            }
        }
    }
}
