using System.Globalization;
using System.Text;

namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>
/// Unicode NFC and NFD (UAX #15: full canonical decomposition, canonical ordering, canonical composition, Hangul
/// done algorithmically), from the table in <see cref="UnicodeNormalizationData"/>. Needed because the library
/// runs with InvariantGlobalization, where <see cref="string.Normalize()"/> returns its input unchanged.
/// </summary>
internal static class UnicodeNormalization
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Dictionary<int, int[]> Decomposition = [];
    private static readonly Dictionary<int, byte> Ccc = [];
    private static readonly Dictionary<long, int> Composition = [];

    static UnicodeNormalization()
    {
        foreach (var e in UnicodeNormalizationData.Decompositions.Split(';'))
        {
            int eq = e.IndexOf('=');
            Decomposition[Hex(e[..eq])] = [.. e[(eq + 1)..].Split(' ').Select(Hex)];
        }
        foreach (var r in UnicodeNormalizationData.CombiningClasses.Split(';'))
        {
            int dash = r.IndexOf('-'), colon = r.IndexOf(':');
            byte c = byte.Parse(r[(colon + 1)..], CultureInfo.InvariantCulture);
            for (int cp = Hex(r[..dash]); cp <= Hex(r[(dash + 1)..colon]); cp++) Ccc[cp] = c;
        }
        var excluded = UnicodeNormalizationData.CompositionExclusions.Split(';').Select(Hex).ToHashSet();
        foreach (var (cp, d) in Decomposition)
            if (d.Length == 2 && !excluded.Contains(cp)) Composition[Key(d[0], d[1])] = cp;
    }

    private static int Hex(string s) => int.Parse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
    private static long Key(int a, int b) => ((long)a << 21) | (uint)b;
    private static int ClassOf(int cp) => Ccc.TryGetValue(cp, out byte c) ? c : 0;

    public static string Nfd(string s) => IsBelow(s, '\u00C0') ? s : ToString(Decompose(s));

    // Text below U+0300 is already NFC: no such character decomposes to something else in NFC or composes with another.
    public static string Nfc(string s) => IsBelow(s, '\u0300') ? s : ToString(Compose(Decompose(s)));

    private static bool IsBelow(string s, char limit)
    {
        foreach (char c in s) if (c >= limit) return false;
        return true;
    }

    private static List<int> Decompose(string s)
    {
        var cps = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            int cp = char.IsSurrogatePair(s, i) ? char.ConvertToUtf32(s[i], s[++i]) : s[i];
            DecomposeInto(cp, cps);
        }
        // canonical ordering: stable sort of each run of non-starters by class
        for (int i = 1; i < cps.Count; i++)
        {
            int c = ClassOf(cps[i]);
            if (c == 0) continue;
            for (int j = i; j > 0 && ClassOf(cps[j - 1]) > c; j--) (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
        }
        return cps;
    }

    private static void DecomposeInto(int cp, List<int> output)
    {
        if (cp is >= SBase and < SBase + SCount)
        {
            int si = cp - SBase;
            output.Add(LBase + si / NCount);
            output.Add(VBase + si % NCount / TCount);
            if (si % TCount != 0) output.Add(TBase + si % TCount);
            return;
        }
        if (Decomposition.TryGetValue(cp, out var d)) foreach (var x in d) DecomposeInto(x, output);
        else output.Add(cp);
    }

    private static List<int> Compose(List<int> cps)
    {
        var result = new List<int>(cps.Count);
        int starter = -1, lastClass = 0;
        foreach (int cp in cps)
        {
            int cls = ClassOf(cp);
            // a character between the starter and cp blocks it when its class is 0 or not lower than cp's
            bool blocked = result.Count - 1 != starter && (lastClass == 0 || lastClass >= cls);
            if (starter >= 0 && !blocked && TryCompose(result[starter], cp, out int composed))
            {
                result[starter] = composed;
                continue;
            }
            if (cls == 0) starter = result.Count;
            lastClass = cls;
            result.Add(cp);
        }
        return result;
    }

    private static bool TryCompose(int a, int b, out int composed)
    {
        if (a is >= LBase and < LBase + LCount && b is >= VBase and < VBase + VCount)
        { composed = SBase + ((a - LBase) * VCount + (b - VBase)) * TCount; return true; }
        if (a is >= SBase and < SBase + SCount && (a - SBase) % TCount == 0 && b is > TBase and < TBase + TCount)
        { composed = a + (b - TBase); return true; }
        return Composition.TryGetValue(Key(a, b), out composed);
    }

    private static string ToString(List<int> cps)
    {
        var sb = new StringBuilder(cps.Count);
        foreach (int cp in cps) sb.Append(char.ConvertFromUtf32(cp));
        return sb.ToString();
    }
}
