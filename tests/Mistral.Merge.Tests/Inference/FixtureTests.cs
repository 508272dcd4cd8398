using System.Text.Json;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Tests.Inference;

/// <summary>
/// The forward pass against the shared fixtures: expected.json (an independent float32 PyTorch
/// reference) and llama2.c's golden outputs for stories260K. All six models × three texts run
/// in the suite (20k tokens each, well under a second per text).
/// </summary>
public class FixtureTests
{
    private static JsonElement Expected => ExpectedDoc.Value.RootElement;
    private static readonly Lazy<JsonDocument> ExpectedDoc = new(() => JsonDocument.Parse(File.ReadAllText(SharedFixtures.PathOf("expected.json"))));

    public static TheoryData<string, string> ModelsAndTexts()
    {
        var d = new TheoryData<string, string>();
        foreach (var m in Models) foreach (var t in new[] { "tinystories-eval.txt", "wiki-eval.txt", "code-eval.txt" }) d.Add(m, t);
        return d;
    }

    private static readonly string[] Models = ["stories260k", "stories260k-bf16", "stories260k-wiki", "stories260k-code", "stories260k-moe4-identity", "stories260k-moe4"];

    public static TheoryData<string> ModelNames() { var d = new TheoryData<string>(); foreach (var m in Models) d.Add(m); return d; }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, int[]> IdCache = new();

    /// <summary>([BOS] + encode(text))[:20000], tokenized once per text.</summary>
    private static int[] Ids(string text) => IdCache.GetOrAdd(text, t =>
        TokenizerLoader.Load(SharedFixtures.PathOf("stories260k")).Encode(File.ReadAllText(SharedFixtures.PathOf("text", t)), addBos: true)[..20000]);

    [FixtureTheory]
    [MemberData(nameof(ModelsAndTexts))]
    public void PerplexityMatchesExpectedJson(string model, string text)
    {
        var e = Expected.GetProperty("models").GetProperty(model).GetProperty("perplexity").GetProperty(text);
        var folder = SharedFixtures.PathOf(model);
        var ids = Ids(text); // every fixture model has the same tok512 tokenizer
        using var m = TransformerModel.Load(folder);
        using var backend = new CpuBackend(m, 2);
        var r = Perplexity.Evaluate(backend, ids, ctx: 256, stride: 256);
        Assert.Equal(e.GetProperty("scored_tokens").GetInt32(), r.Tokens);
        double want = e.GetProperty("perplexity").GetDouble();
        Assert.True(Math.Abs(r.Perplexity / want - 1) < 1e-4, $"{model} on {text}: perplexity {r.Perplexity} vs {want}");
        Assert.True(Math.Abs(r.MeanNll - e.GetProperty("mean_nll").GetDouble()) < 1e-5);
    }

    [FixtureTheory]
    [MemberData(nameof(ModelNames))]
    public void GreedyContinuationMatchesExpectedJson(string model)
    {
        var g = Expected.GetProperty("models").GetProperty(model).GetProperty("greedy");
        var folder = SharedFixtures.PathOf(model);
        var tok = TokenizerLoader.Load(folder);
        var prompt = tok.Encode(g.GetProperty("prompt").GetString()!, addBos: true);
        Assert.Equal(g.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()), prompt);
        var want = g.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        using var m = TransformerModel.Load(folder);
        using var backend = new CpuBackend(m, 2);
        var r = Generator.Generate(backend, tok, prompt, want.Length, new Sampler(new SamplingOptions { Temperature = 0 }, m.Shape.Vocab));
        Assert.Equal(want, r.Ids);
        Assert.Equal(g.GetProperty("text").GetString(), r.Text);
        Assert.Equal(want, Generator.GreedyRecompute(backend, prompt, want.Length, tok.EosId)); // the cache changes nothing

        // the top-5 logits at the last prompt position
        var top = g.GetProperty("last_prompt_position_top5");
        using var cache = backend.CreateCache(prompt.Length);
        var logits = new float[m.Shape.Vocab];
        backend.Forward(prompt, Enumerable.Range(0, prompt.Length).ToArray(), cache, logits);
        var ids = top.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var values = top.GetProperty("logits").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        Assert.Equal(ids, Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).Take(5));
        for (int i = 0; i < 5; i++) Assert.True(Math.Abs(logits[ids[i]] - values[i]) < 1e-4, $"logit of {ids[i]}: {logits[ids[i]]} vs {values[i]}");
    }

    [FixtureFact]
    public void LogitsMatchLlama2cReferenceTo1e4()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(SharedFixtures.PathOf("reference", "stories260K_logits_once_upon_a_time.json")));
        var input = doc.RootElement.GetProperty("input_token_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        using var m = TransformerModel.Load(SharedFixtures.PathOf("stories260k"));
        using var backend = new CpuBackend(m, 2);
        // both ways: one batched prefill, and token by token through the cache
        using var cache = backend.CreateCache(input.Length);
        var batched = new float[input.Length * 512];
        backend.Forward(input, Enumerable.Range(0, input.Length).ToArray(), cache, batched);
        using var cache2 = backend.CreateCache(input.Length);
        var step = new float[512];
        foreach (var s in doc.RootElement.GetProperty("steps").EnumerateArray())
        {
            int pos = s.GetProperty("pos").GetInt32();
            backend.Forward([s.GetProperty("input_token").GetInt32()], [pos], cache2, step);
            var want = s.GetProperty("logits").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            Assert.Equal(s.GetProperty("argmax").GetInt32(), LogMath.ArgMax(step));
            for (int i = 0; i < 512; i++)
            {
                Assert.True(Math.Abs(step[i] - want[i]) < 1e-4, $"pos {pos} logit {i}: {step[i]} vs {want[i]}");
                Assert.True(Math.Abs(batched[pos * 512 + i] - want[i]) < 1e-4, $"batched pos {pos} logit {i}");
            }
        }
    }

    [FixtureTheory]
    [InlineData("bos_only_200")]
    [InlineData("once_upon_a_time_64")]
    [InlineData("once_upon_a_time_256")]
    public void GreedyTextMatchesLlama2c(string key)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(SharedFixtures.PathOf("reference", "stories260K_greedy.json")));
        var r = doc.RootElement.GetProperty(key);
        var prompt = r.GetProperty("prompt_token_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var all = r.GetProperty("token_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var folder = SharedFixtures.PathOf("stories260k");
        var tok = TokenizerLoader.Load(folder);
        using var m = TransformerModel.Load(folder);
        using var backend = new CpuBackend(m, 2);
        var g = Generator.Generate(backend, tok, prompt, all.Length - prompt.Length, new Sampler(new SamplingOptions { Temperature = 0 }, 512));
        Assert.Equal(all[prompt.Length..], g.Ids);
        Assert.Equal(r.GetProperty("text").GetString(), tok.Decode([.. prompt, .. g.Ids]));
    }

    [FixtureFact]
    public void OneWindowPerplexityMatchesLlama2cReference()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(SharedFixtures.PathOf("reference", "stories260K_perplexity.json")));
        using var m = TransformerModel.Load(SharedFixtures.PathOf("stories260k"));
        using var backend = new CpuBackend(m, 2);
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            var ids = entry.Value.GetProperty("token_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            var r = Perplexity.Evaluate(backend, ids, ctx: ids.Length, stride: ids.Length);
            Assert.Equal(entry.Value.GetProperty("n_scored").GetInt32(), r.Tokens);
            double want = entry.Value.GetProperty("perplexity").GetDouble();
            Assert.True(Math.Abs(r.Perplexity / want - 1) < 1e-4, $"{entry.Name}: {r.Perplexity} vs {want}");
        }
    }

    [FixtureFact]
    public void IdentityMoeEqualsItsDenseBaseAndCompareReportsZeroDivergence()
    {
        var ids = Ids("wiki-eval.txt")[..1024];
        using var a = TransformerModel.Load(SharedFixtures.PathOf("stories260k"));
        using var b = TransformerModel.Load(SharedFixtures.PathOf("stories260k-moe4-identity"));
        using var ba = new CpuBackend(a, 2);
        using var bb = new CpuBackend(b, 2);
        var r = Compare.Run(ba, bb, ids, 256, 256);
        Assert.True(r.MaxKl < 1e-6, $"max KL {r.MaxKl}"); // float rounding only (the fixture README: max |Δlogit| 1.8e-5)
        Assert.Equal(1.0, r.Top1Agreement);
        Assert.True(Math.Abs(r.A.MeanNll - r.B.MeanNll) < 1e-6);
        Assert.Equal(Perplexity.Evaluate(ba, ids, 256, 256).MeanNll, r.A.MeanNll, 9);
    }
}
