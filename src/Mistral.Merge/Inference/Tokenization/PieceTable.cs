using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Mistral.Merge.Inference.Tokenization;

/// <summary>
/// Open-addressing hash map from a UTF-8 byte string to a piece id, looked up by span
/// (the BPE loop asks "is this byte range of the normalized text a piece?" millions of times, allocation-free).
/// </summary>
internal sealed class PieceTable
{
    private readonly int[] _slots;       // piece id + 1; 0 = empty
    private readonly uint[] _hashes;
    private readonly byte[][] _pieces;
    private readonly int _mask;

    public int MaxLength { get; }

    public PieceTable(byte[][] pieces, Func<int, bool> include)
    {
        _pieces = pieces;
        int n = 0;
        for (int i = 0; i < pieces.Length; i++) if (include(i)) n++;
        int cap = 16;
        while (cap < n * 2) cap <<= 1;
        _slots = new int[cap];
        _hashes = new uint[cap];
        _mask = cap - 1;
        for (int i = 0; i < pieces.Length; i++)
        {
            if (!include(i)) continue;
            MaxLength = Math.Max(MaxLength, pieces[i].Length);
            uint h = Hash(pieces[i]);
            int s = (int)h & _mask;
            while (_slots[s] != 0)
            {
                // First definition wins; duplicates are rejected by the model validation anyway.
                if (_hashes[s] == h && pieces[_slots[s] - 1].AsSpan().SequenceEqual(pieces[i])) goto next;
                s = (s + 1) & _mask;
            }
            _slots[s] = i + 1;
            _hashes[s] = h;
        next:;
        }
    }

    /// <summary>The id of the piece spelled by <paramref name="key"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Find(ReadOnlySpan<byte> key)
    {
        if (key.Length > MaxLength) return -1;
        uint h = Hash(key);
        int s = (int)h & _mask;
        while (true)
        {
            int v = _slots[s];
            if (v == 0) return -1;
            if (_hashes[s] == h && key.SequenceEqual(_pieces[v - 1])) return v - 1;
            s = (s + 1) & _mask;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(ReadOnlySpan<byte> s)
    {
        ulong h = 0x9E3779B97F4A7C15UL ^ (ulong)s.Length;
        int i = 0;
        for (; i + 8 <= s.Length; i += 8)
        {
            h = (h ^ MemoryMarshal.Read<ulong>(s[i..])) * 0xBF58476D1CE4E5B9UL;
            h ^= h >> 31;
        }
        ulong tail = 0;
        for (; i < s.Length; i++) tail = (tail << 8) | s[i];
        h = (h ^ tail) * 0x94D049BB133111EBUL;
        h ^= h >> 29;
        return (uint)h ^ (uint)(h >> 32);
    }
}
