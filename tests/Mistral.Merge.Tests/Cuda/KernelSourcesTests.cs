using Mistral.Merge.Cuda;

namespace Mistral.Merge.Tests.Cuda;

public class KernelSourcesTests
{
    private static readonly string[] ExpectedFiles =
        ["common.cuh", "attention.cu", "convert.cu", "logits.cu", "moe.cu", "rmsnorm.cu", "rope.cu", "silu.cu"];

    [Fact]
    public void AllKernelFilesAreEmbeddedCommonHeaderFirst()
    {
        var names = KernelSources.Files.Select(f => f.Name).ToArray();
        Assert.Equal(ExpectedFiles, names);
        Assert.All(KernelSources.Files, f => Assert.True(f.Text.Length > 200, f.Name + " is suspiciously short"));
    }

    [Fact]
    public void EntryPointsAreExactlyTheOnesTheHostLaunches()
    {
        var found = KernelSources.EntryPoints(KernelSources.Combined());
        Assert.Equal(found.Count, found.Distinct().Count());
        Assert.Equal(CudaKernels.EntryPoints.OrderBy(x => x, StringComparer.Ordinal), found.OrderBy(x => x, StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("rmsnorm.cu", new[] { "rmsnorm_f32", "rmsnorm_bf16" })]
    [InlineData("rope.cu", new[] { "rope_qkv_store" })]
    [InlineData("attention.cu", new[] { "attn_prefill_f32", "attn_prefill_bf16", "attn_decode_partial", "attn_decode_combine_f32", "attn_decode_combine_bf16" })]
    [InlineData("silu.cu", new[] { "silu_mul_f32", "silu_mul_bf16" })]
    [InlineData("logits.cu", new[] { "nll_rows", "log_softmax_rows", "argmax_rows" })]
    [InlineData("moe.cu", new[] { "moe_route_topk", "moe_group", "moe_gather_f32", "moe_gather_bf16", "moe_combine" })]
    [InlineData("convert.cu", new[] { "f32_to_bf16_kernel", "bf16_to_f32_kernel", "embed_bf16", "embed_f32", "add_inplace_f32", "fill_random_bf16" })]
    public void EachFileDefinesItsKernels(string file, string[] kernels)
    {
        var text = KernelSources.Files.Single(f => f.Name == file).Text;
        Assert.Equal(kernels, KernelSources.EntryPoints(text));
    }

    [Fact]
    public void SourcesNeedNoHeadersNvrtcLacks()
    {
        // NVRTC has no system include path: the kernels must be self-contained (bf16 handled as raw bits).
        foreach (var (name, text) in KernelSources.Files)
            Assert.False(System.Text.RegularExpressions.Regex.IsMatch(text, @"^\s*#\s*include", System.Text.RegularExpressions.RegexOptions.Multiline), name + " has an #include");
    }

    [Fact]
    public void LaunchConstantsMatchTheKernelSources()
    {
        var att = KernelSources.Files.Single(f => f.Name == "attention.cu").Text;
        Assert.Contains("#define ATT_WARPS 4", att);
        Assert.Contains("#define ATT_ROWS_PER_WARP 4", att);
        Assert.Contains("#define ATT_KT 32", att);
        Assert.Contains("#define ATT_NACC 8", att);
        Assert.Equal(4 * 32, CudaKernels.AttentionThreads);
        Assert.Equal(4 * 4, CudaKernels.AttentionRows);
        Assert.Equal(8 * 32, CudaKernels.MaxHeadDim);
        Assert.Contains("#define MOE_MAX_K 8", KernelSources.Files.Single(f => f.Name == "moe.cu").Text);
        // Q tile + padded K tile + V tile, f32.
        Assert.Equal((16 * 128 + 32 * 129 + 32 * 128) * 4, (int)CudaKernels.PrefillSharedBytes(128));
        Assert.True(CudaKernels.PrefillSharedBytes(128) <= 48 * 1024);   // Mistral's head_dim needs no opt-in
        Assert.True(CudaKernels.PrefillSharedBytes(256) > 48 * 1024);    // 256 does (the launcher raises the limit)
    }

    [Theory]
    [InlineData(0, 0, 1)]
    [InlineData(255, 0, 1)]
    [InlineData(256, 0, 2)]
    [InlineData(4095, 0, 16)]
    [InlineData(4095, 1000, 4)]
    [InlineData(10, 1000, 1)]
    public void DecodeSplitsCoverExactlyTheVisibleKeys(int pos, int window, int splits) =>
        Assert.Equal(splits, CudaKernels.DecodeSplits(pos, window));
}
