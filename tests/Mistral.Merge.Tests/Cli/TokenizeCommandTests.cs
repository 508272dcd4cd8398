using Mistral.Merge.Tests.Inference.Tokenization;

namespace Mistral.Merge.Tests.Cli;

public class TokenizeCommandTests
{
    private static string Folder(TempDir dir)
    {
        var b = SpmModelBuilder.WithSpecials(bytes: true);
        foreach (var c in new[] { "\u2581", "a", "b" }) b.Add(c, -100);
        b.Add("ab", -1).Add("\u2581ab", -2);
        return b.WriteFolder(dir["model"]);
    }

    [Fact]
    public void PrintsIdsAndPiecesWithBos()
    {
        using var dir = new TempDir();
        var r = CliRunner.Run("tokenize", Folder(dir), "ab b");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("tokens: 4 (BOS added)\nids:    1 263 259 261\npieces: <s> \u2581ab \u2581 b\n", r.Stdout.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void JsonFileAndNoBos()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["t.txt"], "ab\n");
        var r = CliRunner.Run("tokenize", Folder(dir), "--text", dir["t.txt"], "--no-bos", "--json");
        Assert.Equal(0, r.ExitCode);
        var doc = System.Text.Json.Nodes.JsonNode.Parse(r.Stdout)!;
        Assert.Equal([263, 3 + 10], doc["ids"]!.AsArray().Select(x => x!.GetValue<int>()));
        Assert.Equal(["\u2581ab", "<0x0A>"], doc["pieces"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.False(doc["bos_added"]!.GetValue<bool>());
        var c = CliRunner.Run("tokenize", Folder(dir), "--text", dir["t.txt"], "--count");
        Assert.StartsWith("tokens: 3  (", c.Stdout);
    }

    [Fact]
    public void BadInputsAreOneLineErrors()
    {
        using var dir = new TempDir();
        var folder = Folder(dir);
        var both = CliRunner.Run("tokenize", folder, "a", "--text", "x");
        CliRunner.AssertUsageError(both, "tokenize", "give exactly one of TEXT or --text FILE");
        CliRunner.AssertUsageError(CliRunner.Run("tokenize", folder), "tokenize", "give exactly one of TEXT or --text FILE");
        var missing = CliRunner.Run("tokenize", folder, "--text", dir["nope.txt"]);
        Assert.Equal((1, $"error: {dir["nope.txt"]}: file not found"), (missing.ExitCode, missing.Stderr.Trim()));
        File.WriteAllBytes(Path.Combine(folder, "tokenizer.model"), [1, 2, 3]);
        var corrupt = CliRunner.Run("tokenize", folder, "a");
        Assert.Equal(1, corrupt.ExitCode);
        Assert.StartsWith("error: " + Path.Combine(folder, "tokenizer.model") + ": not a valid sentencepiece model", corrupt.Stderr.Trim());
        Assert.DoesNotContain("\n", corrupt.Stderr.Trim());
    }

    [FixtureFact]
    public void MistralChatPromptWithSpecialTokens()
    {
        var r = CliRunner.Run("tokenize", SharedFixtures.PathOf("mistral-7b-v0.1"), "<s>[INST] Hi! [/INST]", "--special");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("ids:    1 733 16289 28793 15359 28808 733 28748 16289 28793\n", r.Stdout.ReplaceLineEndings("\n"));
    }
}
