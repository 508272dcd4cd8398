using System.Text;
using System.Text.Json.Nodes;

namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>
/// tokenizer.json "decoder" as tokenizers' <c>decode_chain</c>: each step maps the list of token strings to a new
/// list (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence); the result is their concatenation.
/// </summary>
internal abstract class JsonDecoder
{
    public abstract List<string> DecodeChain(List<string> tokens);

    public static JsonDecoder? Parse(JsonNode? node, string where)
    {
        if (node is null) return null;
        var o = JsonParts.Object(node, where);
        switch (JsonParts.Type(o, where))
        {
            case "Sequence":
                return new SequenceDecoder([.. JsonParts.Array(o, "decoders", where).Select((n, i) => Parse(n, $"{where}.decoders[{i}]")!)]);
            case "ByteLevel": return new ByteLevelDecoder();
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Replace": return new ReplaceDecoder(ReplacePattern.Parse(o, where));
            case "Strip":
                var content = JsonParts.String(o, "content", where);
                if (content.Length != 1) throw new FormatException($"{where}.content must be one character");
                return new StripDecoder(content[0], JsonParts.Int(o["start"], where + ".start"), JsonParts.Int(o["stop"], where + ".stop"));
            case "Metaspace":
                var replacement = JsonParts.String(o, "replacement", where);
                if (replacement.Length != 1) throw new FormatException($"{where}.replacement must be one character");
                string scheme = JsonParts.OptionalString(o, "prepend_scheme", where)
                    ?? (JsonParts.Bool(o, "add_prefix_space", where, true) ? "always" : "never");
                return new MetaspaceDecoder(replacement[0], scheme != "never");
            case var t:
                throw new FormatException($"{where}: decoder type '{t}' is not supported (supported: Sequence, ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace)");
        }
    }

    private sealed class SequenceDecoder(JsonDecoder[] parts) : JsonDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            foreach (var p in parts) tokens = p.DecodeChain(tokens);
            return tokens;
        }
    }

    /// <summary>Byte-level characters back to bytes, the whole text decoded as lossy UTF-8 (a token with any other character keeps its own UTF-8).</summary>
    private sealed class ByteLevelDecoder : JsonDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (var t in tokens)
            {
                int mark = bytes.Count;
                bool ok = true;
                foreach (var c in t)
                {
                    if (!ByteLevelAlphabet.TryGetByte(c, out byte b)) { ok = false; break; }
                    bytes.Add(b);
                }
                if (!ok)
                {
                    bytes.RemoveRange(mark, bytes.Count - mark);
                    bytes.AddRange(Encoding.UTF8.GetBytes(t));
                }
            }
            return [Encoding.UTF8.GetString([.. bytes])];
        }
    }

    /// <summary>Runs of &lt;0xXX&gt; tokens become their UTF-8 text, or one U+FFFD per byte when invalid.</summary>
    private sealed class ByteFallbackDecoder : JsonDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var result = new List<string>(tokens.Count);
            var pending = new List<byte>();
            void Flush()
            {
                if (pending.Count == 0) return;
                var arr = pending.ToArray();
                if (System.Text.Unicode.Utf8.IsValid(arr)) result.Add(Encoding.UTF8.GetString(arr));
                else for (int i = 0; i < arr.Length; i++) result.Add("\uFFFD");
                pending.Clear();
            }
            foreach (var t in tokens)
            {
                if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' &&
                    byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out byte b))
                {
                    pending.Add(b);
                    continue;
                }
                Flush();
                result.Add(t);
            }
            Flush();
            return result;
        }
    }

    private sealed class FuseDecoder : JsonDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
    }

    private sealed class ReplaceDecoder(ReplacePattern pattern) : JsonDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [.. tokens.Select(pattern.Replace)];
    }

    /// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing <c>content</c> characters of every token.</summary>
    private sealed class StripDecoder(char content, int start, int stop) : JsonDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [.. tokens.Select(t =>
        {
            int s = 0, e = t.Length;
            while (s < Math.Min(start, t.Length) && t[s] == content) s++;
            for (int k = 0; k < stop && e > s && t[e - 1] == content; k++) e--;
            return t[s..e];
        })];
    }

    /// <summary>▁ becomes a space; in the first token every ▁ is dropped unless the prepend scheme is never (as tokenizers does).</summary>
    private sealed class MetaspaceDecoder(char replacement, bool dropInFirst) : JsonDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [.. tokens.Select((t, i) =>
            i == 0 && dropInFirst ? t.Replace(replacement.ToString(), "", StringComparison.Ordinal) : t.Replace(replacement, ' '))];
    }
}
