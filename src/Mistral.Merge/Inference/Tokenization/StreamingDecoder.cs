using System.Text;

namespace Mistral.Merge.Inference.Tokenization;

/// <summary>
/// Incremental sentencepiece decoding for generation: <see cref="Push(int)"/> returns the text one more token
/// adds. Byte-fallback pieces are held until they complete a UTF-8 character (an impossible sequence becomes
/// U+FFFD per byte, as in DecodeIds). The concatenation of every Push and the final <see cref="Flush()"/>
/// equals <see cref="SentencePieceTokenizer.Decode"/> of all the ids.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly SentencePieceTokenizer _t;
    private readonly byte[] _pending = new byte[4];
    private int _pendingCount;
    private bool _textNonEmpty, _isBosWs = true, _bosWsSeen;

    internal StreamingDecoder(SentencePieceTokenizer tokenizer) => _t = tokenizer;

    /// <summary>The text added by <paramref name="id"/> (may be empty while a multi-byte character is incomplete).</summary>
    public string Push(int id)
    {
        var sb = new StringBuilder();
        Push(id, sb);
        return sb.ToString();
    }

    /// <summary>Text still held back (an incomplete byte sequence, emitted as U+FFFD per byte) at the end of generation.</summary>
    public string Flush()
    {
        var sb = new StringBuilder();
        Flush(sb);
        return sb.ToString();
    }

    internal void Push(int id, StringBuilder output)
    {
        _t.CheckId(id);
        if (_t.IsByte(id))
        {
            _pending[_pendingCount++] = (byte)_t.ByteValue(id);
            Drain(output, final: false);
            return;
        }
        Drain(output, final: true);
        // sentencepiece: once a leading space was consumed or any text was produced, no later piece loses its space.
        if (_bosWsSeen || _textNonEmpty) _isBosWs = false;
        var (text, consumed) = _t.Surface(id, _isBosWs);
        _bosWsSeen = consumed;
        Append(output, text);
    }

    internal void Flush(StringBuilder output) => Drain(output, final: true);

    private void Drain(StringBuilder output, bool final)
    {
        while (_pendingCount > 0)
        {
            int len = Utf8.ValidCharLength(_pending.AsSpan(0, _pendingCount));
            if (len < 0 && !final) return; // wait for the rest of the character
            if (len > 0) Append(output, Encoding.UTF8.GetString(_pending, 0, len));
            else { Append(output, "\uFFFD"); len = 1; }
            _pendingCount -= len;
            Array.Copy(_pending, len, _pending, 0, _pendingCount);
        }
    }

    private void Append(StringBuilder output, string s)
    {
        if (s.Length == 0) return;
        output.Append(s);
        _textNonEmpty = true;
    }
}
