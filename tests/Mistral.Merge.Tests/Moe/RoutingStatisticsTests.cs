using System.Xml.Linq;
using Mistral.Merge.Inference;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

public class RoutingStatisticsTests
{
    [Fact]
    public void RouteIsSoftmaxTopKRenormalizedWithLowerIndexOnTies()
    {
        Span<float> probs = stackalloc float[4]; Span<int> chosen = stackalloc int[2]; Span<float> w = stackalloc float[2];
        Routing.Route(new float[] { 1f, 3f, 2f, 3f }, 2, probs, chosen, w);
        Assert.Equal(new[] { 1, 3 }, chosen.ToArray());
        Assert.Equal(0.5f, w[0]); Assert.Equal(0.5f, w[1]);
        Routing.Route(new float[] { 0f, 0f, 0f, 0f }, 2, probs, chosen, w);
        Assert.Equal(new[] { 0, 1 }, chosen.ToArray());
        Routing.Route(new float[] { 0f, MathF.Log(3f), 0f, 0f }, 2, probs, chosen, w);
        Assert.Equal(new[] { 1, 0 }, chosen.ToArray());
        Assert.Equal(0.75, w[0], 6); Assert.Equal(0.25, w[1], 6);
        Assert.Equal(0.5, probs[1], 6);
    }

    [Fact]
    public void AccumulatesFrequenciesWeightsAndPairs()
    {
        var s = new RoutingStatistics(2, 3, 2);
        // layer 0: token A picks (0,1), token B picks (2,0) with weights 0.75/0.25
        s.Add(0, new float[] { 5, 5, 0, MathF.Log(3f), -50, 2 * MathF.Log(3f) });
        Assert.Equal(2, s.Tokens(0));
        Assert.Equal(0.5, s.SelectionFrequency(0, 0));
        Assert.Equal(0.25, s.SelectionFrequency(0, 1));
        Assert.Equal(0.25, s.SelectionFrequency(0, 2));
        Assert.Equal(2, s.CoSelected(0, 0, 0));
        Assert.Equal(1, s.CoSelected(0, 0, 1));
        Assert.Equal(1, s.CoSelected(0, 2, 0));
        Assert.Equal(0, s.CoSelected(0, 1, 2));
        Assert.Equal((0.5 + 0.25) / 2, s.MeanWeightWhenSelected(0, 0), 6);
        Assert.Equal(0.75 / 2, s.MeanWeight(0, 2), 6);
        Assert.Equal(0, s.Tokens(1));
        Assert.Equal(0, s.SelectionFrequency(1, 0));
        var json = s.ToJson();
        Assert.Equal(0.5, json["selection_frequency"]![0]![0]!.GetValue<double>());
        Assert.Equal(1, json["co_selection"]![0]![0]![1]!.GetValue<long>());
    }

    [Fact]
    public void RowsSumToOneOnRandomLogits()
    {
        var rng = new Random(1);
        var s = new RoutingStatistics(1, 8, 2);
        s.Add(0, Enumerable.Range(0, 8 * 1000).Select(_ => (float)rng.NextDouble()).ToArray());
        Assert.Equal(1.0, s.SelectionFrequencyTable()[0].Sum(), 12);
    }

    [Fact]
    public void BadInputsAreClearErrors()
    {
        Assert.Throws<MergeException>(() => new RoutingStatistics(1, 2, 3));
        var s = new RoutingStatistics(1, 4, 2);
        Assert.Contains("multiple of 4", Assert.Throws<MergeException>(() => s.Add(0, new float[6])).Message);
        Assert.Contains("layer 3", Assert.Throws<MergeException>(() => s.Add(3, new float[4])).Message);
        Assert.Contains("NaN", Assert.Throws<MergeException>(() => s.Add(0, new[] { 0f, float.NaN, 0f, 0f })).Message);
    }

    [Fact]
    public void HeatmapIsWellFormedSvgWithLabelsValuesAndScale()
    {
        var t = new[] { new[] { 0.427, 0.393, 0.034, 0.146 }, new[] { 0.106, 0.141, 0.339, 0.413 } };
        var svg = RoutingHeatmap.Render(t, "stories260k-moe4 <tinystories>");
        var doc = XDocument.Parse(svg);
        var texts = doc.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value).ToList();
        Assert.Contains("layer 0", texts); Assert.Contains("layer 1", texts);
        Assert.Contains("e3", texts);
        Assert.Contains("0.427", texts); Assert.Contains("0.034", texts);
        Assert.Contains("1/E", texts);
        Assert.Contains("stories260k-moe4 <tinystories>", texts);
        Assert.Throws<MergeException>(() => RoutingHeatmap.Render(new[] { new[] { 1.0 }, new[] { 1.0, 2.0 } }, "x"));
    }
}
