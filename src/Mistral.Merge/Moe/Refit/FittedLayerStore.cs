using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using Mistral.Merge.IO;

namespace Mistral.Merge.Moe.Refit;

/// <summary>One fitted dense layer in a <see cref="FittedLayerStore"/>'s mapping: float32 w1, w3 [N, hidden] and w2 [hidden, N].</summary>
public readonly unsafe struct FittedLayer(int hidden, int intermediate, float* p)
{
    public int Hidden { get; } = hidden;
    public int Intermediate { get; } = intermediate;
    private long Size => (long)Hidden * Intermediate;
    public ReadOnlySpan<float> W1 => new(p, checked((int)Size));
    public ReadOnlySpan<float> W3 => new(p + Size, checked((int)Size));
    public ReadOnlySpan<float> W2 => new(p + 2 * Size, checked((int)Size));
}

/// <summary>
/// The refit's fitted dense layers, spilled as float32 (exactly as fitted) to a temporary file beside the output and
/// memory-mapped back for the next layers' calibration passes and the final write, so the process's anonymous memory
/// holds one layer's working set however many layers are done (file pages are the kernel's cache: reclaimable, not
/// RssAnon). The file's name is removed right after it is opened (on Linux; elsewhere it is deleted on close), so an
/// interrupted run leaves nothing behind, and it is never part of the output.
/// </summary>
public sealed unsafe class FittedLayerStore : IDisposable
{
    private readonly FileStream _file;
    private readonly string _path;
    private readonly List<(int Hidden, int Intermediate, long Offset)> _layers = [];
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private byte* _base;
    private long _mapped;

    /// <param name="folder">where the file goes: the output's parent folder (same disk as the output), or the temp folder if it does not exist yet</param>
    public FittedLayerStore(string folder)
    {
        if (!Directory.Exists(folder)) folder = Path.GetTempPath();
        _path = Path.Combine(folder, $".mistral-merge-refit-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}.tmp");
        try
        {
            _file = new FileStream(_path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Delete, 1 << 20, FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (IoErrors.IsIo(e)) { throw new MergeException($"{_path}: cannot create the refit's temporary file ({IoErrors.Describe(e)})"); }
        if (!OperatingSystem.IsWindows())
            try { File.Delete(_path); } catch (IOException) { } // unlinked: the open handle and mappings keep the data
    }

    public int Count => _layers.Count;

    /// <summary>Bytes spilled so far.</summary>
    public long Bytes => _file.Length;

    public void Add(ExpertWeights d)
    {
        try
        {
            long offset = _file.Length;
            _file.Seek(offset, SeekOrigin.Begin);
            _file.Write(MemoryMarshal.AsBytes(d.W1.AsSpan()));
            _file.Write(MemoryMarshal.AsBytes(d.W3.AsSpan()));
            _file.Write(MemoryMarshal.AsBytes(d.W2.AsSpan()));
            _file.Flush();
            _layers.Add((d.Hidden, d.Intermediate, offset));
        }
        catch (Exception e) when (IoErrors.IsIo(e)) { throw new MergeException($"refit: cannot spill fitted layer {_layers.Count} to {_path} ({IoErrors.Describe(e)}); nothing was written"); }
    }

    /// <summary>Layer <paramref name="l"/>; the spans stay valid until the next <see cref="Add"/> or <see cref="Dispose"/>.</summary>
    public FittedLayer Layer(int l)
    {
        var (h, n, offset) = _layers[l];
        if (_mapped < _file.Length) Remap();
        return new FittedLayer(h, n, (float*)(_base + offset));
    }

    private void Remap()
    {
        Unmap();
        _map = MemoryMappedFile.CreateFromFile(_file, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref _base);
        _base += _view.PointerOffset;
        _mapped = _file.Length;
    }

    private void Unmap()
    {
        if (_view != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _view = null;
        }
        _map?.Dispose();
        _map = null;
        _base = null;
        _mapped = 0;
    }

    public void Dispose()
    {
        Unmap();
        _file.Dispose();
    }
}
