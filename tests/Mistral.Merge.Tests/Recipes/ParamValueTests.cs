using Mistral.Merge.Recipes;

namespace Mistral.Merge.Tests.Recipes;

public class ParamValueTests
{
    private static readonly Mark M = new(1, 1);

    [Fact]
    public void GradientWorkedExampleLayer8Of32()
    {
        // t = 8/31, pos = 4t = 1.0323, i = 1, f = 0.0323 → (1−f)·0.5 + f·0.3 = 0.49355
        var g = new GradientValue([0, 0.5, 0.3, 0.7, 1], M);
        Assert.Equal(0.49355, Math.Round((double)g.Resolve("x", 8.0 / 31)!, 5));
        Assert.Equal(0.0, (double)g.Resolve("x", 0)!);
        Assert.Equal(1.0, (double)g.Resolve("x", 1)!);
        Assert.Equal(0.3, (double)g.Resolve("x", 0.5)!, 15);
    }

    [Fact]
    public void ConditionsFirstCaseSensitiveSubstringWins()
    {
        var c = new ConditionalValue([
            ("self_attn", new GradientValue([0, 1], M)),
            ("mlp", new ScalarValue(0.25, M)),
            (null, new ScalarValue(0.5, M)),
        ], M);
        Assert.Equal(0.75, c.Resolve("model.layers.3.self_attn.q_proj.weight", 0.75));
        Assert.Equal(0.25, c.Resolve("model.layers.3.mlp.up_proj.weight", 0.75));
        Assert.Equal(0.5, c.Resolve("model.layers.3.MLP.up_proj.weight", 0.75));
        Assert.Null(new ConditionalValue([("mlp", new ScalarValue(1.0, M))], M).Resolve("model.norm.weight", 0));
        Assert.Equal(2.0, new ConditionalValue([("*", new ScalarValue(2.0, M))], M).Resolve("anything", 0));
    }

    [Fact]
    public void NonNumericListIndexesByT()
    {
        var v = new IndexedValue([true, false, true], M);
        Assert.Equal(true, v.Resolve("x", 0));
        Assert.Equal(false, v.Resolve("x", 0.6));   // int(0.6·2) = 1
        Assert.Equal(true, v.Resolve("x", 1));
    }

    [Fact]
    public void ParsedRecipeKeepsTypesAndPositions()
    {
        var problems = new RecipeProblems("r.yml");
        var r = RecipeParser.Parse("""
            merge_method: slerp
            base_model: a
            models:
              - model: a
              - model: b
            parameters:
              t:
                - filter: self_attn
                  value: [0, 0.5, 0.3, 0.7, 1]
                - value: 0.5
              normalize: yes
            dtype: bfloat16
            """, "r.yml", problems);
        Assert.False(problems.Any, string.Join("\n", problems.Lines));
        Assert.True(r.FromModels);
        Assert.Equal(["a", "b"], r.Slices[0].Sources.Select(s => s.Model.Text));
        Assert.Equal(new Mark(7, 3), r.Parameters.Items["t"].KeyMark);
        Assert.Equal(true, r.Parameters.Items["normalize"].Value.Resolve("x", 0));
        Assert.Equal(DType.BF16, r.DType);
        Assert.Equal(0.49355, Math.Round((double)r.Parameters.Items["t"].Value.Resolve("model.layers.8.self_attn.o_proj.weight", 8.0 / 31)!, 5));
    }

    [Fact]
    public void BaseModelNotListedIsAppendedLast()
    {
        var problems = new RecipeProblems("r.yml");
        var r = RecipeParser.Parse("merge_method: ties\nbase_model: base\nmodels:\n  - model: x\n    parameters: {weight: 1}\n", "r.yml", problems);
        Assert.Equal(["x", "base"], r.Slices[0].Sources.Select(s => s.Model.Text));
    }
}
