using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;

namespace Mistral.Merge.IO.Gguf;

/// <summary>
/// A GGUF file parsed by <see cref="GgufReader"/> and memory-mapped read-only, so tensors are used in place
/// (evaluation of a quantized file keeps only its quantized bytes resident). Every tensor was checked by the reader
/// to lie inside the file.
/// </summary>
public sealed unsafe class GgufMappedFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly FileStamp _stamp;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;

    public string Path { get; }
    public GgufReader Header { get; }

    private GgufMappedFile(string path, GgufReader header, SafeFileHandle handle, FileStamp stamp, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePtr)
    {
        Path = path; Header = header; _handle = handle; _stamp = stamp; _map = map; _view = view; _base = basePtr;
    }

    /// <param name="path">The file.</param>
    /// <param name="shardOk">Whether a gguf-split shard may be opened (a scan reads any file; the forward pass needs
    /// the whole model in one).</param>
    public static GgufMappedFile Open(string path, bool shardOk = false)
    {
        var (handle, stamp) = InputFile.OpenRead(path);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        byte* basePtr = null;
        try
        {
            var header = GgufReader.Open(path);
            if (!shardOk && header.Integer(GgufFormat.KeySplitCount) > 1)
                throw new MergeException($"{path}: a gguf-split shard; join the shards into one file (llama-gguf-split --merge) to evaluate it");
            long end = header.Tensors.Count == 0 ? header.DataOffset : header.Tensors.Max(t => header.DataOffset + t.Offset + t.ByteLength);
            if (end > stamp.Length) throw new MergeException($"{path}: truncated GGUF file");
            map = MemoryMappedFile.CreateFromFile(handle, null, stamp.Length, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
            view = map.CreateViewAccessor(0, stamp.Length, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            basePtr += view.PointerOffset;
            return new GgufMappedFile(path, header, handle, stamp, map, view, basePtr);
        }
        catch (Exception e)
        {
            if (view != null && basePtr != null) view.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map?.Dispose();
            handle.Dispose();
            if (e is IOException or UnauthorizedAccessException) throw new MergeException($"{path}: cannot map file ({e.Message})");
            throw;
        }
    }

    /// <summary>The first byte of a tensor's data.</summary>
    public byte* Pointer(GgufTensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        return _base + Header.DataOffset + t.Offset;
    }

    /// <summary>Fails with one line when the file changed since it was opened (as <see cref="SafetensorsFile.CheckUnchanged"/>).</summary>
    public void CheckUnchanged()
    {
        FileStamp now;
        try { now = FileStamp.OfHandle(_handle, Path); }
        catch (IOException e) { throw new MergeException($"{Path}: cannot re-check the file ({e.Message})"); }
        if (now.Length != _stamp.Length || now.MTimeSeconds != _stamp.MTimeSeconds || now.MTimeNanoseconds != _stamp.MTimeNanoseconds)
            throw new MergeException($"{Path}: the file was modified while it was being read; nothing was written");
    }

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
        _handle.Dispose();
    }
}
