using System.Text;
using static Mistral.Merge.Cuda.Native.CudaConstants;

namespace Mistral.Merge.Cuda;

/// <summary>
/// The loaded kernel module and one typed launcher per kernel. Launch geometry (grid, block, shared memory)
/// is decided here, next to the kernels' own comments, so callers only pass tensors and sizes.
/// </summary>
public sealed unsafe class CudaKernels : IDisposable
{
    /// <summary>Every entry point the host code launches; the tests check the embedded sources define exactly these.</summary>
    public static readonly string[] EntryPoints =
    [
        "f32_to_bf16_kernel", "bf16_to_f32_kernel", "embed_bf16", "embed_f32", "add_inplace_f32", "fill_random_bf16",
        "rmsnorm_f32", "rmsnorm_bf16", "rope_qkv_store", "silu_mul_f32", "silu_mul_bf16",
        "attn_prefill_f32", "attn_prefill_bf16", "attn_decode_partial", "attn_decode_combine_f32", "attn_decode_combine_bf16",
        "nll_rows", "log_softmax_rows", "argmax_rows",
        "moe_route_topk", "moe_group", "moe_gather_f32", "moe_gather_bf16", "moe_combine",
    ];

    // Must match attention.cu.
    public const int AttentionRows = 16, AttentionKeyTile = 32, AttentionThreads = 128, MaxHeadDim = 256, DecodeKeysPerSplit = 256;
    public const int MaxExpertsPerToken = 8;   // moe.cu MOE_MAX_K

    private readonly CudaContext _ctx;
    private nint _module;
    private readonly Dictionary<string, nint> _fn = new();
    public bool LoadedFromCache { get; }

    private CudaKernels(CudaContext ctx, nint module, bool fromCache)
    {
        _ctx = ctx; _module = module; LoadedFromCache = fromCache;
        foreach (var name in EntryPoints)
        {
            nint f;
            byte[] n = Encoding.ASCII.GetBytes(name + "\0");
            fixed (byte* p = n) ctx.Api.Check(ctx.Api.cuModuleGetFunction(&f, module, p), "cuModuleGetFunction(" + name + ")");
            _fn[name] = f;
        }
    }

    internal static CudaKernels Load(CudaContext ctx)
    {
        byte[] cubin = KernelCache.GetOrCompile(ctx, out bool fromCache);
        nint module;
        int r;
        fixed (byte* p = cubin) r = ctx.Api.cuModuleLoadData(&module, p);
        if (r != CUDA_SUCCESS && fromCache)
        {
            // A damaged or foreign cache entry: drop it and compile afresh once.
            KernelCache.Forget(ctx);
            cubin = KernelCache.GetOrCompile(ctx, out fromCache);
            fixed (byte* p = cubin) r = ctx.Api.cuModuleLoadData(&module, p);
        }
        ctx.Api.Check(r, "cuModuleLoadData");
        return new CudaKernels(ctx, module, fromCache);
    }

    public void Launch(string name, Dim3 grid, Dim3 block, uint sharedBytes, CudaStream stream, params ReadOnlySpan<KernelArg> args)
    {
        if (!_fn.TryGetValue(name, out var f)) throw new ArgumentException("unknown kernel " + name, nameof(name));
        ulong* values = stackalloc ulong[args.Length];
        void** ptrs = stackalloc void*[args.Length];
        for (int i = 0; i < args.Length; i++) { values[i] = args[i].Bits; ptrs[i] = &values[i]; }
        _ctx.Api.Check(_ctx.Api.cuLaunchKernel(f, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, sharedBytes, stream.Handle, ptrs, null),
            "cuLaunchKernel(" + name + ")");
    }

    private static int Blocks(long n, int threads, int cap = 65535 * 4) => (int)Math.Clamp((n + threads - 1) / threads, 1, cap);

    // ---- typed launchers ----

    public void Embed(CudaStream s, bool bf16Table, ulong tokens, ulong table, ulong x, int count, int hidden) =>
        Launch(bf16Table ? "embed_bf16" : "embed_f32", count, 256, 0, s, tokens, table, x, hidden);

    public void RmsNorm(CudaStream s, bool bf16Out, ulong x, ulong w, ulong y, int rows, int n, float eps) =>
        Launch(bf16Out ? "rmsnorm_bf16" : "rmsnorm_f32", rows, 256, 0, s, x, w, y, n, eps);

    public void RopeQkvStore(CudaStream s, ulong qkv, ulong q, ulong kcache, ulong vcache, ulong cos, ulong sin, int tokens, int heads, int kvHeads, int headDim, int pos0) =>
        Launch("rope_qkv_store", tokens, 128, 0, s, qkv, q, kcache, vcache, cos, sin, heads, kvHeads, headDim, pos0);

    public void SiluMul(CudaStream s, bool bf16Out, ulong gu, ulong act, int rows, int intermediate) =>
        Launch(bf16Out ? "silu_mul_bf16" : "silu_mul_f32", Blocks((long)rows * intermediate, 256), 256, 0, s, gu, act, rows, intermediate);

    public static uint PrefillSharedBytes(int headDim) =>
        (uint)((AttentionRows * headDim + AttentionKeyTile * (headDim + 1) + AttentionKeyTile * headDim) * sizeof(float));

    private readonly HashSet<string> _smemRaised = new();

    public void AttentionPrefill(CudaStream s, bool bf16Out, ulong q, ulong kc, ulong vc, ulong output, int tokens, int pos0, int heads, int kvHeads, int headDim, int window, float scale)
    {
        string name = bf16Out ? "attn_prefill_bf16" : "attn_prefill_f32";
        uint smem = PrefillSharedBytes(headDim);
        if (smem > 48 * 1024 && _smemRaised.Add(name))   // beyond the default 48 KB a kernel must opt in
            _ctx.Api.Check(_ctx.Api.cuFuncSetAttribute(_fn[name], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)smem), "cuFuncSetAttribute");
        var grid = new Dim3((uint)((tokens + AttentionRows - 1) / AttentionRows), (uint)heads);
        Launch(name, grid, AttentionThreads, smem, s, q, kc, vc, output, tokens, pos0, heads, kvHeads, headDim, window, scale);
    }

    /// <summary>Number of key splits for a decode step at <paramref name="pos"/> (visible keys / 256, at least 1).</summary>
    public static int DecodeSplits(int pos, int window)
    {
        int visible = window > 0 ? Math.Min(window, pos + 1) : pos + 1;
        return (visible + DecodeKeysPerSplit - 1) / DecodeKeysPerSplit;
    }

    public void AttentionDecode(CudaStream s, bool bf16Out, ulong q, ulong kc, ulong vc, ulong pm, ulong pl, ulong pacc, ulong output, int pos, int heads, int kvHeads, int headDim, int window, float scale)
    {
        int splits = DecodeSplits(pos, window);
        Launch("attn_decode_partial", new Dim3((uint)heads, (uint)splits), AttentionThreads, 0, s, q, kc, vc, pm, pl, pacc, pos, heads, kvHeads, headDim, window, scale, DecodeKeysPerSplit);
        Launch(bf16Out ? "attn_decode_combine_bf16" : "attn_decode_combine_f32", heads, 128, 0, s, pm, pl, pacc, output, headDim, splits);
    }

    public void Nll(CudaStream s, ulong logits, ulong targets, ulong nll, int rows, int vocab) =>
        Launch("nll_rows", rows, 256, 0, s, logits, targets, nll, vocab);

    public void Argmax(CudaStream s, ulong logits, ulong ids, int rows, int vocab) =>
        Launch("argmax_rows", rows, 256, 0, s, logits, ids, vocab);

    public void LogSoftmax(CudaStream s, ulong logits, int rows, int vocab) =>
        Launch("log_softmax_rows", rows, 256, 0, s, logits, vocab);

    public void MoeRoute(CudaStream s, ulong routerLogits, ulong ids, ulong weights, int tokens, int experts, int k, bool roundBf16) =>
        Launch("moe_route_topk", Blocks(tokens, 128), 128, 0, s, routerLogits, ids, weights, tokens, experts, k, roundBf16 ? 1 : 0);

    public void MoeGroup(CudaStream s, ulong ids, ulong counts, ulong offsets, ulong order, ulong inverse, int tokens, int experts, int k) =>
        Launch("moe_group", 1, Math.Max(32, (experts + 31) / 32 * 32), 0, s, ids, counts, offsets, order, inverse, tokens, experts, k);

    public void MoeGather(CudaStream s, bool bf16, ulong x, ulong order, ulong gathered, int rows, int hidden, int k) =>
        Launch(bf16 ? "moe_gather_bf16" : "moe_gather_f32", rows, 256, 0, s, x, order, gathered, hidden, k);

    public void MoeCombine(CudaStream s, ulong residual, ulong y, ulong ids, ulong weights, ulong inverse, int tokens, int hidden, int k) =>
        Launch("moe_combine", tokens, 256, 0, s, residual, y, ids, weights, inverse, hidden, k);

    public void FillRandomBf16(CudaStream s, ulong dst, long count, ulong seed, float scale) =>
        Launch("fill_random_bf16", Blocks(count, 256, 65535), 256, 0, s, dst, count, (long)seed, scale);

    public void Dispose()
    {
        if (_module == 0) return;
        _ctx.Api.cuModuleUnload(_module);
        _module = 0;
    }
}
