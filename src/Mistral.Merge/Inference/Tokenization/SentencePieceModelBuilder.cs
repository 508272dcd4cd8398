using System.Text;

namespace Mistral.Merge.Inference.Tokenization;

/// <summary>Writes a sentencepiece BPE ModelProto (protobuf wire format): the built-in tokenizer of
/// synthesized models and the tiny hand-made models of the tests.</summary>
public sealed class SentencePieceModelBuilder
{
    private readonly List<(string Piece, float Score, PieceType Type)> _pieces = [];
    public int? ModelType { get; set; } = 2;
    public bool? ByteFallback { get; set; }
    public bool? AddDummyPrefix { get; set; }
    public bool? RemoveExtraWhitespaces { get; set; }
    public string NormalizerName { get; set; } = "identity";
    public byte[]? Charsmap { get; set; }

    /// <summary>The usual head: &lt;unk&gt; 0, &lt;s&gt; 1, &lt;/s&gt; 2, and with <paramref name="bytes"/> the 256 byte pieces 3..258.</summary>
    public static SentencePieceModelBuilder WithSpecials(bool bytes)
    {
        var b = new SentencePieceModelBuilder { ByteFallback = bytes ? true : null };
        b.Add("<unk>", 0, PieceType.Unknown).Add("<s>", 0, PieceType.Control).Add("</s>", 0, PieceType.Control);
        if (bytes) for (int i = 0; i < 256; i++) b.Add($"<0x{i:X2}>", 0, PieceType.Byte);
        return b;
    }

    /// <summary>A byte-level tokenizer for synthesized models: the specials, the 256 byte pieces and the
    /// printable ASCII characters (with and without the U+2581 word marker), so any text encodes.</summary>
    public static SentencePieceModelBuilder ByteLevel()
    {
        var b = WithSpecials(bytes: true);
        b.AddDummyPrefix = true;
        b.RemoveExtraWhitespaces = false;
        b.Add("\u2581", -1);
        for (char c = '!'; c <= '~'; c++) b.Add(c.ToString(), -2).Add("\u2581" + c, -3);
        return b;
    }

    public int Count => _pieces.Count;

    public SentencePieceModelBuilder Add(string piece, float score = 0, PieceType type = PieceType.Normal)
    {
        _pieces.Add((piece, score, type));
        return this;
    }

    public int IdOf(string piece) => _pieces.FindIndex(p => p.Piece == piece);

    public byte[] Build()
    {
        var o = new MemoryStream();
        foreach (var (piece, score, type) in _pieces)
        {
            var p = new MemoryStream();
            Bytes(p, 1, Encoding.UTF8.GetBytes(piece));
            Tag(p, 2, 5); p.Write(BitConverter.GetBytes(score));
            if (type != PieceType.Normal) Varint(p, 3, (ulong)type);
            Bytes(o, 1, p.ToArray());
        }
        var t = new MemoryStream();
        if (ModelType is { } mt) Varint(t, 3, (ulong)mt);
        Varint(t, 4, (ulong)_pieces.Count);
        if (ByteFallback is { } bf) Varint(t, 35, bf ? 1UL : 0);
        Bytes(o, 2, t.ToArray());
        var n = new MemoryStream();
        Bytes(n, 1, Encoding.UTF8.GetBytes(NormalizerName));
        if (Charsmap != null) Bytes(n, 2, Charsmap);
        if (AddDummyPrefix is { } d) Varint(n, 3, d ? 1UL : 0);
        if (RemoveExtraWhitespaces is { } r) Varint(n, 4, r ? 1UL : 0);
        Bytes(o, 3, n.ToArray());
        return o.ToArray();
    }

    public SentencePieceTokenizer Tokenizer() => SentencePieceTokenizer.Create(SentencePieceModel.Parse(Build(), "test.model"));

    /// <summary>Writes a model folder with tokenizer.model (and optional tokenizer_config.json).</summary>
    public string WriteFolder(string dir, string? tokenizerConfig = null)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "tokenizer.model"), Build());
        if (tokenizerConfig != null) File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), tokenizerConfig);
        return dir;
    }

    private static void Tag(Stream s, int field, int wt) => WriteVarint(s, (ulong)(field << 3 | wt));
    private static void Varint(Stream s, int field, ulong v) { Tag(s, field, 0); WriteVarint(s, v); }
    private static void Bytes(Stream s, int field, byte[] b) { Tag(s, field, 2); WriteVarint(s, (ulong)b.Length); s.Write(b); }
    private static void WriteVarint(Stream s, ulong v)
    {
        while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        s.WriteByte((byte)v);
    }
}
