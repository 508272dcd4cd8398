using System.Text;
using Mistral.Merge.IO;

namespace Mistral.Merge.Inference.Tokenization;

/// <summary>Piece types of sentencepiece's <c>ModelProto.SentencePiece.Type</c>.</summary>
public enum PieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>
/// The parsed contents of a sentencepiece <c>tokenizer.model</c> (a serialized <c>ModelProto</c>):
/// pieces with scores and types, and the trainer/normalizer settings that change encoding.
/// Validation follows sentencepiece's <c>ModelInterface::InitializePieces</c>.
/// </summary>
public sealed record SentencePieceModel
{
    public const int ModelTypeUnigram = 1, ModelTypeBpe = 2, ModelTypeWord = 3, ModelTypeChar = 4;
    /// <summary>Far above real vocabularies (Gemma: 256000); a 64 MB file of 2-byte pieces would otherwise hold 32 million.</summary>
    public const int MaxPieces = 1 << 21;

    public required string[] Pieces { get; init; }
    public required byte[][] PieceBytes { get; init; }
    public required float[] Scores { get; init; }
    public required PieceType[] Types { get; init; }

    // TrainerSpec (proto defaults where unset).
    public int ModelType { get; init; } = ModelTypeUnigram;
    public bool ByteFallback { get; init; }
    public bool TreatWhitespaceAsSuffix { get; init; }
    public string UnkSurface { get; init; } = " \u2047 ";
    public string UnkPiece { get; init; } = "<unk>";
    public string BosPiece { get; init; } = "<s>";
    public string EosPiece { get; init; } = "</s>";
    public string PadPiece { get; init; } = "<pad>";

    // NormalizerSpec (proto defaults where unset: note remove_extra_whitespaces defaults to TRUE).
    public string NormalizerName { get; init; } = "";
    public int PrecompiledCharsmapLength { get; init; }
    public bool AddDummyPrefix { get; init; } = true;
    public bool RemoveExtraWhitespaces { get; init; } = true;
    public bool EscapeWhitespaces { get; init; } = true;

    public int Count => Pieces.Length;

    /// <summary>Reads and validates a model file; any problem is a one-line <see cref="MergeException"/> naming the file.</summary>
    public static SentencePieceModel Load(string path)
    {
        if (!Path.Exists(path)) throw new MergeException($"{path}: tokenizer.model not found");
        return Parse(InputFile.ReadAllBytes(path, InputFile.Limits.TokenizerModel, "a tokenizer.model"), path);
    }

    /// <summary>Parses a serialized ModelProto; <paramref name="where"/> names the source in errors.</summary>
    public static SentencePieceModel Parse(ReadOnlySpan<byte> data, string where)
    {
        if (data.StartsWith("version https://git-lfs"u8))
            throw new MergeException($"{where}: is a Git LFS pointer, not the model file (fetch it with git lfs pull)");
        SentencePieceModel model;
        try { model = ParseProto(data); }
        catch (InvalidDataException e)
        {
            throw new MergeException($"{where}: not a valid sentencepiece model ({e.Message})");
        }
        model.Validate(where);
        return model;
    }

    private static SentencePieceModel ParseProto(ReadOnlySpan<byte> data)
    {
        var pieces = new List<string>();
        var pieceBytes = new List<byte[]>();
        var scores = new List<float>();
        var types = new List<PieceType>();
        ReadOnlySpan<byte> trainer = default, normalizer = default;
        bool hasTrainer = false, hasNormalizer = false;
        var r = new ProtoReader(data);
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1:
                    ProtoReader.Expect(field, wt, 2);
                    if (pieces.Count == MaxPieces) throw new InvalidDataException($"more than {MaxPieces} pieces");
                    var (p, s, t) = ParsePiece(r.ReadBytes());
                    pieceBytes.Add(p);
                    pieces.Add(Utf8Strict(p));
                    scores.Add(s);
                    types.Add(t);
                    break;
                case 2: ProtoReader.Expect(field, wt, 2); trainer = r.ReadBytes(); hasTrainer = true; break;
                case 3: ProtoReader.Expect(field, wt, 2); normalizer = r.ReadBytes(); hasNormalizer = true; break;
                default: r.Skip(wt); break;
            }
        }

        int modelType = ModelTypeUnigram;
        bool byteFallback = false, suffix = false;
        string unkSurface = " \u2047 ", unkPiece = "<unk>", bosPiece = "<s>", eosPiece = "</s>", padPiece = "<pad>";
        if (hasTrainer)
        {
            var tr = new ProtoReader(trainer);
            while (!tr.End)
            {
                var (field, wt) = tr.ReadTag();
                switch (field)
                {
                    case 3: ProtoReader.Expect(field, wt, 0); modelType = tr.ReadInt32(); break;
                    case 24: ProtoReader.Expect(field, wt, 0); suffix = tr.ReadBool(); break;
                    case 35: ProtoReader.Expect(field, wt, 0); byteFallback = tr.ReadBool(); break;
                    case 44: ProtoReader.Expect(field, wt, 2); unkSurface = Utf8Strict(tr.ReadBytes()); break;
                    case 45: ProtoReader.Expect(field, wt, 2); unkPiece = Utf8Strict(tr.ReadBytes()); break;
                    case 46: ProtoReader.Expect(field, wt, 2); bosPiece = Utf8Strict(tr.ReadBytes()); break;
                    case 47: ProtoReader.Expect(field, wt, 2); eosPiece = Utf8Strict(tr.ReadBytes()); break;
                    case 48: ProtoReader.Expect(field, wt, 2); padPiece = Utf8Strict(tr.ReadBytes()); break;
                    default: tr.Skip(wt); break;
                }
            }
        }

        string name = "";
        int charsmap = 0;
        bool dummy = true, removeExtra = true, escape = true;
        if (hasNormalizer)
        {
            var nr = new ProtoReader(normalizer);
            while (!nr.End)
            {
                var (field, wt) = nr.ReadTag();
                switch (field)
                {
                    case 1: ProtoReader.Expect(field, wt, 2); name = Utf8Strict(nr.ReadBytes()); break;
                    case 2: ProtoReader.Expect(field, wt, 2); charsmap = nr.ReadBytes().Length; break;
                    case 3: ProtoReader.Expect(field, wt, 0); dummy = nr.ReadBool(); break;
                    case 4: ProtoReader.Expect(field, wt, 0); removeExtra = nr.ReadBool(); break;
                    case 5: ProtoReader.Expect(field, wt, 0); escape = nr.ReadBool(); break;
                    default: nr.Skip(wt); break;
                }
            }
        }

        return new SentencePieceModel
        {
            Pieces = [.. pieces],
            PieceBytes = [.. pieceBytes],
            Scores = [.. scores],
            Types = [.. types],
            ModelType = modelType,
            ByteFallback = byteFallback,
            TreatWhitespaceAsSuffix = suffix,
            UnkSurface = unkSurface,
            UnkPiece = unkPiece,
            BosPiece = bosPiece,
            EosPiece = eosPiece,
            PadPiece = padPiece,
            NormalizerName = name,
            PrecompiledCharsmapLength = charsmap,
            AddDummyPrefix = dummy,
            RemoveExtraWhitespaces = removeExtra,
            EscapeWhitespaces = escape,
        };
    }

    private static (byte[] Piece, float Score, PieceType Type) ParsePiece(ReadOnlySpan<byte> data)
    {
        byte[] piece = [];
        float score = 0;
        int type = (int)PieceType.Normal;
        var r = new ProtoReader(data);
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1: ProtoReader.Expect(field, wt, 2); piece = r.ReadBytes().ToArray(); break;
                case 2: ProtoReader.Expect(field, wt, 5); score = r.ReadFloat(); break;
                case 3: ProtoReader.Expect(field, wt, 0); type = r.ReadInt32(); break;
                default: r.Skip(wt); break;
            }
        }
        if (type < 1 || type > 6) throw new InvalidDataException($"piece type {type} is not a sentencepiece piece type");
        return (piece, score, (PieceType)type);
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private static string Utf8Strict(ReadOnlySpan<byte> b)
    {
        try { return StrictUtf8.GetString(b); }
        catch (DecoderFallbackException) { throw new InvalidDataException("a string field is not valid UTF-8"); }
    }

    /// <summary>The checks of sentencepiece's loader, plus the features this encoder does not implement.</summary>
    private void Validate(string where)
    {
        if (Count == 0) throw new MergeException($"{where}: not a valid sentencepiece model (no pieces)");
        if (ModelType != ModelTypeBpe)
        {
            string kind = ModelType switch { ModelTypeUnigram => "unigram", ModelTypeWord => "word", ModelTypeChar => "char", _ => $"type {ModelType}" };
            throw new MergeException($"{where}: sentencepiece {kind} models are not supported (only BPE, as used by Mistral/Llama)");
        }
        if (PrecompiledCharsmapLength > 0)
            throw new MergeException($"{where}: normalizer '{NormalizerName}' with a precompiled charsmap is not supported (only the identity normalizer, as in Mistral/Llama models)");
        if (TreatWhitespaceAsSuffix)
            throw new MergeException($"{where}: treat_whitespace_as_suffix models are not supported");
        var normal = new HashSet<string>(StringComparer.Ordinal);
        var reserved = new HashSet<string>(StringComparer.Ordinal);
        int unk = -1;
        for (int i = 0; i < Count; i++)
        {
            string p = Pieces[i];
            if (p.Length == 0) throw new MergeException($"{where}: piece {i} is empty");
            bool isNormal = Types[i] is PieceType.Normal or PieceType.UserDefined or PieceType.Unused;
            if (!(isNormal ? normal : reserved).Add(p)) throw new MergeException($"{where}: piece {i} '{p}' is defined twice");
            if (Types[i] == PieceType.Unknown)
            {
                if (unk >= 0) throw new MergeException($"{where}: more than one unknown piece ({unk} and {i})");
                unk = i;
            }
            if (Types[i] == PieceType.Byte)
            {
                if (!ByteFallback) throw new MergeException($"{where}: byte piece '{p}' found although byte_fallback is false");
                if (ByteOfPiece(p) < 0) throw new MergeException($"{where}: byte piece '{p}' is invalid");
            }
        }
        if (unk < 0) throw new MergeException($"{where}: the model defines no unknown piece (<unk>)");
    }

    /// <summary>"&lt;0x41&gt;" → 0x41; -1 when the string is not a byte piece (upper-case hex, as sentencepiece writes them).</summary>
    public static int ByteOfPiece(string p)
    {
        if (p.Length != 6 || !p.StartsWith("<0x", StringComparison.Ordinal) || p[5] != '>') return -1;
        int hi = HexValue(p[3]), lo = HexValue(p[4]);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    private static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };
}
