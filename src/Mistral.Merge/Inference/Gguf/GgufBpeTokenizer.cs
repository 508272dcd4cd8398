using System.Text.Json;
using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.Inference.Tokenization.HfJson;
using Mistral.Merge.IO.Gguf;

namespace Mistral.Merge.Inference.Gguf;

/// <summary>
/// The byte-level BPE tokenizer of a GGUF file whose <c>tokenizer.ggml.model</c> is <c>gpt2</c>: tokens, token types and
/// merges rebuilt as the <c>tokenizer.json</c> they came from, then read by our <see cref="HfJsonTokenizer"/>. The
/// pre-tokenizer follows <c>tokenizer.ggml.pre</c> as llama.cpp does: <c>llama-bpe</c> (Llama 3's split regex, merges
/// ignored for whole-vocabulary words), <c>qwen2</c> (Qwen2's regex), anything else GPT-2's ByteLevel regex. Control
/// (3) and user-defined (4) tokens are added tokens, special for control ones.
/// </summary>
public static class GgufBpeTokenizer
{
    private const int Control = 3, UserDefined = 4;

    public static HfJsonTokenizer FromMetadata(GgufReader g, string[] tokens, int[] types, TokenizerConfig config)
    {
        var path = g.Path;
        var merges = g.Get("tokenizer.ggml.merges")?.Value as string[]
            ?? throw new MergeException($"{path}: 'tokenizer.ggml.merges' is missing or not an array of String (a gpt2 vocabulary needs its merges)");
        string pre = g.Get("tokenizer.ggml.pre")?.Value as string ?? "default";
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("added_tokens");
            for (int i = 0; i < tokens.Length; i++)
            {
                if (types[i] is not (Control or UserDefined)) continue;
                w.WriteStartObject();
                w.WriteNumber("id", i);
                w.WriteString("content", tokens[i]);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", types[i] == UserDefined);
                w.WriteBoolean("special", types[i] == Control);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteNull("normalizer");
            w.WritePropertyName("pre_tokenizer");
            string? regex = pre switch { "llama-bpe" or "llama3" => GgufPreTokenizer.Llama3, "qwen2" => GgufPreTokenizer.Qwen2, _ => null };
            if (regex == null) ByteLevel(w, useRegex: true);
            else
            {
                w.WriteStartObject();
                w.WriteString("type", "Sequence");
                w.WriteStartArray("pretokenizers");
                w.WriteStartObject();
                w.WriteString("type", "Split");
                w.WriteStartObject("pattern");
                w.WriteString("Regex", regex);
                w.WriteEndObject();
                w.WriteString("behavior", "Isolated");
                w.WriteBoolean("invert", false);
                w.WriteEndObject();
                ByteLevel(w, useRegex: false);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteNull("post_processor");
            w.WriteStartObject("decoder");
            w.WriteString("type", "ByteLevel");
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteBoolean("ignore_merges", regex == GgufPreTokenizer.Llama3);
            w.WriteStartObject("vocab");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < tokens.Length; i++)
                if (seen.Add(tokens[i])) w.WriteNumber(tokens[i], i);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var m in merges) w.WriteStringValue(m);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        try
        {
            using var doc = JsonDocument.Parse(buffer.ToArray());
            return HfJsonTokenizerFile.Parse(doc.RootElement, config, null);
        }
        catch (FormatException e) { throw new MergeException($"{path}: the gpt2 vocabulary does not form a BPE tokenizer ({e.Message})"); }
    }

    private static void ByteLevel(Utf8JsonWriter w, bool useRegex)
    {
        w.WriteStartObject();
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", true);
        w.WriteBoolean("use_regex", useRegex);
        w.WriteEndObject();
    }
}
