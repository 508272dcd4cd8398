using System.Runtime.InteropServices;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Cuda;

// Device memory: globals, activations, KV cache, and layer residency / streaming.
public sealed partial class CudaTransformer
{
    private DeviceBuffer? _embed, _lmHead, _finalNorm, _cos, _sin;
    private DeviceBuffer? _x, _xn, _qkv, _q, _attn, _gu, _act, _logits, _nll, _targets, _tokens, _argmax, _pm, _pl, _pacc;
    private DeviceBuffer? _routerLogits, _ids, _rw, _counts, _offsets, _order, _inverse, _gathered, _y;
    private int _ropeCapacity;   // positions covered by the RoPE tables and the decode scratch
    private PinnedBuffer? _hostSmall;
    private readonly PinnedBuffer?[] _staging = new PinnedBuffer?[2];
    private DeviceBuffer[] _slots = [];
    // Streaming state (offload): which layer each of the two slots holds, and the events ordering the two streams.
    private readonly int[] _slotLayer = [-1, -1];
    private CudaEvent[] _slotReady = [], _slotFree = [], _stagingFree = [];

    private Models.Architecture Names => Config.Names;
    private long EmbedBytes => (long)Vocab * Hidden * Es;
    private bool SeparateHead => !Config.TieWordEmbeddings && _src.Contains(Names.LmHead);
    /// <summary>Per token: the LM head matrix (tied or not), one embedding row, the final norm.</summary>
    private long HeadBytes() => EmbedBytes + (long)Hidden * Es + (long)Hidden * 4;
    private long GlobalBytes() => EmbedBytes + (SeparateHead ? EmbedBytes : 0) + (long)Hidden * 4 + 2L * MaxSequence * (Config.HeadDim / 2) * 4;
    private static int SplitsFor(int positions) => (positions + CudaKernels.DecodeKeysPerSplit - 1) / CudaKernels.DecodeKeysPerSplit;
    private int Rows => Config.IsMoe ? Chunk * K : Chunk;
    private int MaxSplits => SplitsFor(MaxSequence);

    private long ActivationBytes()
    {
        long c = Chunk, h = Hidden, heads = Config.NumAttentionHeads, d = Config.HeadDim, i = Config.IntermediateSize;
        long b = c * h * 4 + c * h * Es + c * _layout.QkvRows * 4 + c * heads * d * 4 + c * heads * d * Es
               + Rows * 2 * i * 4 + Rows * i * Es + c * Vocab * 4L + c * 12 + 4
               + heads * MaxSplits * (2 + d) * 4L;
        if (Config.IsMoe)
        {
            long e = Config.NumLocalExperts, rk = c * K;
            b += c * e * 4 + rk * 4 * 4 + (2 * e + 1) * 4 + rk * h * Es + rk * h * 4;
        }
        return b + 64L * 1024 * 1024;   // cuBLAS workspace and allocation rounding
    }

    private long KvBytes(long tokens) => 2L * Layers * tokens * Config.NumKeyValueHeads * Config.HeadDim * 4;

    private DeviceBuffer Dev(long bytes, string what) => Own(_ctx.Alloc(bytes, what));

    private void AllocateGlobals()
    {
        long stagingBytes = Math.Max(_layout.Bytes, 64L << 20);
        _staging[0] = Own(_ctx.AllocPinned(stagingBytes));
        _staging[1] = Own(_ctx.AllocPinned(stagingBytes));
        _embed = Dev(EmbedBytes, Names.Embed);
        UploadMatrix(Names.Embed, _embed, [Vocab, Hidden]);
        if (SeparateHead)
        {
            _lmHead = Dev(EmbedBytes, Names.LmHead);
            UploadMatrix(Names.LmHead, _lmHead, [Vocab, Hidden]);
        }
        else if (!Config.TieWordEmbeddings && !_src.Contains(Names.LmHead))
            throw new MergeException($"{_src.Origin}: {Names.LmHead} is missing and tie_word_embeddings is false");
        _finalNorm = Dev((long)Hidden * 4, Names.FinalNorm);
        UploadNorm(Names.FinalNorm, _finalNorm);
        EnsurePositions(MaxSequence);
    }

    /// <summary>Grows the RoPE tables and the decode scratch to cover <paramref name="positions"/> positions.</summary>
    private void EnsurePositions(int positions)
    {
        if (positions <= _ropeCapacity) return;
        _compute.Synchronize();
        foreach (var old in new[] { _cos, _sin, _pm, _pl, _pacc }) if (old != null) { old.Dispose(); _owned.Remove(old); }
        var (cos, sin) = RopeTables.Build(positions, Config.HeadDim, Config.RopeTheta);
        _cos = Dev((long)cos.Length * 4, "rope cos");
        _sin = Dev((long)sin.Length * 4, "rope sin");
        _ctx.Upload(_cos, MemoryMarshal.AsBytes(cos.AsSpan()));
        _ctx.Upload(_sin, MemoryMarshal.AsBytes(sin.AsSpan()));
        long heads = Config.NumAttentionHeads, splits = SplitsFor(positions);
        _pm = Dev(heads * splits * 4, "decode partial max");
        _pl = Dev(heads * splits * 4, "decode partial sum");
        _pacc = Dev(heads * splits * Config.HeadDim * 4, "decode partial acc");
        _ropeCapacity = positions;
    }

    /// <summary>A KV cache for sequences of up to <paramref name="maxTokens"/> positions, in GPU memory.</summary>
    public CudaKvCache CreateCache(int maxTokens)
    {
        if (maxTokens < 1) throw new MergeException($"a KV cache needs at least 1 position, got {maxTokens}");
        _ctx.MakeCurrent();
        long need = KvBytes(maxTokens);
        var (free, _) = _ctx.MemoryInfo();
        if (need > free - _opt.ReserveBytes)
            throw new MergeException($"a KV cache for {maxTokens} tokens needs {ByteSize.Format(need)} of GPU memory but {_ctx.Name} has {ByteSize.Format(free)} free: use a shorter context");
        EnsurePositions(maxTokens);
        long per = (long)maxTokens * Config.NumKeyValueHeads * Config.HeadDim * 4;
        var k = new DeviceBuffer[Layers];
        var v = new DeviceBuffer[Layers];
        try
        {
            for (int l = 0; l < Layers; l++) { k[l] = _ctx.Alloc(per, $"K cache of layer {l}"); v[l] = _ctx.Alloc(per, $"V cache of layer {l}"); }
        }
        catch
        {
            foreach (var b in k) b?.Dispose();
            foreach (var b in v) b?.Dispose();
            throw;
        }
        return new CudaKvCache(this, k, v, maxTokens);
    }

    /// <summary>Converts a [rows, cols] matrix to the compute dtype through pinned staging, in row chunks (no 2 GB limits).</summary>
    private unsafe void UploadMatrix(string name, DeviceBuffer dst, long[] shape)
    {
        WeightPacker.CheckShape(_src, name, shape);
        var info = _src.Info(name);
        var bytes = _src.Bytes(name);
        int srcEs = info.DType.SizeOf();
        long cols = shape[1];
        var staging = _staging[0]!;
        long rowsPerChunk = Math.Max(1, Math.Min(staging.Bytes / (cols * Es), int.MaxValue / (cols * Math.Max(Es, srcEs))));
        for (long r = 0; r < shape[0]; r += rowsPerChunk)
        {
            long n = Math.Min(rowsPerChunk, shape[0] - r);
            var part = bytes.Slice(checked((int)(r * cols * srcEs)), checked((int)(n * cols * srcEs)));
            WeightPacker.Convert(part, info.DType, staging.Span(0, checked((int)(n * cols * Es))), toBf16: Bf16);
            _copy.CopyToDeviceAsync(dst.At(r * cols * Es), staging.Pointer, n * cols * Es);
            _copy.Synchronize();
        }
    }

    private void UploadNorm(string name, DeviceBuffer dst)
    {
        WeightPacker.CheckShape(_src, name, [Hidden]);
        var f = new byte[Hidden * 4];
        WeightPacker.Convert(_src.Bytes(name), _src.Info(name).DType, f, toBf16: false);
        _ctx.Upload(dst, f);
    }

    private void AllocateActivations()
    {
        long c = Chunk, h = Hidden, heads = Config.NumAttentionHeads, d = Config.HeadDim, i = Config.IntermediateSize;
        _x = Dev(c * h * 4, "residual stream");
        _xn = Dev(c * h * Es, "normed activations");
        _qkv = Dev(c * _layout.QkvRows * 4, "qkv");
        _q = Dev(c * heads * d * 4, "queries");
        _attn = Dev(c * heads * d * Es, "attention output");
        _gu = Dev((long)Rows * 2 * i * 4, "gate/up");
        _act = Dev((long)Rows * i * Es, "MLP activations");
        _logits = Dev(c * Vocab * 4, "logits");
        _nll = Dev(c * 4, "nll");
        _targets = Dev(c * 4, "targets");
        _tokens = Dev(c * 4, "tokens");
        _argmax = Dev(4, "argmax");
        int e = Config.NumLocalExperts;
        if (Config.IsMoe)
        {
            long rk = c * K;
            _routerLogits = Dev(c * e * 4, "router logits");
            _ids = Dev(rk * 4, "expert ids");
            _rw = Dev(rk * 4, "routing weights");
            _counts = Dev(e * 4L, "expert counts");
            _offsets = Dev((e + 1) * 4L, "expert offsets");
            _order = Dev(rk * 4, "expert order");
            _inverse = Dev(rk * 4, "expert inverse");
            _gathered = Dev(rk * h * Es, "gathered tokens");
            _y = Dev(rk * h * 4, "expert outputs");
        }
        _hostSmall = Own(_ctx.AllocPinned((2 * c + e + 1) * 4));
    }

    private void InitLayers()
    {
        _slotReady = [Own(_ctx.CreateEvent()), Own(_ctx.CreateEvent())];
        _slotFree = [Own(_ctx.CreateEvent()), Own(_ctx.CreateEvent())];
        _stagingFree = [Own(_ctx.CreateEvent()), Own(_ctx.CreateEvent())];
        if (Offloaded)
        {
            _slots = [Dev(_layout.Bytes, "layer slot 0"), Dev(_layout.Bytes, "layer slot 1")];
            Prefetch(0);
            return;
        }
        // Resident: every layer gets its own slot; packing layer l+1 on the host overlaps the copy of layer l.
        _slots = new DeviceBuffer[Layers];
        for (int l = 0; l < Layers; l++)
        {
            _slots[l] = Dev(_layout.Bytes, $"layer {l}");
            CopyLayer(l, _slots[l], l % 2, waitForSlot: false);
        }
        _copy.Synchronize();
    }

    /// <summary>Packs layer <paramref name="l"/> into staging buffer <paramref name="b"/> and queues its copy into <paramref name="slot"/> on the copy stream.</summary>
    private unsafe void CopyLayer(int l, DeviceBuffer slot, int b, bool waitForSlot)
    {
        _stagingFree[b].Synchronize();          // the previous copy out of this staging buffer has finished
        WeightPacker.PackLayer(_src, _layout, l, _staging[b]!.Pointer, _staging[b]!.Bytes, _opt.Threads);
        if (waitForSlot) _copy.Wait(_slotFree[b]);   // the layer that used this device slot has finished computing
        _copy.CopyToDeviceAsync(slot.Ptr, _staging[b]!.Pointer, _layout.Bytes);
        _slotReady[b].Record(_copy);
        _stagingFree[b].Record(_copy);
    }

    private void Prefetch(int l)
    {
        int b = l % 2;
        if (_slotLayer[b] == l) return;
        CopyLayer(l, _slots[b], b, waitForSlot: true);
        _slotLayer[b] = l;
    }

    /// <summary>The device slot holding layer <paramref name="l"/>, with the compute stream ordered after its copy.</summary>
    private DeviceBuffer AcquireLayer(int l)
    {
        if (!Offloaded) return _slots[l];
        int b = l % 2;
        Prefetch(l);
        _compute.Wait(_slotReady[b]);
        return _slots[b];
    }

    /// <summary>Marks layer <paramref name="l"/>'s slot reusable once its queued compute finishes, and starts streaming the next layer.</summary>
    private void ReleaseLayer(int l)
    {
        if (!Offloaded) return;
        _slotFree[l % 2].Record(_compute);
        Prefetch((l + 1) % Layers);   // after the last layer this preloads layer 0 for the next forward pass
    }
}
