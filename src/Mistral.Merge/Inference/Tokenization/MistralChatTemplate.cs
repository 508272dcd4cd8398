using System.Text;

namespace Mistral.Merge.Inference.Tokenization;

/// <summary>
/// The Mistral v1 instruct layout (mistral-common's v1 tokenizer): <c>&lt;s&gt;[INST] user [/INST] answer&lt;/s&gt;[INST] ...</c>.
/// Encode the result with <see cref="SentencePieceTokenizer.EncodeWithSpecialTokens"/> so that <c>&lt;s&gt;</c>/<c>&lt;/s&gt;</c>
/// become BOS/EOS; <c>[INST]</c> is plain text for v1.
/// </summary>
public static class MistralChatTemplate
{
    /// <summary>
    /// Formats alternating user/assistant messages (an optional system prompt is prepended to the first user
    /// message with a blank line, as mistral-common v1 does); the text ends with the last <c>[/INST]</c>
    /// when the last message is the user's.
    /// </summary>
    public static string FormatV1(IEnumerable<(string Role, string Content)> messages, string? system = null,
        string bos = "<s>", string eos = "</s>")
    {
        var sb = new StringBuilder(bos);
        bool first = true;
        string expected = "user";
        foreach (var (role, content) in messages)
        {
            if (role == "system") { system = system == null ? content : system + "\n\n" + content; continue; }
            if (role != expected)
                throw new MergeException($"chat messages must alternate user/assistant starting with user; got '{role}' where '{expected}' was expected");
            if (role == "user")
            {
                string text = first && !string.IsNullOrEmpty(system) ? system + "\n\n" + content : content;
                sb.Append("[INST] ").Append(text).Append(" [/INST]");
                first = false;
                expected = "assistant";
            }
            else
            {
                sb.Append(' ').Append(content).Append(eos);
                expected = "user";
            }
        }
        return sb.ToString();
    }
}
