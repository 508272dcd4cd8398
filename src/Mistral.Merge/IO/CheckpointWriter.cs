using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Mistral.Merge.IO;

/// <summary>One output tensor, known before any byte is written.</summary>
public sealed record PlannedTensor(string Name, DType DType, long[] Shape)
{
    public long ElementCount { get { long n = 1; foreach (var d in Shape) n = checked(n * d); return n; } }
    public long ByteLength => checked(ElementCount * DType.SizeOf());
}

public sealed record WriterOptions
{
    public const long DefaultShardSize = 5_000_000_000;
    public long ShardSize { get; init; } = DefaultShardSize;
    public bool Force { get; init; }
}

/// <summary>
/// Streams a checkpoint to disk from a plan: shard layout and headers are fixed up front, so
/// tensors (or chunks of them) can be written in any order, from any thread, straight to their
/// final offsets; memory stays bounded by what the caller holds. Everything goes to a hidden
/// temporary folder beside the destination that is renamed into place by <see cref="Commit"/>;
/// disposing without committing deletes it, so a failed run never leaves a folder that looks complete.
/// For its whole life the writer holds the destination's lock (<see cref="OutputLock"/>); on start it removes what
/// killed writers of the same destination left (<see cref="StaleOutputs"/>), and its temporary folder carries a
/// <see cref="PartialMarker"/> until the commit. Every I/O failure becomes one <see cref="MergeException"/> line
/// naming the output file (or, for a copied input, the source). The writer knows nothing about merging.
/// </summary>
public sealed class CheckpointWriter : IDisposable
{
    /// <summary>The names a checkpoint folder's tensors are written under, and read back from by Models.ModelFolder.</summary>
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private sealed class Shard
    {
        public required string FileName;
        public required string TempPath; // where it is written, in the temporary folder
        public required SafeFileHandle Handle;
        public long DataStart;
        public long DataLength;
    }

    private sealed class Slot
    {
        public required PlannedTensor Tensor;
        public required Shard Shard;
        public long Offset; // absolute file offset of the tensor's first byte
        public long Written;
    }

    private readonly Dictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly List<Shard> _shards = new();
    private readonly List<PlannedTensor> _plan;
    private readonly bool _force;
    private readonly OutputLock? _lock;
    private bool _committed, _disposed;

    public string Destination { get; }
    public string TempDir { get; }
    public long TotalBytes { get; }
    public int ShardCount => _shards.Count;

    public CheckpointWriter(string destination, IReadOnlyList<PlannedTensor> plan, WriterOptions? options = null)
    {
        options ??= new WriterOptions();
        if (options.ShardSize < 1) throw new MergeException("--out-shard-size must be at least 1 byte");
        // "out/" must name the folder "out", not a child of it.
        Destination = Path.TrimEndingDirectorySeparator(Path.GetFullPath(destination));
        if (Path.GetFileName(Destination).Length == 0) throw new MergeException($"{destination}: cannot write a model to a file-system root");
        _force = options.Force;
        CheckDestination(Destination, options.Force);
        _plan = plan.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in _plan)
        {
            if (!names.Add(t.Name)) throw new MergeException($"{destination}: the plan writes tensor '{t.Name}' twice");
            if (t.Shape.Any(d => d < 0)) throw new MergeException($"{destination}: tensor '{t.Name}' has a negative dimension");
        }

        // Shards, headers and sizes are settled (and checked) before anything is created on disk.
        var shards = PlanShards(destination, options.ShardSize, out var totalBytes);
        TotalBytes = totalBytes;

        var parent = Path.GetDirectoryName(Destination)!;
        TempDir = Path.Combine(parent, $".{Path.GetFileName(Destination)}.partial-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        try { Directory.CreateDirectory(parent); }
        catch (Exception e) when (IoErrors.IsIo(e)) { throw new MergeException($"{destination}: cannot create the output folder ({IoErrors.Describe(e)})"); }
        _lock = OutputLock.Acquire(Destination);
        try
        {
            StaleOutputs.Clean(Destination);
            CheckDestination(Destination, options.Force); // again: a restored old model counts
            try
            {
                Directory.CreateDirectory(TempDir);
                PartialMarker.Write(TempDir, ProcessIdentity.Current);
            }
            catch (Exception e) when (IoErrors.IsIo(e)) { throw IoErrors.Writing(Destination, e); }
            // Files are sparse until written (preallocating measurably slowed writes); refuse up front what cannot fit.
            long free = new DriveInfo(TempDir).AvailableFreeSpace;
            long needed = TotalBytes + shards.Sum(g => (long)g.Header.Length);
            if (free < needed)
                throw new MergeException($"{destination}: needs {ByteSize.Format(needed)} but only {ByteSize.Format(free)} is free on that disk");
            CreateShards(shards);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Refuses an existing non-empty destination (or a file) unless forced.</summary>
    public static void CheckDestination(string destination, bool force)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(destination));
        if (File.Exists(full)) throw new MergeException($"{destination}: exists and is a file, not a folder");
        if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any() && !force)
            throw new MergeException($"{destination}: folder exists and is not empty (use --force to replace it)");
    }

    /// <summary>Most shards one checkpoint may have: every shard stays open while the model is written.</summary>
    public const int MaxShards = 10_000;

    private sealed record ShardPlan(string FileName, List<PlannedTensor> Tensors, byte[] Header, long DataLength);

    /// <summary>
    /// Greedy sharding in plan order (a new shard starts when the next tensor would pass the size), with each shard's
    /// header. Refuses what its own reader would reject or what cannot be opened: a header over
    /// <see cref="SafetensorsFile.MaxHeaderBytes"/>, more than <see cref="MaxShards"/> shards, a byte count past 2^63.
    /// </summary>
    private List<ShardPlan> PlanShards(string destination, long shardSize, out long total)
    {
        var groups = new List<List<PlannedTensor>>();
        long current = 0;
        total = 0;
        foreach (var t in _plan)
        {
            long n;
            try { n = t.ByteLength; total = checked(total + n); }
            catch (OverflowException) { throw new MergeException($"{destination}: the model's size overflows a 64-bit byte count (tensor '{t.Name}')"); }
            if (groups.Count == 0 || (current > 0 && current + n > shardSize))
            {
                if (groups.Count == MaxShards)
                    throw new MergeException($"{destination}: --out-shard-size {ByteSize.Format(shardSize)} makes more than {MaxShards:N0} shards; choose a larger size");
                groups.Add(new()); current = 0;
            }
            groups[^1].Add(t);
            current += n;
        }
        if (groups.Count == 0) groups.Add(new());
        var shards = new List<ShardPlan>(groups.Count);
        for (int g = 0; g < groups.Count; g++)
        {
            var fileName = groups.Count == 1 ? SingleFileName : $"model-{g + 1:D5}-of-{groups.Count:D5}.safetensors";
            var header = BuildHeader(groups[g]);
            if (header.Length - 8 > SafetensorsFile.MaxHeaderBytes)
                throw new MergeException($"{destination}: the header of {fileName} would be {ByteSize.Format(header.Length - 8)} ({groups[g].Count:N0} tensors), over the {ByteSize.Format(SafetensorsFile.MaxHeaderBytes)} safetensors readers accept; choose a smaller --out-shard-size");
            shards.Add(new ShardPlan(fileName, groups[g], header, groups[g].Sum(t => t.ByteLength)));
        }
        return shards;
    }

    /// <summary>Creates the planned shard files in the temporary folder (sparse: header written, length set).</summary>
    private void CreateShards(List<ShardPlan> plans)
    {
        foreach (var p in plans)
        {
            var path = Path.Combine(TempDir, p.FileName);
            try
            {
                var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, FileOptions.None);
                _shards.Add(new Shard { FileName = p.FileName, TempPath = path, Handle = handle, DataStart = p.Header.Length, DataLength = p.DataLength });
                FaultInjection.Check("write", path);
                RandomAccess.Write(handle, p.Header, 0);
                RandomAccess.SetLength(handle, p.Header.Length + p.DataLength);
            }
            catch (Exception e) when (IoErrors.IsIo(e)) { throw IoErrors.Writing(OutputPath(p.FileName), e); }
            var shard = _shards[^1];
            long off = p.Header.Length;
            foreach (var t in p.Tensors)
            {
                _slots[t.Name] = new Slot { Tensor = t, Shard = shard, Offset = off };
                off += t.ByteLength;
            }
        }
    }

    /// <summary>8-byte header length + JSON (<c>__metadata__</c> first), space-padded so data starts 8-byte aligned.</summary>
    private static byte[] BuildHeader(List<PlannedTensor> tensors)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = JsonText.Encoder }))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            w.WriteString("format", "pt");
            w.WriteEndObject();
            long off = 0;
            foreach (var t in tensors)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType.ToSafetensorsName());
                w.WriteStartArray("shape");
                foreach (var d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(off);
                w.WriteNumberValue(off + t.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
                off += t.ByteLength;
            }
            w.WriteEndObject();
        }
        var json = ms.ToArray();
        int padded = (json.Length + 7) / 8 * 8;
        var header = new byte[8 + padded];
        BitConverter.TryWriteBytes(header.AsSpan(0, 8), (ulong)padded);
        json.CopyTo(header, 8);
        header.AsSpan(8 + json.Length).Fill((byte)' ');
        return header;
    }

    public IReadOnlyList<PlannedTensor> Plan => _plan;

    /// <summary>Writes bytes of tensor <paramref name="name"/> at <paramref name="offsetInTensor"/>. Thread-safe.</summary>
    public void Write(string name, ReadOnlySpan<byte> bytes, long offsetInTensor = 0)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_slots.TryGetValue(name, out var slot)) throw new InvalidOperationException($"tensor '{name}' is not in the plan");
        if (bytes.Length == 0) return;
        if (offsetInTensor < 0 || offsetInTensor + bytes.Length > slot.Tensor.ByteLength)
            throw new InvalidOperationException($"write of {bytes.Length} bytes at {offsetInTensor} overruns tensor '{name}' ({slot.Tensor.ByteLength} bytes)");
        try
        {
            FaultInjection.Check("write", slot.Shard.TempPath);
            RandomAccess.Write(slot.Shard.Handle, bytes, slot.Offset + offsetInTensor);
        }
        catch (Exception e) when (IoErrors.IsIo(e)) { throw IoErrors.Writing(OutputPath(slot.Shard.FileName), e); }
        Interlocked.Add(ref slot.Written, bytes.Length);
        StartWriteback(slot.Shard, slot.Offset + offsetInTensor, bytes.Length);
    }

    /// <summary>
    /// Asks the kernel to start writing these pages to disk now (sync_file_range, asynchronous) so that the disk
    /// works while we compute and copy, and the fsync at <see cref="Commit"/> finds little left to do. Without it
    /// every byte waits for that final fsync: writing took copy time + disk time instead of about the larger one.
    /// </summary>
    private void StartWriteback(Shard shard, long offset, long length)
    {
        if (!OperatingSystem.IsLinux() || _noWritebackHint) return;
        if (SyncFileRange((int)shard.Handle.DangerousGetHandle(), offset, length, SyncFileRangeWrite) != 0) _noWritebackHint = true;
    }

    private volatile bool _noWritebackHint;
    private const uint SyncFileRangeWrite = 2;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static extern int SyncFileRange(int fd, long offset, long nbytes, uint flags);

    /// <summary>
    /// Copies bytes [<paramref name="offsetInTensor"/>, +<paramref name="length"/>) of tensor <paramref name="source"/> of
    /// <paramref name="file"/> unchanged to the same place of output tensor <paramref name="name"/>. On Linux the
    /// kernel copies them (copy_file_range: no trip through user memory); elsewhere, or where the file system
    /// refuses, the bytes go through <see cref="Write"/>. Thread-safe.
    /// </summary>
    public void CopyFrom(string name, SafetensorsFile file, TensorInfo source, long offsetInTensor, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var slot = SlotOf(name);
        if (offsetInTensor < 0 || length < 0 || offsetInTensor + length > slot.Tensor.ByteLength || offsetInTensor + length > source.ByteLength)
            throw new InvalidOperationException($"copy of {length} bytes at {offsetInTensor} overruns tensor '{name}'");
        long done = KernelCopy(file, source.Begin + offsetInTensor, slot.Shard, slot.Offset + offsetInTensor, length);
        Interlocked.Add(ref slot.Written, done);
        while (done < length)
        {
            int n = (int)Math.Min(length - done, 1 << 24);
            Write(name, file.GetBytes(source, offsetInTensor + done, n), offsetInTensor + done);
            done += n;
        }
    }

    /// <summary>
    /// Copies whole tensors <paramref name="run"/> of <paramref name="file"/> unchanged, as one kernel copy where
    /// they lie back to back both in the input and in the output (as <c>cp</c> does: one long sequential stream),
    /// tensor by tensor otherwise. Not thread-safe with other copies of the same tensors.
    /// </summary>
    public void CopyTensorsFrom(SafetensorsFile file, IReadOnlyList<TensorInfo> run)
    {
        int i = 0;
        while (i < run.Count)
        {
            // the longest stretch from i that is contiguous on both sides
            int j = i + 1;
            var first = SlotOf(run[i].Name);
            while (j < run.Count && run[j].Begin == run[j - 1].End && SlotOf(run[j].Name) is var sj
                   && sj.Shard == first.Shard && sj.Offset == SlotOf(run[j - 1].Name).Offset + run[j - 1].ByteLength)
                j++;
            long done = j - i > 1 ? KernelCopy(file, run[i].Begin, first.Shard, first.Offset, run[j - 1].End - run[i].Begin) : 0;
            // account what the long copy covered; copy the rest (or everything, when it was not used) per tensor
            for (int k = i; k < j; k++)
            {
                long start = run[k].Begin - run[i].Begin, len = run[k].ByteLength;
                long covered = Math.Clamp(done - start, 0, len);
                Interlocked.Add(ref SlotOf(run[k].Name).Written, covered);
                if (covered < len) CopyFrom(run[k].Name, file, run[k], covered, len - covered);
            }
            i = j;
        }
    }

    /// <summary>
    /// Kernel copy (copy_file_range, Linux) of <paramref name="length"/> bytes from data offset <paramref name="dataOffset"/>
    /// of <paramref name="file"/> to <paramref name="outOffset"/> of a shard, in pieces each followed by a write-back
    /// hint. Returns the bytes copied: fewer (down to 0) where the kernel cannot, and the caller writes the rest.
    /// </summary>
    private long KernelCopy(SafetensorsFile file, long dataOffset, Shard shard, long outOffset, long length)
    {
        if (!OperatingSystem.IsLinux() || _noKernelCopy) return 0;
        // A failing copy falls back to Write, which reports the error (injected ones included) naming the output file.
        if (FaultInjection.Errno("write", shard.TempPath) != 0) return 0;
        long inOff = file.DataStart + dataOffset, outOff = outOffset, done = 0;
        int inFd = (int)file.ReadHandle.DangerousGetHandle(), outFd = (int)shard.Handle.DangerousGetHandle();
        while (done < length)
        {
            long n = (long)CopyFileRange(inFd, ref inOff, outFd, ref outOff, (nuint)Math.Min(length - done, KernelCopyPiece), 0);
            if (n <= 0) { if (n < 0) _noKernelCopy = true; break; } // EXDEV, ENOSYS, EINVAL...: fall back
            StartWriteback(shard, outOff - n, n);
            done += n;
        }
        return done;
    }

    private Slot SlotOf(string name) =>
        _slots.TryGetValue(name, out var slot) ? slot : throw new InvalidOperationException($"tensor '{name}' is not in the plan");

    // Kernel copies go in pieces, each followed by a write-back hint, so that the disk writes one piece while the
    // next is copied (a hint for a huge range blocks until most of it is queued, and the two would alternate).
    private const long KernelCopyPiece = 64L << 20;

    private volatile bool _noKernelCopy;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "copy_file_range", SetLastError = true)]
    private static extern nint CopyFileRange(int fdIn, ref long offIn, int fdOut, ref long offOut, nuint len, uint flags);

    /// <summary>Adds a small file (config, model card, tokenizer) to the output folder.</summary>
    public void AddFile(string relativeName, string text) => AddFile(relativeName, Encoding.UTF8.GetBytes(text));

    public void AddFile(string relativeName, byte[] content)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        WriteSmallFile(relativeName, content);
    }

    /// <summary>Copies a file into the output folder: a failed read names the source, a failed write the output file.</summary>
    public void CopyFile(string sourcePath, string relativeName)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        byte[] content;
        try { content = File.ReadAllBytes(sourcePath); }
        catch (Exception e) when (IoErrors.IsIo(e)) { throw IoErrors.Reading(sourcePath, e); }
        WriteSmallFile(relativeName, content);
    }

    /// <summary>Writes, flushes to disk and closes one small output file.</summary>
    private void WriteSmallFile(string relativeName, byte[] content)
    {
        var path = SafeChild(relativeName);
        try
        {
            // Created fresh (not copied), so read-only sources (shared fixtures) give ordinary writable outputs.
            // FileShare.Read, not None: on Unix .NET takes flock(LOCK_EX) for None, and a child process forked at
            // that moment (any Process.Start in the same process) keeps the lock until its exec, after our close —
            // a read of the file right after then failed as "being used by another process" (a flaky test run).
            var handle = File.OpenHandle(path, FileMode.Create, FileAccess.Write, FileShare.Read, FileOptions.None);
            try
            {
                FaultInjection.Check("write", path);
                RandomAccess.Write(handle, content, 0);
            }
            catch { handle.Dispose(); throw; }
            Fsync.FileAndClose(handle, path);
        }
        catch (Exception e) when (IoErrors.IsIo(e)) { throw IoErrors.Writing(OutputPath(relativeName), e); }
    }

    private string SafeChild(string relativeName)
    {
        if (relativeName.Contains('/') || relativeName.Contains('\\') || relativeName is "." or ".." or "" or PartialMarker.FileName)
            throw new InvalidOperationException($"bad output file name '{relativeName}'");
        return TempPath(relativeName);
    }

    private string TempPath(string fileName) => Path.Combine(TempDir, fileName);

    /// <summary>Where a file of the output will be once committed: the name errors give (the temporary folder is hidden and gone).</summary>
    private string OutputPath(string fileName) => Path.Combine(Destination, fileName);

    /// <summary>
    /// Checks every tensor was fully written, flushes and closes the shards, writes the index, and moves the folder
    /// into place (replacing a non-empty destination only when forced, here or in the options). Every file and both
    /// folders are flushed to disk first; any failure leaves the destination as it was.
    /// </summary>
    public void Commit(bool force = false)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        force |= _force;
        foreach (var s in _slots.Values)
            if (Interlocked.Read(ref s.Written) != s.Tensor.ByteLength)
                throw new MergeException($"{Destination}: tensor '{s.Tensor.Name}' is incomplete ({s.Written} of {s.Tensor.ByteLength} bytes written); nothing was written");
        foreach (var sh in _shards)
        {
            try { Fsync.FileAndClose(sh.Handle, sh.TempPath); }
            catch (Exception e) when (IoErrors.IsIo(e)) { throw IoErrors.Writing(OutputPath(sh.FileName), e); }
        }
        if (_shards.Count > 1) WriteSmallFile(IndexFileName, Encoding.UTF8.GetBytes(BuildIndex()));
        string? replaced;
        try
        {
            // The marker goes, durably, before the folder becomes the destination: a committed model never carries it.
            File.Delete(TempPath(PartialMarker.FileName));
            Fsync.Directory(TempDir);
            replaced = PutInPlace(force);
            try { Fsync.Directory(Path.GetDirectoryName(Destination)!); }
            catch
            {
                TakeBack(replaced);
                throw;
            }
        }
        catch (Exception e) when (IoErrors.IsIo(e)) { throw IoErrors.Writing(Destination, e); }
        _committed = _disposed = true;
        if (replaced != null) RemoveQuietly(replaced);
        _lock?.Dispose();
    }

    /// <summary>Moves the finished temporary folder to the destination; returns where the replaced model now lies, or null.</summary>
    private string? PutInPlace(bool force)
    {
        if (Directory.Exists(Destination))
        {
            if (Directory.EnumerateFileSystemEntries(Destination).Any())
            {
                if (!force) throw new MergeException($"{Destination}: folder appeared and is not empty (use --force to replace it)");
                if (DirectoryExchange.TrySwap(TempDir, Destination)) return TempDir;
                // No atomic exchange here: two renames, between which the destination is absent; if the process dies
                // there, the next writer of this destination puts the parked old model back (StaleOutputs).
                var old = TempDir + ".old";
                Directory.Move(Destination, old);
                try { Directory.Move(TempDir, Destination); }
                catch
                {
                    Directory.Move(old, Destination);
                    throw;
                }
                return old;
            }
            Directory.Delete(Destination);
        }
        Directory.Move(TempDir, Destination);
        return null;
    }

    /// <summary>Undoes <see cref="PutInPlace"/>: the new folder back to the temporary path, the replaced model back in place.</summary>
    private void TakeBack(string? replaced)
    {
        try
        {
            if (replaced == TempDir) { DirectoryExchange.TrySwap(TempDir, Destination); return; }
            Directory.Move(Destination, TempDir);
            if (replaced != null) Directory.Move(replaced, Destination);
        }
        catch (Exception e) when (IoErrors.IsIo(e)) { } // the first failure is the one to report
    }

    private static void RemoveQuietly(string folder)
    {
        try { if (Directory.Exists(folder)) Directory.Delete(folder, true); }
        catch (Exception e) when (IoErrors.IsIo(e)) { } // left for the next writer of this destination (StaleOutputs)
    }

    private string BuildIndex()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = JsonText.Encoder }))
        {
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", TotalBytes);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (var name in _slots.Keys.OrderBy(k => k, StringComparer.Ordinal))
                w.WriteString(name, _slots[name].Shard.FileName);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    public void Dispose()
    {
        if (_committed) return;
        _disposed = true;
        foreach (var sh in _shards) sh.Handle.Dispose();
        RemoveQuietly(TempDir);
        _lock?.Dispose();
    }
}
