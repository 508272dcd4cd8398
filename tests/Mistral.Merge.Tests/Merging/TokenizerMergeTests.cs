using System.Text.Json.Nodes;
using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Planning;
using Mistral.Merge.Recipes;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Merging;

/// <summary>
/// Tokenizer merging on tiny models with hand-written tokenizers. Model a (6 rows): &lt;unk&gt; &lt;s&gt; &lt;/s&gt; a b ab,
/// and zz at id 6 (beyond its rows: stripped), merges "a b" and "z z". Model b (7 rows): &lt;unk&gt; &lt;s&gt; &lt;/s&gt; b c a,
/// and the added special &lt;tool&gt; (lstrip) at 6. Model c (5 rows, only tokenizer.model): &lt;unk&gt; &lt;s&gt; &lt;/s&gt; c d and
/// the user-defined &lt;x&gt; at 5 (beyond its rows). Expected rows are worked out by hand in each test.
/// </summary>
public sealed class TokenizerMergeTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private const string Specials = """{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}, {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}, {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}""";

    public TokenizerMergeTests()
    {
        TinyModels.Write(_d["a"], 1, vocab: 6);
        File.WriteAllText(Path.Combine(_d["a"], "tokenizer.json"), """
            {"version": "1.0", "added_tokens": [SPECIALS],
             "model": {"type": "BPE", "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "a": 3, "b": 4, "ab": 5, "zz": 6}, "merges": ["a b", "z z"]}}
            """.Replace("SPECIALS", Specials));
        File.WriteAllText(Path.Combine(_d["a"], "tokenizer_config.json"), """{"add_bos_token": true, "added_tokens_decoder": {}}""");
        File.WriteAllText(Path.Combine(_d["a"], "special_tokens_map.json"), """{"bos_token": "<s>"}""");
        TinyModels.Write(_d["b"], 2, vocab: 7);
        File.WriteAllText(Path.Combine(_d["b"], "tokenizer.json"), """
            {"version": "1.0", "added_tokens": [SPECIALS, {"id": 6, "content": "<tool>", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": true}],
             "model": {"type": "BPE", "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "b": 3, "c": 4, "a": 5}, "merges": []}}
            """.Replace("SPECIALS", Specials));
        TinyModels.Write(_d["c"], 3, vocab: 5);
        SentencePieceModelBuilder.WithSpecials(bytes: false).Add("c").Add("d").Add("<x>", 0, PieceType.UserDefined).WriteFolder(_d["c"]);
    }

    private MergePlan Plan(string yaml) => MergePlanner.PlanFile(TinyModels.Recipe(_d.Path, yaml), new PlanOptions { HubCache = _d["hub"] });

    private float[] Row(string model, int row, string tensor = "model.embed_tokens.weight")
    {
        using var f = ModelFolder.Open(_d[model]);
        return f.ReadSingle(tensor).AsSpan(row * 8, 8).ToArray();
    }

    private static float[] Zeros => new float[8];

    private static float[] Mean(params float[][] rows)
    {
        var m = new float[8];
        for (int c = 0; c < 8; c++) m[c] = (float)(rows.Sum(r => (double)r[c]) / rows.Length);
        return m;
    }

    /// <summary>The matrix input <paramref name="i"/> of the task gets, row by row.</summary>
    private static float[][] Matrix(MergePlan plan, string tensor, int i)
    {
        var task = plan.Tasks.Single(t => t.OutputName == tensor);
        int rows = (int)task.Shape[0], cols = (int)task.Shape[1];
        var m = new float[rows * cols];
        task.Rows!.Fill(task.Inputs, i, 0, rows, cols, m);
        return Enumerable.Range(0, rows).Select(r => m.AsSpan(r * cols, cols).ToArray()).ToArray();
    }

    private static void Rows(float[][] expected, float[][] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int r = 0; r < expected.Length; r++) Assert.Equal(expected[r], actual[r]);
    }

    [Fact]
    public void UnionAppendsOtherModelsTokensThenAddedTokensAndMapsEveryRow()
    {
        using var plan = Plan("merge_method: linear\nbase_model: a\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\ntokenizer_source: union\n");
        var tok = plan.Tokenizer!;
        Assert.Equal(new[] { "<unk>", "<s>", "</s>", "a", "b", "ab", "c", "<tool>" }, tok.Tokens);
        Assert.Equal(8, tok.Rows);
        Assert.Equal(AddedToken.Plain("c", 6), tok.Added[6]);
        Assert.Equal(new AddedToken("<tool>", 7, true, LStrip: true), tok.Added[7]);
        Assert.Equal(new[] { "zz" }, tok.Stripped);
        // ab only in a, c and <tool> only in b: the one model that has it.
        Rows([Row("a", 0), Row("a", 1), Row("a", 2), Row("a", 3), Row("a", 4), Row("a", 5), Row("b", 4), Row("b", 6)], Matrix(plan, "model.embed_tokens.weight", 0));
        Rows([Row("b", 0), Row("b", 1), Row("b", 2), Row("b", 5), Row("b", 3), Row("a", 5), Row("b", 4), Row("b", 6)], Matrix(plan, "model.embed_tokens.weight", 1));
        Assert.Equal(Row("b", 5, "lm_head.weight"), Matrix(plan, "lm_head.weight", 1)[3]);
        Assert.Equal(Row("b", 4, "lm_head.weight"), Matrix(plan, "lm_head.weight", 0)[6]);
    }

    [Fact]
    public void UnionOfThreeWithoutBaseModelTakesTheMeanOfTheModelsThatHaveAToken()
    {
        using var plan = Plan("merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\n  - model: c\n    parameters: {weight: 1}\ntokenizer:\n  source: union\n");
        var tok = plan.Tokenizer!;
        Assert.Equal(new[] { "<unk>", "<s>", "</s>", "a", "b", "ab", "c", "d", "<tool>" }, tok.Tokens);
        Assert.Equal(new[] { 0, 1, 2, 6, 7, 8 }, tok.Added.Keys);
        var embed = "model.embed_tokens.weight";
        Rows([Row("a", 0), Row("a", 1), Row("a", 2), Row("a", 3), Row("a", 4), Row("a", 5), Mean(Row("b", 4), Row("c", 3)), Row("c", 4), Row("b", 6)], Matrix(plan, embed, 0));
        Rows([Row("c", 0), Row("c", 1), Row("c", 2), Mean(Row("a", 3), Row("b", 5)), Mean(Row("a", 4), Row("b", 3)), Row("a", 5), Row("c", 3), Row("c", 4), Row("b", 6)], Matrix(plan, embed, 2));
    }

    /// <summary>s: only tokenizer.model (&lt;unk&gt; &lt;s&gt; &lt;/s&gt; c d), with &lt;tool&gt; (rstrip, not special) at 5 in
    /// tokenizer_config.json and &lt;y&gt; at 6 in added_tokens.json; 7 rows.</summary>
    private void SentencePieceWithAddedTokens()
    {
        TinyModels.Write(_d["s"], 6, vocab: 7);
        SentencePieceModelBuilder.WithSpecials(bytes: false).Add("c").Add("d").WriteFolder(_d["s"], """
            {"added_tokens_decoder": {"5": {"content": "<tool>", "single_word": false, "lstrip": false, "rstrip": true, "normalized": false, "special": false}}}
            """);
        File.WriteAllText(Path.Combine(_d["s"], "added_tokens.json"), """{"<y>": 6}""");
    }

    [Fact]
    public void ASentencePieceVocabularyAddsTheConfigsAndAddedTokensJsonEntries()
    {
        SentencePieceWithAddedTokens();
        var v = Vocabulary.Read(_d["s"])!;
        Assert.False(v.FromJson);
        Assert.Equal(new[] { "<unk>", "<s>", "</s>", "c", "d", "<tool>", "<y>" }, v.ById().Select(kv => kv.Key));
        Assert.Equal(new[] { new AddedToken("<unk>", 0, true), new AddedToken("<s>", 1, true), new AddedToken("</s>", 2, true),
            new AddedToken("<tool>", 5, false, RStrip: true), AddedToken.Plain("<y>", 6) }, v.Added.Values);
    }

    [Fact]
    public void UnionKeepsTheFlagsOfAnAddedTokensFirstOccurrence()
    {
        SentencePieceWithAddedTokens();
        const string Models = "merge_method: linear\nmodels:\n  - model: {0}\n    parameters: {{weight: 1}}\n  - model: {1}\n    parameters: {{weight: 1}}\ntokenizer_source: union\n";
        using (var plan = Plan(string.Format(System.Globalization.CultureInfo.InvariantCulture, Models, "s", "b")))
        {
            Assert.Equal(new[] { "<unk>", "<s>", "</s>", "c", "d", "<tool>", "<y>", "b", "a" }, plan.Tokenizer!.Tokens);
            Assert.Equal(new AddedToken("<tool>", 5, false, RStrip: true), plan.Tokenizer.Added[5]);
        }
        using (var plan = Plan(string.Format(System.Globalization.CultureInfo.InvariantCulture, Models, "b", "s")))
        {
            Assert.Equal(new[] { "<unk>", "<s>", "</s>", "b", "c", "a", "<tool>", "d", "<y>" }, plan.Tokenizer!.Tokens);
            Assert.Equal(new AddedToken("<tool>", 6, true, LStrip: true), plan.Tokenizer.Added[6]);
            Assert.Equal(AddedToken.Plain("<y>", 8), plan.Tokenizer.Added[8]);
            Assert.Equal(AddedToken.Plain("d", 7), plan.Tokenizer.Added[7]);
        }
    }

    [Fact]
    public void BaseWithTokensZeroForceModelTokenAndPaddingFillsEveryRowByItsRule()
    {
        using var plan = Plan("""
            merge_method: linear
            base_model: a
            models:
              - model: a
                parameters: {weight: 1}
              - model: b
                parameters: {weight: 1}
            tokenizer:
              source: base
              pad_to_multiple_of: 4
              tokens:
                "<new>": {source: {kind: model_token, model: b, token_id: 6}}
                a: {source: {kind: zero}, force: true}
                b: {source: b, force: true}
                ab: {source: {kind: model_token, model: b, token: c}}
            """);
        var tok = plan.Tokenizer!;
        Assert.Equal(new[] { "<unk>", "<s>", "</s>", "a", "b", "ab", "<new>" }, tok.Tokens);
        Assert.Equal(8, tok.Rows);
        float[][] a = [Row("a", 0), Row("a", 1), Row("a", 2), Zeros, Row("b", 3), Row("a", 5), Row("b", 6)];
        float[][] b = [Row("b", 0), Row("b", 1), Row("b", 2), Zeros, Row("b", 3), Row("b", 4), Row("b", 6)];
        Rows([.. a, Mean(a)], Matrix(plan, "model.embed_tokens.weight", 0));
        Rows([.. b, Mean(b)], Matrix(plan, "model.embed_tokens.weight", 1));
        Assert.Equal(8, plan.OutputVocab);
    }

    [Fact]
    public void ModelSourceTakesTheWholeSentencePieceTokenizerAndZerosATokenNoModelHas()
    {
        using var plan = Plan("merge_method: linear\nbase_model: a\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: c\n    parameters: {weight: 1}\ntokenizer_source: c\n");
        Assert.Equal(new[] { "<unk>", "<s>", "</s>", "c", "d", "<x>" }, plan.Tokenizer!.Tokens);
        Rows([Row("a", 0), Row("a", 1), Row("a", 2), Row("c", 3), Row("c", 4), Zeros], Matrix(plan, "model.embed_tokens.weight", 0));
        Rows([Row("c", 0), Row("c", 1), Row("c", 2), Row("c", 3), Row("c", 4), Zeros], Matrix(plan, "model.embed_tokens.weight", 1));
    }

    [Fact]
    public void UnionMergeWritesTokenizerFilesThatMatchTheEmbeddingRows()
    {
        var recipe = TinyModels.Recipe(_d.Path, "merge_method: linear\nbase_model: a\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 0}\ntokenizer_source: union\n");
        var r = CliRunner.Run("merge", recipe, "--dry-run");
        Assert.Contains("\ntokenizer: union on a's files: 8 tokens (5 added), 8 embedding rows\n", r.Stdout);
        r = CliRunner.Run("merge", recipe, _d["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(_d["out"], "tokenizer.json")))!;
        Assert.Equal("""{"<unk>":0,"<s>":1,"</s>":2,"a":3,"b":4,"ab":5}""", JsonText.Write(json["model"]!["vocab"]!, indented: false));
        Assert.Equal("""["a b"]""", JsonText.Write(json["model"]!["merges"]!, indented: false));
        Assert.Equal(new[] { 0, 1, 2, 6, 7 }, json["added_tokens"]!.AsArray().Select(a => (int)a!["id"]!));
        Assert.Equal("""{"id":7,"content":"<tool>","single_word":false,"lstrip":true,"rstrip":false,"normalized":false,"special":true}""", JsonText.Write(json["added_tokens"]![4]!, indented: false));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(_d["out"], "tokenizer_config.json")))!;
        Assert.True((bool)config["add_bos_token"]!);
        Assert.Equal("""{"content":"c","single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":false}""", JsonText.Write(config["added_tokens_decoder"]!["6"]!, indented: false));
        Assert.Equal("""{"bos_token": "<s>"}""", File.ReadAllText(Path.Combine(_d["out"], "special_tokens_map.json")));
        Assert.Equal(8, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(_d["out"], "config.json")))!["vocab_size"]!);
        using var merged = ModelFolder.Open(_d["out"]);
        Assert.Equal([8L, 8L], merged.Info("model.embed_tokens.weight").Shape);
        var embed = merged.ReadSingle("model.embed_tokens.weight");
        float[][] expected = [Row("a", 0), Row("a", 1), Row("a", 2), Row("a", 3), Row("a", 4), Row("a", 5), Row("b", 4), Row("b", 6)];
        for (int t = 0; t < 8; t++) Assert.Equal(expected[t], embed.AsSpan(t * 8, 8).ToArray());
    }

    [Fact]
    public void ASentencePieceOnlyDonorIsCopiedWithItsAddedTokensInTheConfig()
    {
        TinyModels.Write(_d["s"], 6, vocab: 5);
        SentencePieceModelBuilder.WithSpecials(bytes: false).Add("c").Add("d").WriteFolder(_d["s"]);
        var recipe = TinyModels.Recipe(_d.Path, "merge_method: linear\nbase_model: s\nmodels:\n  - model: s\n    parameters: {weight: 1}\n  - model: a\n    parameters: {weight: 1}\ntokenizer_source: union\n");
        var r = CliRunner.Run("merge", recipe, _d["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(_d["s"], "tokenizer.model")), File.ReadAllBytes(Path.Combine(_d["out"], "tokenizer.model")));
        Assert.False(File.Exists(Path.Combine(_d["out"], "tokenizer.json")));
        // s has <unk> <s> </s> c d; a adds a b ab as plain added tokens.
        var decoder = JsonNode.Parse(File.ReadAllText(Path.Combine(_d["out"], "tokenizer_config.json")))!["added_tokens_decoder"]!.AsObject();
        Assert.Equal(new[] { "0", "1", "2", "5", "6", "7" }, decoder.Select(kv => kv.Key));
        Assert.Equal("ab", (string)decoder["7"]!["content"]!);
        Assert.Equal(8, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(_d["out"], "config.json")))!["vocab_size"]!);
    }

    [Fact]
    public void ATokenizerThatWouldNotFitItsEmbeddingIsNeverWritten()
    {
        // The stripped <x> stays in c's tokenizer.model, which cannot be rewritten: id 5 on 5 rows.
        var recipe = TinyModels.Recipe(_d.Path, "merge_method: linear\nbase_model: c\nmodels:\n  - model: c\n    parameters: {weight: 1}\ntokenizer_source: base\n");
        var r = CliRunner.Run("merge", recipe, _d["out"]);
        Assert.Equal(1, r.ExitCode);
        Assert.EndsWith($"error: {_d["out"]}: not written: its tokenizer has token '<x>' with id 5 but model.embed_tokens.weight has 5 rows (the tokenizer would not fit the model)", r.Stderr.Trim().Replace('\r', '\n'));
        Assert.False(Directory.Exists(_d["out"]));
    }

    [Fact]
    public void ACopiedTokenizerThatWouldNotFitTheEmbeddingIsRefusedWithTheFix()
    {
        // a's own tokenizer.json holds zz at id 6 on its 6 rows: copied as it is, it would not fit.
        var r = CliRunner.Run("merge", TinyModels.Recipe(_d.Path, "merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n"), _d["out"]);
        Assert.Equal(1, r.ExitCode);
        Assert.EndsWith($"error: {_d["out"]}: not written: its tokenizer has token 'zz' with id 6 but model.embed_tokens.weight has 6 rows (the tokenizer would not fit the model; set tokenizer_source (base, union or a model) to build one that fits)", r.Stderr.Trim().Replace('\r', '\n'));
        Assert.False(Directory.Exists(_d["out"]));
        Assert.Equal(0, CliRunner.Run("merge", TinyModels.Recipe(_d.Path, "merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\ntokenizer_source: base\n"), _d["out"]).ExitCode);
    }

    [Fact]
    public void TiedEmbeddingsGiveTheLmHeadRowsOfAModelWithoutOne()
    {
        TinyModels.Write(_d["t"], 4, vocab: 7, tied: true);
        File.Copy(Path.Combine(_d["b"], "tokenizer.json"), Path.Combine(_d["t"], "tokenizer.json"));
        using var plan = Plan("merge_method: linear\nbase_model: a\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: t\n    parameters: {weight: 1}\ntokenizer_source: union\n");
        Rows([Row("t", 0), Row("t", 1), Row("t", 2), Row("t", 5), Row("t", 3), Row("a", 5, "lm_head.weight"), Row("t", 4), Row("t", 6)], Matrix(plan, "lm_head.weight", 1));
    }

    /// <summary>Mistral v3's tokenizer.model is v1's 32000 pieces after 768 new control and user-defined pieces (ids 3–770):
    /// their union on v1 appends those 768 in v3's order, so v3's id k is output id 32000 + k − 3, and v1's id k ≥ 3 is v3's k + 768.</summary>
    [FixtureFact]
    public void UnionOfTheRealMistralV1AndV3TokenizersFitsItsEmbeddingRows()
    {
        TinyModels.Write(_d["v1"], 7, layers: 1, vocab: 32000);
        File.Copy(SharedFixtures.PathOf("tokenizers", "mistral-v1", "tokenizer.model"), Path.Combine(_d["v1"], "tokenizer.model"));
        TinyModels.Write(_d["v3"], 8, layers: 1, vocab: 32768);
        File.Copy(SharedFixtures.PathOf("tokenizers", "mistral-v3", "tokenizer.model"), Path.Combine(_d["v3"], "tokenizer.model"));
        const string Yaml = "merge_method: linear\nbase_model: v1\nmodels:\n  - model: v1\n    parameters: {weight: 1}\n  - model: v3\n    parameters: {weight: 0}\ntokenizer_source: union\n";
        using (var plan = Plan(Yaml))
        {
            Assert.Equal(32768, plan.Tokenizer!.Rows);
            Assert.Equal("[INST]", plan.Tokenizer.Tokens[32000]);
            var v3 = Matrix(plan, "model.embed_tokens.weight", 1);
            Assert.Equal(Row("v3", 771), v3[3]);
            Assert.Equal(Row("v3", 3), v3[32000]);
            Assert.Equal(Row("v3", 770), v3[32767]);
        }
        var r = CliRunner.Run("merge", TinyModels.Recipe(_d.Path, Yaml), _d["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var decoder = JsonNode.Parse(File.ReadAllText(Path.Combine(_d["out"], "tokenizer_config.json")))!["added_tokens_decoder"]!.AsObject();
        Assert.Equal(3 + 768, decoder.Count);
        Assert.Equal("""{"content":"[INST]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}""", JsonText.Write(decoder["32000"]!, indented: false));
        var back = Vocabulary.Read(_d["out"])!;
        Assert.Equal(32768, back.Count);
        Assert.Equal(32767, back.Ids.Values.Max());
        using var merged = ModelFolder.Open(_d["out"]);
        var embed = merged.ReadSingle("model.embed_tokens.weight");
        Assert.Equal(32768 * 8, embed.Length);
        Assert.Equal(Row("v3", 3), embed.AsSpan(32000 * 8, 8).ToArray());
        Assert.Equal(Row("v1", 5), embed.AsSpan(5 * 8, 8).ToArray());
    }

    [Theory]
    [InlineData("tokenizer_source: base\ntokenizer:\n  source: base\n", "recipe.yml:9:1: give either 'tokenizer_source' or 'tokenizer', not both")]
    [InlineData("tokenizer:\n  tokens:\n    x: {source: {kind: zeros}}\n", "recipe.yml:10:17: tokenizer.tokens 'x': unknown source kind 'zeros' (expected model_token or zero)")]
    [InlineData("tokenizer:\n  tokens:\n    x: {source: {kind: model_token, model: b, token_id: 1, token: a}}\n", "recipe.yml:10:17: tokenizer.tokens 'x': a model_token source needs exactly one of 'token_id' and 'token'")]
    [InlineData("tokenizer:\n  tokens:\n    x: {force: true}\n", "recipe.yml:10:5: tokenizer.tokens 'x' has no source (a model, {kind: model_token, ...} or {kind: zero})")]
    [InlineData("tokenizer:\n  pad_to_multiple_of: 0\n", "recipe.yml:9:23: tokenizer.pad_to_multiple_of must be a positive integer, got 0")]
    [InlineData("tokenizer:\n  tokens:\n    x: {source: {kind: model_token, model: b, token_id: -1}}\n", "recipe.yml:10:57: tokenizer.tokens 'x': token_id must be a non-negative integer")]
    [InlineData("tokenizer:\n  tokens:\n    x: {source: zzz}\n", "recipe.yml:10:5: tokenizer.tokens 'x': model 'zzz' is not an input of model.embed_tokens.weight")]
    [InlineData("tokenizer:\n  tokens:\n    x: {source: {kind: model_token, model: b, token_id: 7}}\n", "recipe.yml:10:5: tokenizer.tokens 'x': model 'b' has no token_id 7 (rows: 7)")]
    [InlineData("tokenizer:\n  tokens:\n    x: {source: b}\n", "recipe.yml:10:5: tokenizer.tokens 'x': model 'b' has no token 'x' (rows: 7)")]
    [InlineData("tokenizer_source: nope\n", "recipe.yml:8:19: model 'nope' not found")]
    public void BadTokenizerSettingsAreRecipeErrorsWithTheirPosition(string tokenizer, string expected)
    {
        var path = TinyModels.Recipe(_d.Path, "merge_method: linear\nbase_model: a\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\n" + tokenizer);
        var e = Assert.Throws<RecipeException>(() => MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] }).Dispose());
        Assert.Contains(e.Problems, p => p.Replace(path, "recipe.yml").StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void ABaseModelThatIsNotAnInputOfTheEmbeddingIsARecipeError()
    {
        var path = TinyModels.Recipe(_d.Path, "merge_method: linear\nbase_model: a\nslices:\n  - sources:\n      - model: b\n        layer_range: [0, 2]\n        parameters: {weight: 1}\ntokenizer_source: union\n");
        var e = Assert.Throws<RecipeException>(() => MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] }).Dispose());
        Assert.Contains($"{path}:5:9: base_model 'a' must be an input of model.embed_tokens.weight to build its rows for the tokenizer", e.Problems);
    }

    [Fact]
    public void AModelSourceWithoutATokenizerIsARecipeError()
    {
        TinyModels.Write(_d["bare"], 5, vocab: 6);
        var path = TinyModels.Recipe(_d.Path, "merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: bare\n    parameters: {weight: 1}\ntokenizer_source: bare\n");
        var e = Assert.Throws<RecipeException>(() => MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] }).Dispose());
        Assert.Equal([$"{path}:7:19: model 'bare' has no tokenizer.json or tokenizer.model to take the tokenizer from"], e.Problems);
    }
}
