using System.Runtime.InteropServices;

namespace Mistral.Merge.Inference;

/// <summary>
/// CPU key/value cache, float32. Position p lives in slot p mod Capacity: for full attention
/// Capacity bounds the sequence; for a sliding window W it is a rolling buffer of W + chunk − 1
/// slots, enough for a chunk of <see cref="MaxChunk"/> new tokens to see W keys each without
/// overwriting a key still needed. Keys (after RoPE) are stored transposed per KV head,
/// [kvHead][d][slot], so that the scores of 16 consecutive positions are 16-wide FMAs;
/// values are stored [slot][kvHead·d].
/// </summary>
public sealed unsafe class KvCache : IKvCache
{
    public int Layers { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    public int Capacity { get; }
    /// <summary>True when the cache is a rolling buffer (sliding window shorter than the sequence).</summary>
    public bool Rolling { get; }
    public int Length { get; internal set; }
    public int MaxLength => Rolling ? int.MaxValue : Capacity;
    /// <summary>Most tokens one forward call may append at once.</summary>
    public int MaxChunk { get; }

    private readonly float*[] _keys, _values;

    public KvCache(int layers, int kvHeads, int headDim, int maxTokens, int? window, int chunk)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 1);
        Layers = layers; KvHeads = kvHeads; HeadDim = headDim;
        Rolling = window is { } w && w + chunk - 1 < maxTokens;
        Capacity = Rolling ? window!.Value + chunk - 1 : maxTokens;
        MaxChunk = Rolling ? chunk : Capacity;
        _keys = new float*[layers];
        _values = new float*[layers];
        nuint bytes = (nuint)Capacity * (nuint)(kvHeads * headDim) * sizeof(float);
        for (int l = 0; l < layers; l++)
        {
            _keys[l] = (float*)NativeMemory.AlignedAlloc(bytes, 64);
            _values[l] = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        }
    }

    public int Slot(int position) => position % Capacity;

    /// <summary>Keys of one KV head: element d of the key in slot s is at [d·Capacity + s].</summary>
    public float* Keys(int layer, int kvHead) => _keys[layer] + (long)kvHead * HeadDim * Capacity;

    /// <summary>Values: element c (0 ≤ c &lt; kvHeads·d) of slot s is at [s·kvHeads·d + c].</summary>
    public float* Values(int layer) => _values[layer];

    /// <summary>Stores the key and value rows ([kvHeads·d] each) of <paramref name="position"/>.</summary>
    public void Store(int layer, int position, float* key, float* value)
    {
        int slot = Slot(position), kvDim = KvHeads * HeadDim;
        float* k = _keys[layer];
        for (int c = 0; c < kvDim; c++) k[(long)c * Capacity + slot] = key[c]; // c = head·d + i ↔ [head][i][slot]
        new ReadOnlySpan<float>(value, kvDim).CopyTo(new Span<float>(_values[layer] + (long)slot * kvDim, kvDim));
    }

    public void Reset() => Length = 0;

    public void Dispose()
    {
        for (int l = 0; l < Layers; l++)
        {
            NativeMemory.AlignedFree(_keys[l]); _keys[l] = null;
            NativeMemory.AlignedFree(_values[l]); _values[l] = null;
        }
    }
}
