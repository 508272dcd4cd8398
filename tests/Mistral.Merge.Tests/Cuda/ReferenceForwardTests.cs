using System.Text.Json;
using Mistral.Merge.Cuda;
using Mistral.Merge.Models;

using Mistral.Merge.Tests.Inference;

namespace Mistral.Merge.Tests.Cuda;

/// <summary>
/// CPU checks of the GPU tests' oracle against independent references (run everywhere): if these pass, the GPU
/// tests compare the kernels against the right semantics (rotate-half RoPE, GQA, tied head, Mixtral routing).
/// </summary>
public class ReferenceForwardTests
{
    [FixtureFact]
    public void MatchesUpstreamReferenceLogitsForStories260k()
    {
        using var folder = ModelFolder.Open(SharedFixtures.PathOf("stories260k"));
        var reference = new ReferenceForward(new ModelFolderWeights(folder));
        using var doc = JsonDocument.Parse(File.ReadAllText(SharedFixtures.PathOf("reference", "stories260K_logits_once_upon_a_time.json")));
        var ids = doc.RootElement.GetProperty("input_token_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var logits = reference.Logits(ids);
        double worst = 0;
        foreach (var step in doc.RootElement.GetProperty("steps").EnumerateArray())
        {
            int pos = step.GetProperty("pos").GetInt32();
            var expected = step.GetProperty("logits").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.Equal(expected.Length, logits[pos].Length);
            for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - logits[pos][i]));
            Assert.Equal(step.GetProperty("argmax").GetInt32(), ArgMax(logits[pos]));
        }
        Assert.True(worst < 1e-4, $"max |logit difference| {worst}");
    }

    [FixtureTheory]
    [InlineData("stories260k")]
    [InlineData("stories260k-moe4")]
    [InlineData("stories260k-moe4-identity")]
    [InlineData("stories260k-bf16")]
    public void MatchesExpectedTop5AtTheLastPromptPosition(string model)
    {
        using var folder = ModelFolder.Open(SharedFixtures.PathOf(model));
        var reference = new ReferenceForward(new ModelFolderWeights(folder));
        var (prompt, topIds, topLogits, _) = Expected(model);
        var last = reference.Logits(prompt)[^1];
        var top = Enumerable.Range(0, last.Length).OrderByDescending(i => last[i]).Take(5).ToArray();
        Assert.Equal(topIds, top);
        for (int i = 0; i < 5; i++) Assert.True(Math.Abs(topLogits[i] - last[top[i]]) < 1e-4, $"{model} top{i}: {last[top[i]]} vs {topLogits[i]}");
    }

    public static (int[] Prompt, int[] TopIds, double[] TopLogits, int[] Greedy) Expected(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(SharedFixtures.PathOf("expected.json")));
        var g = doc.RootElement.GetProperty("models").GetProperty(model).GetProperty("greedy");
        var t5 = g.GetProperty("last_prompt_position_top5");
        return (g.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                t5.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                t5.GetProperty("logits").EnumerateArray().Select(e => e.GetDouble()).ToArray(),
                g.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
    }

    public static int ArgMax(IReadOnlyList<double> v)
    {
        int best = 0;
        for (int i = 1; i < v.Count; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
