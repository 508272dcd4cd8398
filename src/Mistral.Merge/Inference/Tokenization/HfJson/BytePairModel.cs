using System.Collections.Concurrent;
using System.Text;

namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>
/// The "BPE" model of tokenizer.json, as HF tokenizers' <c>BPE::tokenize</c>: a word is split into characters
/// (code points; unknown ones become byte-fallback <c>&lt;0xXX&gt;</c> pieces or the unk token, fused when
/// asked), then the lowest-ranked merge is applied until none is left (a priority queue: O(n log n) per word).
/// With ignore_merges a word that is itself in the vocabulary is one token. Results are cached per word.
/// Immutable apart from the thread-safe cache.
/// </summary>
internal sealed class BytePairModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int Id)> _merges;
    private readonly int[] _byteIds; // id of <0xXX>, -1 when absent
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private const int CacheLimit = 200_000;
    private const int MaxCachedWord = 256; // without a pre-tokenizer a whole text is one word: not worth keeping

    public int? UnkId { get; }
    public bool ByteFallback { get; }
    public bool FuseUnk { get; }
    public bool IgnoreMerges { get; }
    /// <summary>Token of each id (null where the vocabulary has a gap).</summary>
    public string?[] Tokens { get; }

    public BytePairModel(Dictionary<string, int> vocab, List<(string A, string B)> merges, string? unk, bool byteFallback, bool fuseUnk, bool ignoreMerges)
    {
        _vocab = vocab;
        ByteFallback = byteFallback;
        FuseUnk = fuseUnk;
        IgnoreMerges = ignoreMerges;
        Tokens = new string?[vocab.Count == 0 ? 0 : vocab.Values.Max() + 1];
        foreach (var (t, id) in vocab) Tokens[id] = t;
        if (unk != null)
            UnkId = vocab.TryGetValue(unk, out int u) ? u : throw new FormatException($"model.unk_token '{unk}' is not in model.vocab");
        _byteIds = new int[256];
        for (int b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
        _merges = new Dictionary<long, (int, int)>(merges.Count, PairComparer.Instance);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (a, b) = merges[rank];
            if (!vocab.TryGetValue(a, out int ia) || !vocab.TryGetValue(b, out int ib))
                throw new FormatException($"merge {rank} '{a} {b}' names a token that is not in model.vocab");
            if (!vocab.TryGetValue(a + b, out int merged))
                throw new FormatException($"merge {rank} '{a} {b}' makes '{a + b}', which is not in model.vocab");
            _merges.TryAdd(Key(ia, ib), (rank, merged)); // the first (lowest) rank of a repeated merge wins
        }
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    // long's own hash is a ^ b: for pairs of small ids that collides heavily (151k merges, ids below 2^18).
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long key) => (int)((ulong)key * 0x9E3779B97F4A7C15UL >> 32);
    }

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out int id) ? id : null;

    /// <summary>Appends the ids of one pre-tokenized word.</summary>
    public void EncodeWord(string word, List<int> output)
    {
        if (word.Length == 0) return;
        if (IgnoreMerges && _vocab.TryGetValue(word, out int whole)) { output.Add(whole); return; }
        if (_cache.TryGetValue(word, out var cached)) { output.AddRange(cached); return; }
        var ids = Merge(word);
        if (word.Length <= MaxCachedWord && _cache.Count < CacheLimit) _cache.TryAdd(word, ids);
        output.AddRange(ids);
    }

    private int[] Merge(string word)
    {
        var symbols = InitialSymbols(word);
        int n = symbols.Count;
        if (n <= 1) return [.. symbols];
        var id = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
        // (rank, position) → the merge to apply; stale entries are skipped when popped, as in tokenizers' Word::merge_all.
        var queue = new PriorityQueue<(int Pos, int NewId), (int Rank, int Pos)>();
        for (int i = 0; i + 1 < n; i++)
            if (_merges.TryGetValue(Key(id[i], id[i + 1]), out var m)) queue.Enqueue((i, m.Id), (m.Rank, i));
        var alive = new bool[n];
        Array.Fill(alive, true);
        while (queue.TryDequeue(out var top, out _))
        {
            int p = top.Pos;
            if (!alive[p]) continue;
            int right = next[p];
            if (right < 0) continue;
            if (!_merges.TryGetValue(Key(id[p], id[right]), out var cur) || cur.Id != top.NewId) continue;
            id[p] = cur.Id;
            alive[right] = false;
            next[p] = next[right];
            if (next[p] >= 0) prev[next[p]] = p;
            if (prev[p] >= 0 && _merges.TryGetValue(Key(id[prev[p]], id[p]), out var left)) queue.Enqueue((prev[p], left.Id), (left.Rank, prev[p]));
            if (next[p] >= 0 && _merges.TryGetValue(Key(id[p], id[next[p]]), out var after)) queue.Enqueue((p, after.Id), (after.Rank, p));
        }
        var result = new List<int>(n);
        for (int i = 0; i >= 0; i = next[i]) result.Add(id[i]);
        return [.. result];
    }

    /// <summary>One symbol per code point: its vocabulary id, else its UTF-8 bytes as &lt;0xXX&gt; pieces, else unk (fused when asked), else nothing.</summary>
    private List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        bool lastWasUnk = false;
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < word.Length;)
        {
            int len = char.IsSurrogatePair(word, i) ? 2 : 1;
            var ch = word.Substring(i, len);
            i += len;
            if (_vocab.TryGetValue(ch, out int cid)) { symbols.Add(cid); lastWasUnk = false; continue; }
            if (ByteFallback)
            {
                int nb = Encoding.UTF8.GetBytes(ch, utf8);
                bool all = true;
                for (int k = 0; k < nb; k++) all &= _byteIds[utf8[k]] >= 0;
                if (all)
                {
                    for (int k = 0; k < nb; k++) symbols.Add(_byteIds[utf8[k]]);
                    lastWasUnk = false;
                    continue;
                }
            }
            if (UnkId is not { } unk) continue; // tokenizers drops a character it cannot represent when there is no unk_token
            if (!(FuseUnk && lastWasUnk)) symbols.Add(unk);
            lastWasUnk = true;
        }
        return symbols;
    }
}
