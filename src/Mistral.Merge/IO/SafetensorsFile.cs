using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;

namespace Mistral.Merge.IO;

/// <summary>
/// A memory-mapped, fully validated safetensors file. Tensor bytes are exposed as zero-copy spans
/// over the mapping; pages are the OS's reclaimable file cache, not our private memory.
/// Every defect is reported as a <see cref="MergeException"/> naming the file (and tensor).
/// A PyTorch .bin checkpoint is opened as one too (<see cref="Pickle.PytorchCheckpoint"/>, <see cref="Format"/>):
/// its tensors are byte ranges of the file, which may overlap (tied weights share a storage).
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;
    private readonly Dictionary<string, TensorInfo> _byName;
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _handle;
    private readonly FileStamp _stamp;

    public string Path { get; }
    public long FileLength { get; }
    /// <summary>Offset of the data section (8 + header length).</summary>
    public long DataStart { get; }
    /// <summary>Tensors in data order.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>"safetensors", or the PyTorch format the file was read from (<see cref="Pickle.PytorchCheckpoint"/>).</summary>
    public string Format { get; }

    /// <summary>Where a file's tensors are: what a format's parser finds in the mapped bytes.</summary>
    internal sealed record Layout(long DataStart, List<TensorInfo> Tensors, string Format, Dictionary<string, string>? Metadata = null);

    internal delegate Layout LayoutParser(string path, long length, byte* basePtr);

    private SafetensorsFile(string path, Microsoft.Win32.SafeHandles.SafeFileHandle handle, FileStamp stamp, MemoryMappedFile? map,
        MemoryMappedViewAccessor? view, byte* basePtr, Layout layout)
    {
        Path = path; _handle = handle; _stamp = stamp; FileLength = stamp.Length; _map = map; _view = view; _base = basePtr; DataStart = layout.DataStart;
        Tensors = layout.Tensors; Metadata = layout.Metadata ?? []; Format = layout.Format;
        var tensors = layout.Tensors;
        _byName = new Dictionary<string, TensorInfo>(tensors.Count, StringComparer.Ordinal);
        foreach (var t in tensors) _byName[t.Name] = t;
    }

    public static SafetensorsFile Open(string path) => OpenMapped(path, "a safetensors file", (p, length, basePtr) =>
    {
        if (length < 8) throw new MergeException($"{p}: not a safetensors file (only {length} bytes; the 8-byte header length is missing)");
        var (dataStart, tensors, metadata) = ParseHeader(p, length, basePtr);
        return new Layout(dataStart, tensors, "safetensors", metadata);
    });

    /// <summary>Maps <paramref name="path"/> and hands its bytes to <paramref name="parse"/> (<paramref name="what"/> names the format for an empty file).</summary>
    internal static SafetensorsFile OpenMapped(string path, string what, LayoutParser parse)
    {
        // The handle is opened once and everything (length, mapping, later kernel copies) comes from it: a symbolic
        // link (the Hugging Face cache's snapshots/ → blobs/) is measured and mapped as its target, never as the link.
        var (handle, stamp) = InputFile.OpenRead(path);
        long length = stamp.Length;
        if (length == 0)
        {
            handle.Dispose();
            throw new MergeException(what == "a safetensors file"
                ? $"{path}: not a safetensors file (only 0 bytes; the 8-byte header length is missing)"
                : $"{path}: an empty file, not {what}");
        }

        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        byte* basePtr = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(handle, null, length, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            basePtr += view.PointerOffset;
            return new SafetensorsFile(path, handle, stamp, map, view, basePtr, parse(path, length, basePtr));
        }
        catch (Exception e) when (e is not MergeException)
        {
            Release(view, map, basePtr);
            handle.Dispose();
            if (e is IOException or UnauthorizedAccessException)
                throw new MergeException($"{path}: cannot map file ({e.Message})");
            throw;
        }
        catch
        {
            Release(view, map, basePtr);
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Fails with one line when the file was changed since it was opened (another size or modification time):
    /// a model rewritten in place during a run would otherwise give a mix of old and new bytes, or SIGBUS.
    /// </summary>
    public void CheckUnchanged()
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        FileStamp now;
        try { now = FileStamp.OfHandle(_handle, Path); }
        catch (IOException e) { throw new MergeException($"{Path}: cannot re-check the file ({e.Message})"); }
        if (now.Length != _stamp.Length || now.MTimeSeconds != _stamp.MTimeSeconds || now.MTimeNanoseconds != _stamp.MTimeNanoseconds)
            throw new MergeException($"{Path}: the file was modified while it was being read ({(now.Length != _stamp.Length ? $"size {_stamp.Length} → {now.Length} bytes" : "modification time changed")}); nothing was written");
    }

    private static void Release(MemoryMappedViewAccessor? view, MemoryMappedFile? map, byte* basePtr)
    {
        if (view != null && basePtr != null) view.SafeMemoryMappedViewHandle.ReleasePointer();
        view?.Dispose();
        map?.Dispose();
    }

    /// <summary>Parses and validates the header against the format's rules (those of the reference
    /// implementation: tensors tile the data section exactly, without gaps or overlaps).</summary>
    internal static (long dataStart, List<TensorInfo> tensors, Dictionary<string, string> metadata) ParseHeader(string path, long fileLength, byte* basePtr)
    {
        ulong n = *(ulong*)basePtr; // little-endian on every platform .NET runs us on
        if (n > (ulong)MaxHeaderBytes)
            throw new MergeException($"{path}: header length {n} exceeds the {MaxHeaderBytes}-byte limit (corrupt or not a safetensors file)");
        if (n > (ulong)(fileLength - 8))
            throw new MergeException($"{path}: header length {n} is beyond the end of the file ({fileLength} bytes)");
        if (n < 2)
            throw new MergeException($"{path}: header of {n} bytes is too short to be a JSON object");
        var headerBytes = new ReadOnlySpan<byte>(basePtr + 8, (int)n);
        if (headerBytes[0] != (byte)'{')
            throw new MergeException($"{path}: header does not start with '{{' (not a safetensors file)");
        try { new UTF8Encoding(false, true).GetCharCount(headerBytes); }
        catch (DecoderFallbackException) { throw new MergeException($"{path}: header is not valid UTF-8"); }

        long dataStart = 8 + (long)n;
        long dataLength = fileLength - dataStart;
        var tensors = new List<TensorInfo>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes.ToArray(), new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e) { throw new MergeException($"{path}: header is not valid JSON ({FirstLine(e.Message)})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new MergeException($"{path}: header is not a JSON object");
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name))
                    throw new MergeException($"{path}: duplicate entry '{prop.Name}' in header");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new MergeException($"{path}: __metadata__ must be an object of strings");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new MergeException($"{path}: __metadata__ value '{m.Name}' is not a string");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                            throw new MergeException($"{path}: duplicate __metadata__ key '{m.Name}'");
                    }
                    continue;
                }
                tensors.Add(ParseTensor(path, prop.Name, prop.Value, dataLength));
            }
        }

        // The tensors must tile [0, dataLength) exactly, like the reference reader demands.
        tensors.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long expected = 0;
        TensorInfo? prev = null;
        foreach (var t in tensors)
        {
            if (t.Begin < expected)
                throw new MergeException($"{path}: tensor '{t.Name}' bytes [{t.Begin}, {t.End}) overlap tensor '{prev!.Name}' [{prev.Begin}, {prev.End})");
            if (t.Begin > expected)
                throw new MergeException($"{path}: tensor '{t.Name}' starts at byte {t.Begin} but the previous tensor ends at {expected} (gap in data section)");
            expected = t.End;
            prev = t;
        }
        if (expected != dataLength)
            throw new MergeException(expected < dataLength
                ? $"{path}: {dataLength - expected} trailing bytes after the last tensor (data section is {dataLength} bytes, tensors cover {expected})"
                : $"{path}: tensors need {expected} bytes but the data section has only {dataLength} (truncated file?)");
        return (dataStart, tensors, metadata);
    }

    private static TensorInfo ParseTensor(string path, string name, JsonElement e, long dataLength)
    {
        string where = $"{path}: tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object) throw new MergeException($"{where}: entry is not an object");
        JsonElement? dtypeEl = null, shapeEl = null, offsetsEl = null;
        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype": if (dtypeEl != null) throw Dup("dtype"); dtypeEl = p.Value; break;
                case "shape": if (shapeEl != null) throw Dup("shape"); shapeEl = p.Value; break;
                case "data_offsets": if (offsetsEl != null) throw Dup("data_offsets"); offsetsEl = p.Value; break;
            }
        }
        MergeException Dup(string k) => new($"{where}: duplicate key '{k}'");
        if (dtypeEl is not { ValueKind: JsonValueKind.String } d) throw new MergeException($"{where}: missing or non-string 'dtype'");
        var dtypeName = d.GetString()!;
        if (!DTypes.TryParseSafetensors(dtypeName, out var dtype)) throw new MergeException($"{where}: unknown dtype '{Trunc(dtypeName)}'");
        if (shapeEl is not { ValueKind: JsonValueKind.Array } s) throw new MergeException($"{where}: missing or non-array 'shape'");
        var shape = new long[s.GetArrayLength()];
        long elements = 1;
        int k = 0;
        foreach (var dim in s.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var v))
                throw new MergeException($"{where}: shape entry {Trunc(dim.GetRawText())} is not an integer");
            if (v < 0) throw new MergeException($"{where}: negative dimension {v} in shape");
            shape[k++] = v;
            try { elements = checked(elements * v); }
            catch (OverflowException) { throw new MergeException($"{where}: shape {Trunc(s.GetRawText())} overflows"); }
        }
        long nbytes;
        try { nbytes = checked(elements * dtype.SizeOf()); }
        catch (OverflowException) { throw new MergeException($"{where}: shape {Trunc(s.GetRawText())} overflows"); }
        if (offsetsEl is not { ValueKind: JsonValueKind.Array } o || o.GetArrayLength() != 2)
            throw new MergeException($"{where}: 'data_offsets' must be an array of two integers");
        if (!TryGetInt64Safe(o[0], out var begin) || !TryGetInt64Safe(o[1], out var end))
            throw new MergeException($"{where}: 'data_offsets' must be non-negative integers");
        if (begin < 0 || end < 0) throw new MergeException($"{where}: negative data offset");
        if (end < begin) throw new MergeException($"{where}: data_offsets [{begin}, {end}) end before they begin");
        if (end > dataLength) throw new MergeException($"{where}: data_offsets [{begin}, {end}) are beyond the data section ({dataLength} bytes)");
        if (end - begin != nbytes)
            throw new MergeException($"{where}: {end - begin} bytes stored but shape {ShapeText(shape)} of {dtype} needs {nbytes}");
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static bool TryGetInt64Safe(JsonElement e, out long v)
    {
        v = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out v);
    }

    private static string ShapeText(long[] shape) => "[" + string.Join(", ", shape) + "]";
    private static string Trunc(string s) => s.Length <= 40 ? s : s[..40] + "…";
    private static string FirstLine(string s) { var i = s.IndexOf('\n'); return i < 0 ? s : s[..i]; }

    public bool Contains(string name) => _byName.ContainsKey(name);
    public bool TryGet(string name, out TensorInfo info) => _byName.TryGetValue(name, out info!);
    public TensorInfo Get(string name) => _byName.TryGetValue(name, out var t) ? t
        : throw new MergeException($"{Path}: no tensor named '{name}'");

    /// <summary>Pointer to the first byte of a tensor (valid while this file is open).</summary>
    public byte* Pointer(TensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        return _base + DataStart + t.Begin;
    }

    /// <summary>Zero-copy view of a whole tensor's bytes (tensors over 2 GiB: use <see cref="GetBytes(TensorInfo,long,int)"/>).</summary>
    public ReadOnlySpan<byte> GetBytes(TensorInfo t)
    {
        if (t.ByteLength > int.MaxValue)
            throw new MergeException($"{Path}: tensor '{t.Name}' is {t.ByteLength} bytes; read it in chunks");
        return new ReadOnlySpan<byte>(Pointer(t), (int)t.ByteLength);
    }

    /// <summary>Zero-copy view of part of a tensor's bytes.</summary>
    public ReadOnlySpan<byte> GetBytes(TensorInfo t, long offset, int length)
    {
        if (offset < 0 || length < 0 || offset + length > t.ByteLength) throw new ArgumentOutOfRangeException(nameof(offset));
        return new ReadOnlySpan<byte>(Pointer(t) + offset, length);
    }

    /// <summary>The read handle of the file (the one it was measured and mapped from), for in-kernel copies.</summary>
    internal Microsoft.Win32.SafeHandles.SafeFileHandle ReadHandle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_base == null, this);
            return _handle;
        }
    }

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        Release(_view, _map, (byte*)1);
        _handle.Dispose();
    }
}
