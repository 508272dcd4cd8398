using System.Text.Json.Nodes;

namespace Mistral.Merge.Inference.Gguf;

/// <summary>
/// tokenizer.ggml.pre for a byte-level BPE tokenizer.json. convert_hf_to_gguf.py names it by hashing the ids
/// the HF tokenizer gives for a test text; without running that tokenizer we name it by its pre-tokenizer instead:
/// the Split regex of Llama 3 ("llama-bpe") or of Qwen2 ("qwen2"), or a plain GPT-2 ByteLevel ("gpt-2"); any other
/// is "default" (llama.cpp's GPT-2 style split), which may split some text differently from the original.
/// </summary>
public static class GgufPreTokenizer
{
    /// <summary>The Split regexes of Llama 3's and Qwen2's tokenizer.json (also used to rebuild them from a GGUF, <see cref="GgufBpeTokenizer"/>).</summary>
    internal const string Llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    internal const string Qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static string Name(JsonObject tokenizerJson)
    {
        var pre = tokenizerJson["pre_tokenizer"] as JsonObject;
        var steps = pre?["type"]?.GetValue<string>() == "Sequence" ? (pre["pretokenizers"] as JsonArray)?.OfType<JsonObject>().ToList() ?? [] : pre != null ? [pre] : [];
        var split = steps.FirstOrDefault(s => s["type"]?.GetValue<string>() == "Split")?["pattern"]?["Regex"]?.GetValue<string>();
        if (split == Llama3) return "llama-bpe";
        if (split == Qwen2) return "qwen2";
        if (split == null && steps.Count == 1 && steps[0]["type"]?.GetValue<string>() == "ByteLevel" && steps[0]["use_regex"]?.GetValue<bool>() != false) return "gpt-2";
        return "default";
    }
}
