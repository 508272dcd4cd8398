using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Architectures;

/// <summary>The declarations themselves: what they match, the names they give, and that nothing else spells a tensor name.</summary>
public sealed class ArchitectureDeclarationTests
{
    [Fact]
    public void EveryDeclarationIsRegisteredInOrder()
    {
        Assert.Equal(["mistral", "mixtral", "llama", "qwen2"], Architecture.All.Select(a => a.Name));
        Assert.Equal("MistralForCausalLM, MixtralForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM", Architecture.SupportedList);
        Assert.Same(Architecture.Mistral, Architecture.Default);
    }

    [Theory]
    [InlineData("MistralForCausalLM", "mistral", "mistral")]
    [InlineData("MixtralForCausalLM", "mixtral", "mixtral")]
    [InlineData("LlamaForCausalLM", "llama", "llama")]
    [InlineData("Qwen2ForCausalLM", "qwen2", "qwen2")]
    [InlineData("", "qwen2", "qwen2")]                       // no architectures key: model_type decides
    [InlineData("", "llama", "llama")]
    [InlineData("LlamaForCausalLM", "mistral", "llama")]     // architectures[0] wins over model_type
    [InlineData("GPT2LMHeadModel", "gpt2", null)]
    [InlineData("GPT2LMHeadModel", "mistral", null)]         // a named architecture that no declaration matches is not guessed from model_type
    [InlineData("", "", null)]
    public void AConfigMatchesByArchitecturesThenModelType(string hf, string modelType, string? expected)
    {
        var json = new JsonObject { ["hidden_size"] = 8 };
        if (hf.Length > 0) json["architectures"] = new JsonArray(hf);
        if (modelType.Length > 0) json["model_type"] = modelType;
        Assert.Equal(expected, ModelConfig.FromJson(json).Architecture?.Name);
    }

    [Fact]
    public void NamesComeFromTheTemplates()
    {
        var q = Architecture.Qwen2;
        Assert.Equal("model.layers.7.self_attn.q_proj.bias", q.Layer(7, q.QBias!));
        Assert.True(q.HasAttentionBias);
        Assert.False(Architecture.Llama.HasAttentionBias);
        Assert.True(q.TryParseLayer("model.layers.12.self_attn.v_proj.bias", out var l, out var suffix));
        Assert.Equal((12, "self_attn.v_proj.bias"), (l, suffix));
        Assert.False(q.TryParseLayer("model.norm.weight", out _, out _));

        var m = Architecture.Mixtral;
        Assert.Equal("model.layers.3.block_sparse_moe.experts.5.w3.weight", m.Layer(3, Architecture.Expert(m.ExpertUp!, 5)));
        Assert.True(m.TryParseExpert("block_sparse_moe.experts.5.w2.weight", out var e, out var w));
        Assert.Equal((5, "w2"), (e, w));
        Assert.False(m.TryParseExpert("block_sparse_moe.gate.weight", out _, out _));
        Assert.False(Architecture.Mistral.TryParseExpert("block_sparse_moe.experts.5.w2.weight", out _, out _));
        Assert.Equal("block_sparse_moe.experts", m.ExpertsModule);
        Assert.Same(Architecture.Mistral, Architecture.Named(m.DenseCounterpart!));
    }

    [Fact]
    public void NaturalOrderIsEmbeddingLayersByNumberThenHead()
    {
        var names = new[] { "lm_head.weight", "model.layers.10.mlp.up_proj.weight", "model.norm.weight", "model.layers.2.self_attn.q_proj.bias", "model.embed_tokens.weight" };
        Assert.Equal(["model.embed_tokens.weight", "model.layers.2.self_attn.q_proj.bias", "model.layers.10.mlp.up_proj.weight", "lm_head.weight", "model.norm.weight"],
            Architecture.Qwen2.SortNatural(names));
    }

    /// <summary>
    /// Adding an architecture is one declaration: no library or CLI source file outside <c>Models/Architectures/</c>
    /// holds a string literal that spells (part of) an HF tensor name; they all ask a declaration.
    /// </summary>
    [Fact]
    public void OnlyDeclarationsSpellTensorNames()
    {
        var fragment = new Regex(@"""[^""\n]*(self_attn|mlp\.|embed_tokens|lm_head\.|block_sparse_moe|input_layernorm|post_attention_layernorm|model\.norm|model\.layers|_proj\.|rotary_emb)[^""\n]*""");
        var violations = new List<string>();
        foreach (var project in new[] { "Mistral.Merge", "Mistral.Merge.Cli" })
        {
            var root = Path.Combine(SharedFixtures.RepoRoot, "src", project);
            foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
            {
                var rel = Path.GetRelativePath(root, file).Replace('\\', '/');
                if (rel.StartsWith("obj/", StringComparison.Ordinal) || rel.StartsWith("bin/", StringComparison.Ordinal) || rel.StartsWith("Models/Architectures/", StringComparison.Ordinal)) continue;
                var lines = File.ReadAllLines(file);
                for (int i = 0; i < lines.Length; i++)
                    if (!lines[i].TrimStart().StartsWith("//", StringComparison.Ordinal) && fragment.Match(lines[i]) is { Success: true } hit)
                        violations.Add($"{project}/{rel}:{i + 1}: {hit.Value}");
            }
        }
        Assert.True(violations.Count == 0, "tensor names outside Models/Architectures/:\n" + string.Join("\n", violations));
    }
}
