using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Merging;

/// <summary>
/// The example recipes of the methods in "More methods" on the stories260k family, each merged through the CLI and
/// compared tensor by tensor against <see cref="Reference"/> (skipped without ../shared).
/// </summary>
public sealed class MoreMethodsEndToEndTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private ModelFolder Merge(string example)
    {
        var outDir = _d[Path.GetFileNameWithoutExtension(example)];
        var r = CliRunner.Run(["merge", Path.Combine(SharedFixtures.RepoRoot, "examples", example), outDir]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return ModelFolder.Open(outDir);
    }

    /// <summary>Merges the example and compares every tensor with <paramref name="expected"/> of the inputs (base first).</summary>
    private void Check(string example, string[] fixtures, Func<string, float[][], long[], float[]> expected, float tol = 1e-6f)
    {
        using var merged = Merge(example);
        var inputs = fixtures.Select(f => ModelFolder.Open(SharedFixtures.PathOf(f))).ToArray();
        try
        {
            Assert.Equal(inputs[0].TensorNames, merged.TensorNames);
            foreach (var name in merged.TensorNames)
            {
                Assert.Equal(DType.F32, merged.Info(name).DType);
                var x = inputs.Select(m => m.ReadSingle(name)).ToArray();
                MethodHarness.Near(expected(name, x, merged.Info(name).Shape), merged.ReadSingle(name), tol);
            }
        }
        finally
        {
            foreach (var m in inputs) m.Dispose();
        }
    }

    private static readonly string[] Three = ["stories260k", "stories260k-wiki", "stories260k-code"];

    [FixtureFact]
    public void SceExampleMatchesTheReference()
        => Check("stories-sce.yml", Three, (_, x, _) => Reference.Sce(x[0], [x[1], x[2]], 0.5));

    [FixtureFact]
    public void MultiSlerpExampleMatchesTheReference()
        => Check("stories-multislerp.yml", Three, (_, x, _) => Reference.MultiSlerp(x[0], [x[1], x[2]], [0.6, 0.4], normalize: true));

    [FixtureFact]
    public void KarcherExampleMatchesTheElementwiseReference()
        => Check("stories-karcher.yml", Three, (_, x, _) => Reference.Karcher(x, 10, 1e-5));

    [FixtureFact]
    public void NearSwapExampleMatchesTheReference()
        => Check("stories-nearswap.yml", ["stories260k", "stories260k-wiki"], (_, x, _) => Reference.NearSwap(x[0], x[1], 0.001), 0);

    [FixtureFact]
    public void ArceeFusionExampleMatchesTheReference()
        => Check("stories-arcee-fusion.yml", ["stories260k", "stories260k-code"],
            (name, x, shape) => Reference.ArceeFusion(x[0], x[1], (int)(x[0].Length / shape[^1]), (int)shape[^1], 0, name), 0);

    [FixtureFact]
    public void RamExampleMatchesTheReference()
        => Check("stories-ram.yml", Three, (_, x, _) => Reference.Ram(x[0], [x[1], x[2]], 1e-5, plus: false), 0);

    [FixtureFact]
    public void RamPlusTlExampleMatchesTheReference()
        => Check("stories-ramplus-tl.yml", Three, (_, x, _) => Reference.Ram(x[0], [x[1], x[2]], 1e-5, plus: true, r: 0.1, alpha: 0.2), 0);
}
