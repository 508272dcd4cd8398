using System.Runtime.InteropServices;

namespace Mistral.Merge.Cuda;

// The per-chunk forward pass: embedding, decoder layers, final norm and head — all queued on the compute stream.
public sealed partial class CudaTransformer
{
    private enum Head { None, LastLogits, AllLogits, Nll, Argmax }

    private unsafe void RunChunk(ReadOnlySpan<int> tokens, Head head, ReadOnlySpan<int> targets, CudaKvCache cache)
    {
        _ctx.MakeCurrent();
        var k = _ctx.Kernels;
        int n = tokens.Length, pos0 = cache.Length;
        int heads = Config.NumAttentionHeads, kvh = Config.NumKeyValueHeads, d = Config.HeadDim, inter = Config.IntermediateSize;
        float eps = (float)Config.RmsNormEps, scale = (float)(1.0 / Math.Sqrt(d));

        // Inputs go through pinned memory (async copies from pageable memory would be staged synchronously anyway).
        var small = MemoryMarshal.Cast<byte, int>(_hostSmall!.Span(0, checked((int)_hostSmall.Bytes)));
        tokens.CopyTo(small);
        _compute.CopyToDeviceAsync(_tokens!.Ptr, _hostSmall.Pointer, n * 4L);
        if (head == Head.Nll)
        {
            targets.CopyTo(small.Slice(Chunk));
            _compute.CopyToDeviceAsync(_targets!.Ptr, _hostSmall.Pointer + Chunk * 4L, n * 4L);
        }

        k.Embed(_compute, Bf16, _tokens.Ptr, _embed!.Ptr, _x!.Ptr, n, Hidden);

        for (int l = 0; l < Layers; l++)
        {
            var slot = AcquireLayer(l);
            ulong W(long offset) => slot.Ptr + (ulong)offset;

            // Attention block: x += o_proj(attention(rope(qkv_proj(norm(x)))))
            k.RmsNorm(_compute, Bf16, _x.Ptr, W(_layout.Norm1), _xn!.Ptr, n, Hidden, eps);
            _blas.Linear(Bf16, W(_layout.Qkv), _xn.Ptr, _qkv!.Ptr, n, _layout.QkvRows, Hidden);
            k.RopeQkvStore(_compute, _qkv.Ptr, _q!.Ptr, cache.K[l].Ptr, cache.V[l].Ptr, _cos!.Ptr, _sin!.Ptr, n, heads, kvh, d, pos0);
            if (n == 1)
                k.AttentionDecode(_compute, Bf16, _q.Ptr, cache.K[l].Ptr, cache.V[l].Ptr, _pm!.Ptr, _pl!.Ptr, _pacc!.Ptr, _attn!.Ptr, pos0, heads, kvh, d, Window, scale);
            else
                k.AttentionPrefill(_compute, Bf16, _q.Ptr, cache.K[l].Ptr, cache.V[l].Ptr, _attn!.Ptr, n, pos0, heads, kvh, d, Window, scale);
            _blas.Linear(Bf16, W(_layout.O), _attn.Ptr, _x.Ptr, n, Hidden, heads * d, beta: 1f);

            // MLP block: x += mlp(norm(x))
            k.RmsNorm(_compute, Bf16, _x.Ptr, W(_layout.Norm2), _xn.Ptr, n, Hidden, eps);
            if (Config.IsMoe) Moe(k, slot, n);
            else
            {
                _blas.Linear(Bf16, W(_layout.GateUp), _xn.Ptr, _gu!.Ptr, n, 2 * inter, Hidden);
                k.SiluMul(_compute, Bf16, _gu.Ptr, _act!.Ptr, n, inter);
                _blas.Linear(Bf16, W(_layout.Down), _act.Ptr, _x.Ptr, n, Hidden, inter, beta: 1f);
            }
            ReleaseLayer(l);
        }

        if (head != Head.None)
        {
            bool all = head is Head.AllLogits or Head.Nll;
            int rows = all ? n : 1;
            ulong from = all ? _x.Ptr : _x.Ptr + (ulong)((long)(n - 1) * Hidden * 4);
            k.RmsNorm(_compute, Bf16, from, _finalNorm!.Ptr, _xn!.Ptr, rows, Hidden, eps);
            _blas.Linear(Bf16, (_lmHead ?? _embed).Ptr, _xn.Ptr, _logits!.Ptr, rows, Vocab, Hidden);
            if (head == Head.Nll) k.Nll(_compute, _logits.Ptr, _targets!.Ptr, _nll!.Ptr, n, Vocab);
            if (head == Head.Argmax) k.Argmax(_compute, _logits.Ptr, _argmax!.Ptr, 1, Vocab);
        }
        _compute.Synchronize();   // results are read right after; also frees the pinned input buffer for the next chunk
        cache.Length += n;
    }

    /// <summary>Mixtral sparse MoE on the normed activations _xn; adds the routed expert outputs to the residual.</summary>
    private unsafe void Moe(CudaKernels k, DeviceBuffer slot, int n)
    {
        int e = Config.NumLocalExperts, kk = K, inter = Config.IntermediateSize, rows = n * kk;
        _blas.Linear(Bf16, slot.Ptr + (ulong)_layout.Router, _xn!.Ptr, _routerLogits!.Ptr, n, e, Hidden);
        k.MoeRoute(_compute, _routerLogits.Ptr, _ids!.Ptr, _rw!.Ptr, n, e, kk, roundBf16: Bf16);
        k.MoeGroup(_compute, _ids.Ptr, _counts!.Ptr, _offsets!.Ptr, _order!.Ptr, _inverse!.Ptr, n, e, kk);
        // The host needs the per-expert row counts to size each expert's GEMM.
        byte* offsHost = _hostSmall!.Pointer + 2L * Chunk * 4;
        _compute.CopyToHostAsync(offsHost, _offsets.Ptr, (e + 1) * 4L);
        _compute.Synchronize();
        var offs = new ReadOnlySpan<int>(offsHost, e + 1).ToArray();
        k.MoeGather(_compute, Bf16, _xn.Ptr, _order.Ptr, _gathered!.Ptr, rows, Hidden, kk);
        for (int x = 0; x < e; x++)
        {
            int cnt = offs[x + 1] - offs[x];
            if (cnt == 0) continue;
            _blas.Linear(Bf16, slot.Ptr + (ulong)(_layout.GateUp + x * _layout.ExpertGateUpStride),
                _gathered.Ptr + (ulong)((long)offs[x] * Hidden * Es), _gu!.Ptr + (ulong)((long)offs[x] * 2 * inter * 4), cnt, 2 * inter, Hidden);
        }
        k.SiluMul(_compute, Bf16, _gu!.Ptr, _act!.Ptr, rows, inter);
        for (int x = 0; x < e; x++)
        {
            int cnt = offs[x + 1] - offs[x];
            if (cnt == 0) continue;
            _blas.Linear(Bf16, slot.Ptr + (ulong)(_layout.Down + x * _layout.ExpertDownStride),
                _act.Ptr + (ulong)((long)offs[x] * inter * Es), _y!.Ptr + (ulong)((long)offs[x] * Hidden * 4), cnt, Hidden, inter);
        }
        k.MoeCombine(_compute, _x!.Ptr, _y!.Ptr, _ids.Ptr, _rw.Ptr, _inverse.Ptr, n, Hidden, kk);
    }
}
