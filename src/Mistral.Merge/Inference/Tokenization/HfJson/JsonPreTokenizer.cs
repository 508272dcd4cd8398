using System.Text.Json.Nodes;

namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>
/// tokenizer.json "pre_tokenizer": ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit and Sequence,
/// each applied to every current piece as tokenizers' <c>PreTokenizedString::split</c> does.
/// </summary>
internal abstract class JsonPreTokenizer
{
    /// <summary>Splits <paramref name="piece"/> into <paramref name="output"/>; <paramref name="atTextStart"/>: the piece starts the whole text (offset 0).</summary>
    public abstract void Split(string piece, bool atTextStart, List<string> output);

    /// <summary>Whether pieces come out in GPT-2's byte-level alphabet.</summary>
    public virtual bool IsByteLevel => false;

    public List<string> PreTokenize(string section, bool atTextStart)
    {
        var result = new List<string>();
        Split(section, atTextStart, result);
        return result;
    }

    public static JsonPreTokenizer? Parse(JsonNode? node, string where)
    {
        if (node is null) return null;
        var o = JsonParts.Object(node, where);
        switch (JsonParts.Type(o, where))
        {
            case "Sequence":
                return new SequencePreTokenizer([.. JsonParts.Array(o, "pretokenizers", where).Select((n, i) => Parse(n, $"{where}.pretokenizers[{i}]")!)]);
            case "ByteLevel":
                return new ByteLevelPreTokenizer(JsonParts.Bool(o, "add_prefix_space", where, true), JsonParts.Bool(o, "use_regex", where, true));
            case "Split":
                var (literal, regex) = JsonParts.Pattern(o, where);
                return new SplitPreTokenizer(regex ?? new CodePointRegex(System.Text.RegularExpressions.Regex.Escape(literal!)),
                    SplitBehaviour.Parse(JsonParts.String(o, "behavior", where), where), JsonParts.Bool(o, "invert", where, false));
            case "Metaspace":
                var replacement = JsonParts.String(o, "replacement", where);
                if (replacement.Length != 1) throw new FormatException($"{where}.replacement must be one character");
                string scheme = JsonParts.OptionalString(o, "prepend_scheme", where)
                    ?? (JsonParts.Bool(o, "add_prefix_space", where, true) ? "always" : "never");
                if (scheme is not ("always" or "first" or "never")) throw new FormatException($"{where}.prepend_scheme must be always, first or never");
                return new MetaspacePreTokenizer(replacement[0], scheme, JsonParts.Bool(o, "split", where, true));
            case "Digits":
                // tokenizers splits on char::is_numeric: every character of a Unicode number category
                return new SplitPreTokenizer(new CodePointRegex(@"\p{N}"), JsonParts.Bool(o, "individual_digits", where, false) ? SplitBehaviour.Isolated : SplitBehaviour.Contiguous, false);
            case "Whitespace":
                return new SplitPreTokenizer(new CodePointRegex(@"\w+|[^\w\s]+"), SplitBehaviour.Removed, invert: true);
            case "WhitespaceSplit":
                return new SplitPreTokenizer(new CodePointRegex(@"\s"), SplitBehaviour.Removed, false);
            case var t:
                throw new FormatException($"{where}: pre_tokenizer type '{t}' is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit)");
        }
    }

    private sealed class SequencePreTokenizer(JsonPreTokenizer[] parts) : JsonPreTokenizer
    {
        public override bool IsByteLevel => parts.Any(p => p.IsByteLevel);

        public override void Split(string piece, bool atTextStart, List<string> output)
        {
            var current = new List<string> { piece };
            foreach (var p in parts)
            {
                var next = new List<string>();
                for (int i = 0; i < current.Count; i++) p.Split(current[i], atTextStart && i == 0, next);
                current = next;
            }
            output.AddRange(current);
        }
    }

    /// <summary>GPT-2's pre-tokenizer: optional leading space, GPT-2's regex, then every byte mapped to its printable character.</summary>
    private sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : JsonPreTokenizer
    {
        private static readonly CodePointRegex Gpt2 = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+");

        public override bool IsByteLevel => true;

        public override void Split(string piece, bool atTextStart, List<string> output)
        {
            if (addPrefixSpace && !piece.StartsWith(' ')) piece = " " + piece;
            if (!useRegex) { output.Add(ByteLevelAlphabet.Encode(piece)); return; }
            foreach (var part in SplitBehaviour.Apply(piece, Gpt2.Matches(piece), SplitBehaviour.Isolated, false))
                output.Add(ByteLevelAlphabet.Encode(part));
        }
    }

    private sealed class SplitPreTokenizer(CodePointRegex pattern, string behaviour, bool invert) : JsonPreTokenizer
    {
        public override void Split(string piece, bool atTextStart, List<string> output) =>
            output.AddRange(SplitBehaviour.Apply(piece, pattern.Matches(piece), behaviour, invert));
    }

    /// <summary>Spaces become the replacement (▁); the prefix ▁ is prepended always, only at the start of the text (first), or never.</summary>
    private sealed class MetaspacePreTokenizer(char replacement, string scheme, bool split) : JsonPreTokenizer
    {
        private readonly CodePointRegex _replacement = new(System.Text.RegularExpressions.Regex.Escape(replacement.ToString()));

        public override void Split(string piece, bool atTextStart, List<string> output)
        {
            piece = piece.Replace(' ', replacement);
            if (!piece.StartsWith(replacement) && (scheme == "always" || (scheme == "first" && atTextStart))) piece = replacement + piece;
            if (!split) { if (piece.Length > 0) output.Add(piece); return; }
            output.AddRange(SplitBehaviour.Apply(piece, _replacement.Matches(piece), SplitBehaviour.MergedWithNext, false));
        }
    }
}
