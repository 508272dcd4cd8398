using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Mistral.Merge.Moe;

/// <summary>
/// MoE block inputs of every layer, float32 [tokens, hidden] per layer, kept in an anonymous temporary file rather
/// than in memory: 20,000 calibration tokens of Mixtral-8x7B are 10.5 GB, more than the surgery can afford beside
/// the experts it reads. Layers are read back one at a time (<see cref="MoeInputs"/>), so private memory holds
/// one layer (tokens × hidden × 4 bytes). The file is unlinked as soon as it is created, so it never outlives
/// the process, even a killed one.
/// </summary>
public sealed class CalibrationStore : IDisposable
{
    private readonly SafeFileHandle _file;
    private readonly long _layerBytes;

    public int Layers { get; }
    public int Tokens { get; }
    public int Hidden { get; }

    public CalibrationStore(int layers, int tokens, int hidden, string? directory = null)
    {
        if ((long)tokens * hidden > Array.MaxLength)
            throw new MergeException($"calibration: {tokens} tokens × hidden {hidden} is too large for one layer; lower the calibration token limit");
        (Layers, Tokens, Hidden) = (layers, tokens, hidden);
        _layerBytes = (long)tokens * hidden * sizeof(float);
        directory ??= Path.GetTempPath();
        var path = Path.Combine(directory, $".mistral-merge-calibration-{Guid.NewGuid():N}.tmp");
        try
        {
            _file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None,
                OperatingSystem.IsWindows() ? FileOptions.DeleteOnClose : FileOptions.None);
            if (!OperatingSystem.IsWindows()) File.Delete(path); // anonymous from here on
            long free = new DriveInfo(directory).AvailableFreeSpace;
            if (free < _layerBytes * layers)
                throw new MergeException($"calibration: needs {IO.ByteSize.Format(_layerBytes * layers)} of temporary space in {directory} but only {IO.ByteSize.Format(free)} is free; lower the calibration token limit");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MergeException($"calibration: cannot create a temporary file in {directory} ({e.Message})");
        }
    }

    /// <summary>Stores the inputs of <paramref name="tokens"/> tokens starting at token <paramref name="offset"/> of a layer.</summary>
    public void Write(int layer, int offset, ReadOnlySpan<float> inputs)
    {
        long at = layer * _layerBytes + (long)offset * Hidden * sizeof(float);
        try { RandomAccess.Write(_file, MemoryMarshal.AsBytes(inputs), at); }
        catch (IOException e) { throw new MergeException($"calibration: cannot write the temporary file ({e.Message})"); }
    }

    /// <summary>A layer's inputs, [tokens, hidden], read into a fresh array.</summary>
    public float[] MoeInputs(int layer)
    {
        var x = new float[(long)Tokens * Hidden];
        var bytes = MemoryMarshal.AsBytes(x.AsSpan());
        long at = layer * _layerBytes;
        for (int done = 0; done < bytes.Length;)
        {
            int n = RandomAccess.Read(_file, bytes[done..], at + done);
            if (n <= 0) throw new MergeException($"calibration: the temporary file ended early at layer {layer}");
            done += n;
        }
        return x;
    }

    public void Dispose() => _file.Dispose();
}
