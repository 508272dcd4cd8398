namespace Mistral.Merge.Inference.Tokenization;

/// <summary>
/// sentencepiece's BPE segmentation (<c>bpe_model.cc</c>) plus the id post-processing of
/// <c>SentencePieceProcessor::Encode</c>: split the normalized text into characters (user-defined pieces
/// frozen), then repeatedly merge the adjacent pair whose concatenation is a piece with the highest score,
/// the leftmost pair among equal scores, using a priority queue over a linked list of symbols (O(n log n)).
/// Unused pieces are re-split as sentencepiece does; unknown symbols become byte pieces under byte_fallback,
/// else one unk id per run of unknowns.
/// The text is cut before each run of spaces: a merge never crosses such a cut when no piece spells
/// "x▁" (checked at load), so each chunk is segmented alone with identical results and cache-friendly sizes.
/// </summary>
internal sealed class BpeEncoder
{
    private readonly SentencePieceModel _model;
    private readonly PieceTable _normal;    // NORMAL, USER_DEFINED, UNUSED: the pieces merges may produce
    private readonly PieceTable _reserved;  // CONTROL, UNKNOWN, BYTE: looked up first by PieceToId
    private readonly UserDefinedMatcher? _matcher;
    private readonly float[] _scores;
    private readonly bool[] _unused;
    private readonly bool _hasUnused;
    private readonly int _unkId;
    private readonly int[] _byteIds = new int[256];
    private readonly byte[] _space;

    /// <summary>True when chunking at space runs is provably equivalent to segmenting the whole text.</summary>
    public bool Chunked { get; }

    public BpeEncoder(SentencePieceModel model, UserDefinedMatcher? matcher, ReadOnlySpan<byte> space)
    {
        _model = model;
        _matcher = matcher;
        _scores = model.Scores;
        _space = space.ToArray();
        var types = model.Types;
        _normal = new PieceTable(model.PieceBytes, i => types[i] is PieceType.Normal or PieceType.UserDefined or PieceType.Unused);
        _reserved = new PieceTable(model.PieceBytes, i => types[i] is PieceType.Control or PieceType.Unknown or PieceType.Byte);
        _unused = new bool[model.Count];
        for (int i = 0; i < model.Count; i++)
        {
            if (types[i] == PieceType.Unknown) _unkId = i;
            if (types[i] == PieceType.Unused) { _unused[i] = true; _hasUnused = true; }
        }
        for (int b = 0; b < 256; b++) _byteIds[b] = PieceToId(System.Text.Encoding.ASCII.GetBytes($"<0x{b:X2}>"));
        Chunked = !_hasUnused && !AnyPieceCrossesSpaceRun(model, types);
    }

    private bool AnyPieceCrossesSpaceRun(SentencePieceModel model, PieceType[] types)
    {
        var sp = _space.AsSpan();
        for (int i = 0; i < model.Count; i++)
        {
            if (types[i] is not (PieceType.Normal or PieceType.UserDefined or PieceType.Unused)) continue;
            var p = model.PieceBytes[i].AsSpan();
            for (int k = p.IndexOf(sp); k >= 0; k = NextIndex(p, sp, k))
                if (k > 0 && !(k >= sp.Length && p[(k - sp.Length)..k].SequenceEqual(sp))) return true;
        }
        return false;

        static int NextIndex(ReadOnlySpan<byte> p, ReadOnlySpan<byte> sp, int k)
        {
            int j = p[(k + 1)..].IndexOf(sp);
            return j < 0 ? -1 : k + 1 + j;
        }
    }

    /// <summary>sentencepiece's PieceToId: reserved pieces first, then the others, else the unknown id.</summary>
    public int PieceToId(ReadOnlySpan<byte> piece)
    {
        int id = _reserved.Find(piece);
        if (id >= 0) return id;
        id = _normal.Find(piece);
        return id >= 0 ? id : _unkId;
    }

    /// <summary>Appends the ids of an already normalized text to <paramref name="output"/>.</summary>
    public void Encode(ReadOnlySpan<byte> normalized, List<int> output)
    {
        var s = new Scratch(this, output);
        if (!Chunked)
        {
            s.EncodeChunk(normalized, 0, normalized.Length);
            return;
        }
        var sp = _space.AsSpan();
        int start = 0, p = 0;
        while (p < normalized.Length)
        {
            int k = normalized[p..].IndexOf(sp);
            if (k < 0) break;
            k += p;
            if (k > start && !(k >= sp.Length && normalized[(k - sp.Length)..k].SequenceEqual(sp)))
            {
                s.EncodeChunk(normalized, start, k);
                start = k;
            }
            p = k + sp.Length;
        }
        if (start < normalized.Length) s.EncodeChunk(normalized, start, normalized.Length);
    }

    private struct Pair
    {
        public float Score;
        public int Left, Right, Size;
    }

    /// <summary>Per-call working state (the encoder itself is immutable and thread-safe).</summary>
    private sealed class Scratch(BpeEncoder e, List<int> output)
    {
        private int[] _start = new int[64], _len = new int[64], _prev = new int[64], _next = new int[64];
        private bool[] _freeze = new bool[64];
        private Pair[] _heap = new Pair[64];
        private int _heapCount;
        private bool _prevUnk;
        // sentencepiece's rev_merge: for an UNUSED piece, the last (left, right) split that produced it.
        private Dictionary<int, (int Start, int LeftLength, int Length)>? _revMerge;

        public void EncodeChunk(ReadOnlySpan<byte> text, int begin, int end)
        {
            int n = 0;
            for (int p = begin; p < end;)
            {
                bool freeze = false;
                int len = 0;
                if (e._matcher != null && (len = e._matcher.Match(text[p..end])) > 0) freeze = true;
                else len = Math.Min(Utf8.LeadLength(text[p]), end - p);
                if (n == _start.Length) Grow();
                _start[n] = p; _len[n] = len; _freeze[n] = freeze;
                _prev[n] = n - 1; _next[n] = p + len < end ? n + 1 : -1;
                n++;
                p += len;
            }
            if (n == 0) return;

            _heapCount = 0;
            for (int i = 1; i < n; i++) MaybeAddPair(text, i - 1, i);

            while (_heapCount > 0)
            {
                var top = Pop();
                int l = top.Left, r = top.Right;
                // Stale entry: one side was merged away or grew since the pair was queued.
                if (_len[l] == 0 || _len[r] == 0 || _len[l] + _len[r] != top.Size) continue;
                _len[l] += _len[r];
                _next[l] = _next[r];
                if (_next[r] >= 0) _prev[_next[r]] = l;
                _len[r] = 0;
                MaybeAddPair(text, _prev[l], l);
                MaybeAddPair(text, l, _next[l]);
            }

            for (int i = 0; i != -1; i = _next[i]) Resegment(text, _start[i], _len[i]);
        }

        private void MaybeAddPair(ReadOnlySpan<byte> text, int l, int r)
        {
            if (l < 0 || r < 0 || _freeze[l] || _freeze[r]) return;
            int size = _len[l] + _len[r];
            int id = e._normal.Find(text.Slice(_start[l], size));
            if (id < 0) return;
            Push(new Pair { Score = e._scores[id], Left = l, Right = r, Size = size });
            if (e._unused[id]) (_revMerge ??= [])[id] = (_start[l], _len[l], size);
        }

        private void Resegment(ReadOnlySpan<byte> text, int start, int length)
        {
            var w = text.Slice(start, length);
            int id = e.PieceToId(w);
            if (e._hasUnused && e._unused[id] && _revMerge != null && _revMerge.TryGetValue(id, out var split))
            {
                Resegment(text, split.Start, split.LeftLength);
                Resegment(text, split.Start + split.LeftLength, split.Length - split.LeftLength);
                return;
            }
            Emit(w, id);
        }

        private void Emit(ReadOnlySpan<byte> w, int id)
        {
            bool isUnk = id == e._unkId;
            if (isUnk && e._model.ByteFallback)
            {
                foreach (byte b in w) output.Add(e._byteIds[b]);
            }
            else if (!(isUnk && _prevUnk)) // a run of unknown pieces is one <unk>
            {
                output.Add(id);
            }
            _prevUnk = isUnk;
        }

        private void Grow()
        {
            int m = _start.Length * 2;
            Array.Resize(ref _start, m); Array.Resize(ref _len, m); Array.Resize(ref _prev, m);
            Array.Resize(ref _next, m); Array.Resize(ref _freeze, m);
        }

        // Max-heap: higher score first, then smaller left index (sentencepiece's SymbolPairComparator).
        private static bool Before(in Pair a, in Pair b) => a.Score > b.Score || (a.Score == b.Score && a.Left < b.Left);

        private void Push(Pair p)
        {
            if (_heapCount == _heap.Length) Array.Resize(ref _heap, _heap.Length * 2);
            int i = _heapCount++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (!Before(p, _heap[parent])) break;
                _heap[i] = _heap[parent];
                i = parent;
            }
            _heap[i] = p;
        }

        private Pair Pop()
        {
            var top = _heap[0];
            var last = _heap[--_heapCount];
            int i = 0;
            while (true)
            {
                int c = 2 * i + 1;
                if (c >= _heapCount) break;
                if (c + 1 < _heapCount && Before(_heap[c + 1], _heap[c])) c++;
                if (!Before(_heap[c], last)) break;
                _heap[i] = _heap[c];
                i = c;
            }
            if (_heapCount > 0) _heap[i] = last;
            return top;
        }
    }
}
