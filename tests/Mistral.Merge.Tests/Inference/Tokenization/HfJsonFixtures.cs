using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Mistral.Merge.Inference;
using Mistral.Merge.Inference.Tokenization.HfJson;

namespace Mistral.Merge.Tests.Inference.Tokenization;

/// <summary>
/// The real tokenizer.json files committed (gzip) under tests/Mistral.Merge.Tests/Inference/Tokenizers/ and the
/// reference ids that tests/tokenizer-json/generate.mjs computed for them with @huggingface/tokenizers.
/// </summary>
internal static class HfJsonFixtures
{
    public static readonly string Folder = Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "Inference", "Tokenizers");
    public static readonly string[] Names = ["llama3", "qwen2_5", "gpt2", "llama2"];
    public static readonly string[] SyntheticNames = ["synthetic:sp-metaspace-first", "synthetic:sp-prepend-nfd", "synthetic:bytelevel-digits", "synthetic:digits-split-removed"];
    /// <summary>The shared fixture's Mistral 7B v0.1 tokenizer.json (needs ../shared).</summary>
    public const string SharedMistral = "shared:mistral-7b-v0.1";
    private static readonly ConcurrentDictionary<string, HfJsonTokenizer> Loaded = new();
    private static readonly Lazy<JsonObject> Expected = new(() => (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "expected-ids.json")))!);

    /// <summary>The tokenizer <paramref name="name"/>, loaded through <see cref="TokenizerLoader"/> from a folder holding only tokenizer.json and tokenizer_config.json.</summary>
    public static HfJsonTokenizer Tokenizer(string name) => Loaded.GetOrAdd(name, n =>
    {
        if (n == SharedMistral) return (HfJsonTokenizer)TokenizerLoader.Load(Path.Combine(SharedFixtures.PathOf("mistral-7b-v0.1"), "tokenizer.json"));
        using var dir = new TempDir();
        WriteFolder(n, dir.Path);
        return (HfJsonTokenizer)TokenizerLoader.Load(dir.Path);
    });

    /// <summary>Writes tokenizer.json (decompressed) and tokenizer_config.json of <paramref name="name"/> into <paramref name="folder"/>.</summary>
    public static void WriteFolder(string name, string folder)
    {
        if (name.StartsWith("synthetic:", StringComparison.Ordinal))
        {
            foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
                File.Copy(Path.Combine(Folder, "synthetic", $"{name["synthetic:".Length..]}.{file}"), Path.Combine(folder, file));
            return;
        }
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(Folder, $"{name}.tokenizer.json.gz")), CompressionMode.Decompress))
        using (var output = File.Create(Path.Combine(folder, "tokenizer.json")))
            gz.CopyTo(output);
        File.Copy(Path.Combine(Folder, $"{name}.tokenizer_config.json"), Path.Combine(folder, "tokenizer_config.json"));
    }

    public static IEnumerable<Case> Cases(string name) =>
        Expected.Value["tokenizers"]![name]!.AsArray().Select(c => new Case(
            c!["id"]!.GetValue<string>(), c["text"]!.GetValue<string>(), Ids(c["ids"]), Ids(c["ids_with_special"]),
            c["decoded"]!.GetValue<string>(), c["decoded_with_special"]!.GetValue<string>()));

    private static int[] Ids(JsonNode? n) => [.. n!.AsArray().Select(x => x!.GetValue<int>())];

    internal sealed record Case(string Id, string Text, int[] Ids, int[] IdsWithSpecial, string Decoded, string DecodedWithSpecial);
}
