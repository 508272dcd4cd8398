using System.Text.Json.Nodes;

namespace Mistral.Merge.Tests.Inference.Tokenization;

/// <summary>
/// Differential fuzz cases (tests/tokenizer-json/fuzz.mjs → fuzz-ids.json) against @huggingface/tokenizers: tricky texts, seeded random texts of many scripts, spaces, controls and special tokens, and the
/// decodes of random id sequences (lone bytes, special tokens).
/// MISTRAL_MERGE_FUZZ_IDS points the tests at a larger generated file instead.
/// </summary>
public class HfJsonFuzzTests
{
    private static readonly Lazy<JsonObject> Doc = new(() => (JsonObject)JsonNode.Parse(File.ReadAllText(
        Environment.GetEnvironmentVariable("MISTRAL_MERGE_FUZZ_IDS") is { Length: > 0 } f ? f : Path.Combine(HfJsonFixtures.Folder, "fuzz-ids.json")))!);

    public static TheoryData<string> Names => [.. HfJsonFixtures.Names];

    [Theory]
    [MemberData(nameof(Names))]
    public void EveryFuzzCaseEncodesAndDecodesExactlyAsTheReference(string name) => Check(name);

    [FixtureFact]
    public void EveryFuzzCaseOfTheSharedMistral7bTokenizerEncodesAndDecodesExactlyAsTheReference() => Check(HfJsonFixtures.SharedMistral);

    private static void Check(string name)
    {
        var t = HfJsonFixtures.Tokenizer(name);
        var cases = Doc.Value["tokenizers"]![name]!.AsArray();
        Assert.True(cases.Count >= 200, $"{name}: only {cases.Count} cases");
        var failures = new List<string>();
        foreach (var c in cases)
        {
            string id = (string)c!["id"]!;
            int[] ids = Ids(c["ids"]);
            if (c["text"] is null)
            {
                // a random id sequence: only its decode is compared
                string got = t.Decode(ids);
                if (got != (string)c["decoded"]!) failures.Add($"{id} [{string.Join(',', ids)}]: decoded {JsonValue.Create(got).ToJsonString()} != {c["decoded"]!.ToJsonString()}");
                continue;
            }
            string text = (string)c["text"]!;
            int[] special = Ids(c["ids_with_special"]);
            string show = JsonValue.Create(text).ToJsonString();
            var plain = t.EncodeExact(text, addSpecialTokens: false);
            if (!plain.SequenceEqual(ids)) failures.Add($"{id} {show}: ids {string.Join(',', plain)} != {string.Join(',', ids)}");
            var withSpecial = t.EncodeExact(text, addSpecialTokens: true);
            if (!withSpecial.SequenceEqual(special)) failures.Add($"{id} {show}: ids with special {string.Join(',', withSpecial)} != {string.Join(',', special)}");
            string decoded = t.Decode(ids), decodedSpecial = t.Decode(special);
            if (decoded != (string)c["decoded"]!) failures.Add($"{id} {show}: decoded {JsonValue.Create(decoded).ToJsonString()} != {c["decoded"]!.ToJsonString()}");
            if (decodedSpecial != (string)c["decoded_with_special"]!) failures.Add($"{id} {show}: decoded with special {JsonValue.Create(decodedSpecial).ToJsonString()} != {c["decoded_with_special"]!.ToJsonString()}");
        }
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} mismatches of {cases.Count} cases:\n{string.Join('\n', failures.Take(60))}");
    }

    private static int[] Ids(JsonNode? n) => [.. n!.AsArray().Select(x => x!.GetValue<int>())];
}
