namespace Mistral.Merge.IO.Gguf;

/// <summary>One file of a GGUF output: its metadata and its tensors, in order.</summary>
public sealed record GgufPart(string FinalPath, IReadOnlyList<(string Key, GgufValue Value)> Metadata, IReadOnlyList<GgufTensorInfo> Tensors);

/// <summary>
/// Writes GGUF files crash-safely, as every writer of this program does: each file is written under a temporary name
/// beside it (<c>.OUT.gguf.partial-PID-XXXXXXXX</c>), fsynced, and renamed into place only when all files are complete,
/// then the folder is fsynced; an existing file is replaced only with <c>force</c>; on any failure the temporary
/// files are removed and nothing is left at the final names. A lock beside the first file keeps two writers apart.
/// </summary>
public static class GgufOutput
{
    /// <summary>Refuses a destination that is a folder, or an existing file without <paramref name="force"/>.</summary>
    public static void CheckDestination(string path, bool force)
    {
        if (Directory.Exists(path)) throw new MergeException($"{path}: exists and is a folder, not a .gguf file");
        if (File.Exists(path) && !force) throw new MergeException($"{path}: file exists (use --force to replace it)");
    }

    /// <summary>
    /// Writes <paramref name="parts"/>; <paramref name="writeTensor"/> must write exactly the tensor's
    /// <see cref="GgufTensorInfo.ByteLength"/> bytes to the sink. Returns the bytes written.
    /// </summary>
    public static long Write(IReadOnlyList<GgufPart> parts, uint alignment, bool force, Action<GgufTensorInfo, GgufSink> writeTensor, CancellationToken token)
    {
        foreach (var p in parts) CheckDestination(p.FinalPath, force);
        var first = Path.GetFullPath(parts[0].FinalPath);
        var folder = Path.GetDirectoryName(first)!;
        try { Directory.CreateDirectory(folder); }
        catch (Exception e) when (IoErrors.IsIo(e)) { throw IoErrors.Writing(parts[0].FinalPath, e); }
        using var outputLock = OutputLock.Acquire(first);
        foreach (var p in parts) CheckDestination(p.FinalPath, force); // again, under the lock

        var headers = parts.Select(p => (Header: GgufHeader.Build(p.Metadata, p.Tensors, alignment, out var placed, out var dataLength), Placed: placed, DataLength: dataLength)).ToList();
        long total = headers.Sum(h => h.Header.Length + h.DataLength);
        long free = new DriveInfo(folder).AvailableFreeSpace;
        if (free < total) throw new MergeException($"{parts[0].FinalPath}: needs {ByteSize.Format(total)} but only {ByteSize.Format(free)} is free on that disk");

        var temps = parts.Select(p => Path.Combine(Path.GetDirectoryName(Path.GetFullPath(p.FinalPath))!,
            $".{Path.GetFileName(p.FinalPath)}.partial-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}")).ToList();
        try
        {
            for (int i = 0; i < parts.Count; i++)
            {
                var handle = File.OpenHandle(temps[i], FileMode.CreateNew, FileAccess.Write, FileShare.None);
                try
                {
                    var sink = new GgufSink(handle, temps[i]);
                    sink.Write(headers[i].Header);
                    long dataStart = sink.Position;
                    foreach (var t in headers[i].Placed)
                    {
                        token.ThrowIfCancellationRequested();
                        sink.Zeros(dataStart + t.Offset - sink.Position);
                        long before = sink.Position;
                        writeTensor(t, sink);
                        if (sink.Position - before != t.ByteLength)
                            throw new InvalidOperationException($"tensor '{t.Name}': wrote {sink.Position - before} bytes, expected {t.ByteLength}");
                    }
                    sink.Zeros(dataStart + headers[i].DataLength - sink.Position);
                    sink.Flush();
                }
                catch { handle.Dispose(); throw; }
                Fsync.FileAndClose(handle, temps[i]);
            }
            token.ThrowIfCancellationRequested();
            for (int i = 0; i < parts.Count; i++) File.Move(temps[i], parts[i].FinalPath, overwrite: force);
            Fsync.Directory(folder);
            return total;
        }
        catch (Exception e)
        {
            foreach (var t in temps)
                try { File.Delete(t); } catch (Exception x) when (IoErrors.IsIo(x)) { }
            if (IoErrors.IsIo(e)) throw IoErrors.Writing(parts[0].FinalPath, e);
            throw;
        }
    }
}
