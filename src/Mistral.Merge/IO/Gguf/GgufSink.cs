using Microsoft.Win32.SafeHandles;

namespace Mistral.Merge.IO.Gguf;

/// <summary>A buffered sequential writer over a file handle (the bytes of one GGUF file, in order).</summary>
public sealed class GgufSink
{
    private readonly SafeFileHandle _handle;
    private readonly string _path;
    private readonly byte[] _buffer = new byte[4 << 20];
    private int _used;
    private long _flushed;

    internal GgufSink(SafeFileHandle handle, string path) { _handle = handle; _path = path; }

    /// <summary>Bytes written so far.</summary>
    public long Position => _flushed + _used;

    public void Write(ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
        {
            int n = Math.Min(data.Length, _buffer.Length - _used);
            data[..n].CopyTo(_buffer.AsSpan(_used));
            _used += n;
            data = data[n..];
            if (_used == _buffer.Length) Flush();
        }
    }

    public void Zeros(long count)
    {
        Span<byte> zero = stackalloc byte[64];
        zero.Clear();
        while (count > 0) { int n = (int)Math.Min(count, zero.Length); Write(zero[..n]); count -= n; }
    }

    internal void Flush()
    {
        if (_used == 0) return;
        FaultInjection.Check("write", _path);
        RandomAccess.Write(_handle, _buffer.AsSpan(0, _used), _flushed);
        _flushed += _used;
        _used = 0;
    }
}
