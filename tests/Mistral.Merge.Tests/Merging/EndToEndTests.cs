using Mistral.Merge.Models;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Merging;

/// <summary>
/// The example recipes on the stories260k family (real merge partners), each merged through the
/// CLI and compared tensor by tensor against <see cref="Reference"/>.
/// </summary>
public sealed class EndToEndTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private static string Example(string name) => Path.Combine(SharedFixtures.RepoRoot, "examples", name);

    private ModelFolder Merge(string recipe, params string[] extra)
    {
        var outDir = _d[Path.GetFileNameWithoutExtension(recipe)];
        var r = CliRunner.Run(["merge", recipe, outDir, .. extra]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return ModelFolder.Open(outDir);
    }

    private static ModelFolder Fixture(string name) => ModelFolder.Open(SharedFixtures.PathOf(name));

    [FixtureFact]
    public void SlerpStoriesAndWikiPerLayerSchedules()
    {
        using var merged = Merge(Example("stories-slerp.yml"));
        using var a = Fixture("stories260k");
        using var b = Fixture("stories260k-wiki");
        Assert.Equal(a.TensorNames, merged.TensorNames);
        foreach (var name in merged.TensorNames)
        {
            // t: self_attn [0, .5, .3, .7, 1], mlp [1, .5, .7, .3, 0], else 0.5; layer t = k/4; embed/norm t = 0
            double t = TensorNames.TryParseLayer(name, out var layer, out _) ? layer / 4.0 : 0;
            double tv = name.Contains("self_attn") ? Reference.Gradient([0, 0.5, 0.3, 0.7, 1], t)
                      : name.Contains("mlp") ? Reference.Gradient([1, 0.5, 0.7, 0.3, 0], t) : 0.5;
            var x = a.ReadSingle(name);
            var y = b.ReadSingle(name);
            var exp = Reference.Slerp(x, y, tv);
            Reference.AssertClose(name, exp, merged.ReadSingle(name), i => Math.Abs(x[i]) + Math.Abs(y[i]));
        }
        Assert.Equal(DType.F32, merged.Info(TensorNames.Embed).DType);
        Assert.True(File.Exists(Path.Combine(merged.Path, "tokenizer.model")));
    }

    [FixtureFact]
    public void TiesWikiAndCodeWithGradientWeight()
    {
        using var merged = Merge(Example("stories-ties.yml"));
        using var b = Fixture("stories260k");
        using var w = Fixture("stories260k-wiki");
        using var c = Fixture("stories260k-code");
        foreach (var name in merged.TensorNames)
        {
            double t = TensorNames.TryParseLayer(name, out var layer, out _) ? layer / 4.0 : 0;
            var (x0, x1, x2) = (b.ReadSingle(name), w.ReadSingle(name), c.ReadSingle(name));
            double[] weights = [0.5, Reference.Gradient([0.3, 0.7], t)];
            double[] density = [0.5, 0.3];
            var exp = Reference.TaskVectors(x0, [x1, x2], weights,
                (m, d) => { var keep = Reference.TopK(d, (long)(density[m] * d.Length)); return d.Select((_, i) => keep.Contains(i)).ToArray(); },
                rescale: false, consensus: true, normalize: true);
            Reference.AssertClose(name, exp, merged.ReadSingle(name), i => Math.Abs(x0[i]) + Math.Abs(x1[i] - x0[i]) + Math.Abs(x2[i] - x0[i]));
        }
    }

    [FixtureFact]
    public void DareTiesPortableMasksWithSeed()
    {
        using var merged = Merge(Example("stories-dare-ties.yml"), "--seed", "42");
        using var b = Fixture("stories260k");
        using var w = Fixture("stories260k-wiki");
        using var c = Fixture("stories260k-code");
        foreach (var name in merged.TensorNames)
        {
            var (x0, x1, x2) = (b.ReadSingle(name), w.ReadSingle(name), c.ReadSingle(name));
            double[] density = [0.6, 0.4];
            var exp = Reference.TaskVectors(x0, [x1, x2], [0.5, 0.5], (m, d) => Reference.DareMask(42, name, m, d.Length, density[m]),
                rescale: true, consensus: true, normalize: false);
            Reference.AssertClose(name, exp, merged.ReadSingle(name), i => Math.Abs(x0[i]) + 2 * Math.Abs(x1[i] - x0[i]) + 2 * Math.Abs(x2[i] - x0[i]));
        }
    }

    [FixtureFact]
    public void TaskArithmeticBf16OutputOneRounding()
    {
        using var merged = Merge(Example("stories-task-arithmetic.yml"));
        using var b = Fixture("stories260k");
        using var w = Fixture("stories260k-wiki");
        using var c = Fixture("stories260k-code");
        Assert.Contains("\"torch_dtype\": \"bfloat16\"", File.ReadAllText(Path.Combine(merged.Path, "config.json")));
        foreach (var name in merged.TensorNames)
        {
            Assert.Equal(DType.BF16, merged.Info(name).DType);
            var (x0, x1, x2) = (b.ReadSingle(name), w.ReadSingle(name), c.ReadSingle(name));
            double wc = name.Contains("mlp") ? 0.5 : 0.4;
            var exp = Reference.TaskVectors(x0, [x1, x2], [0.6, wc], (_, d) => d.Select(_ => true).ToArray(), false, false, false);
            var got = merged.ReadSingle(name);
            for (int i = 0; i < exp.Length; i++)
            {
                // one rounding to bf16 (8 significant bits): within half a bf16 ulp plus float32 rounding of the terms
                double ulp = Math.Pow(2, Math.Floor(Math.Log2(Math.Max(Math.Abs(exp[i]), 1e-30))) - 7);
                double terms = Math.Abs(x0[i]) + Math.Abs(x1[i] - x0[i]) + Math.Abs(x2[i] - x0[i]);
                Assert.True(Math.Abs(got[i] - exp[i]) <= 0.5 * ulp + 5e-7 * terms + 1e-30, $"{name}[{i}]: {got[i]} vs {exp[i]}");
            }
        }
    }

    [FixtureFact]
    public void PassthroughFrankenmergeRenumbersLayersAndScales()
    {
        using var merged = Merge(Example("stories-passthrough.yml"));
        using var a = Fixture("stories260k");
        using var w = Fixture("stories260k-wiki");
        Assert.Equal(6, merged.Config!.NumHiddenLayers);
        foreach (var name in merged.TensorNames)
        {
            float[] exp;
            if (TensorNames.TryParseLayer(name, out var layer, out var suffix))
            {
                if (layer < 3) exp = a.ReadSingle(name);
                else
                {
                    float scale = suffix.Contains("o_proj") || suffix.Contains("down_proj") ? 0.9f : 1f;
                    exp = w.ReadSingle(TensorNames.Layer(layer - 1, suffix)).Select(v => v * scale).ToArray();
                }
            }
            else exp = (name.Contains("embed") ? a : w).ReadSingle(name);
            Assert.Equal(exp, merged.ReadSingle(name));
        }
    }
}
