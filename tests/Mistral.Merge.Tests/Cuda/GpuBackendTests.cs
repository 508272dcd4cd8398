using Mistral.Merge.Cuda;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Tests.Cuda;

/// <summary>
/// CPU vs CUDA through the shared IBackend contract (the CPU backend is the reference). Skipped with the reason
/// where no usable GPU exists.
/// </summary>
[Collection("gpu")]
public class GpuBackendTests
{
    private static int[] Ids(string model, int count)
    {
        var tok = TokenizerLoader.Load(SharedFixtures.PathOf(model));
        return tok.Encode(File.ReadAllText(SharedFixtures.PathOf("text", "tinystories-eval.txt")), addBos: true)[..count];
    }

    [GpuFixtureFact]
    public void CpuAndCudaLogitsAgreeOnTheFixtures()
    {
        foreach (var model in new[] { "stories260k", "stories260k-bf16", "stories260k-wiki", "stories260k-moe4", "stories260k-moe4-identity" })
        {
            using var m = TransformerModel.Load(SharedFixtures.PathOf(model));
            var ids = Ids(model, 300);
            var positions = Enumerable.Range(0, ids.Length).ToArray();
            int V = m.Shape.Vocab;
            using var cpu = new CpuBackend(m, threads: 2);
            var expected = new float[ids.Length * V];
            using (var c = cpu.CreateCache(ids.Length)) cpu.Forward(ids, positions, c, expected);
            foreach (var (precision, tol) in new[] { (CudaPrecision.F32, 1e-4), (CudaPrecision.BF16, 0.02) })
            {
                using var gpu = new CudaBackend(GpuTestContext.Context, m, new CudaTransformerOptions { Precision = precision, ChunkTokens = 128 });
                var got = new float[ids.Length * V];
                using (var c = gpu.CreateCache(ids.Length)) gpu.Forward(ids, positions, c, got);
                LogitAgreement.Check($"{model} {precision}", got, i => expected[i], ids.Length, V, tol,
                    routingMayFlip: precision == CudaPrecision.BF16 && m.Config.IsMoe);
            }
        }
    }

    [GpuFixtureFact]
    public void PerplexityThroughTheSharedEvaluatorWithinHalfAPercent()
    {
        foreach (var model in new[] { "stories260k", "stories260k-moe4" })
        {
            using var m = TransformerModel.Load(SharedFixtures.PathOf(model));
            var ids = Ids(model, 20000);
            using var cpu = new CpuBackend(m);
            double reference = Perplexity.Evaluate(cpu, ids, 256, 256).Perplexity;
            using var bf16 = new CudaBackend(GpuTestContext.Context, m);
            using var f32 = new CudaBackend(GpuTestContext.Context, m, new CudaTransformerOptions { Precision = CudaPrecision.F32 });
            double a = Perplexity.Evaluate(bf16, ids, 256, 256).Perplexity, b = Perplexity.Evaluate(f32, ids, 256, 256).Perplexity;
            Assert.True(Math.Abs(a / reference - 1) < 0.005, $"{model} bf16: {a} vs CPU {reference}");
            Assert.True(Math.Abs(b / reference - 1) < 0.0005, $"{model} f32: {b} vs CPU {reference}");
        }
    }

    [GpuFixtureFact]
    public void GreedyGenerationEqualsTheCpuOnTheF32Path()
    {
        foreach (var model in new[] { "stories260k", "stories260k-code", "stories260k-moe4" })
        {
            using var m = TransformerModel.Load(SharedFixtures.PathOf(model));
            var tok = TokenizerLoader.Load(m.Path);
            var prompt = tok.Encode("Once upon a time", addBos: true);
            var greedy = new SamplingOptions { Temperature = 0 };
            using var cpu = new CpuBackend(m);
            using var gpu = new CudaBackend(GpuTestContext.Context, m, new CudaTransformerOptions { Precision = CudaPrecision.F32 });
            var a = Generator.Generate(cpu, tok, prompt, 48, new Sampler(greedy, m.Shape.Vocab));
            var b = Generator.Generate(gpu, tok, prompt, 48, new Sampler(greedy, m.Shape.Vocab));
            Assert.Equal(a.Ids, b.Ids);
        }
    }

    [GpuFixtureFact]
    public void PositionsMustContinueTheCache()
    {
        using var m = TransformerModel.Load(SharedFixtures.PathOf("stories260k"));
        using var gpu = new CudaBackend(GpuTestContext.Context, m);
        using var c = gpu.CreateCache(16);
        var logits = new float[m.Shape.Vocab];
        gpu.Forward([1, 2], [0, 1], c, logits);
        var e = Assert.Throws<MergeException>(() => gpu.Forward([3], [5], c, logits));
        Assert.Equal("the CUDA backend appends at consecutive positions: expected position 2, got 5", e.Message);
    }
}
