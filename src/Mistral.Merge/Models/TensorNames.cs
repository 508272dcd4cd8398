using System.Text.RegularExpressions;

namespace Mistral.Merge.Models;

/// <summary>HF tensor-name knowledge for Mistral / Mixtral / Llama checkpoints.</summary>
public static partial class TensorNames
{
    public const string Embed = "model.embed_tokens.weight";
    public const string FinalNorm = "model.norm.weight";
    public const string LmHead = "lm_head.weight";

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
    private static partial Regex LayerRegex();

    [GeneratedRegex(@"^block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight$")]
    private static partial Regex ExpertRegex();

    public static string Layer(int layer, string suffix) => $"model.layers.{layer}.{suffix}";

    /// <summary>Splits <c>model.layers.N.rest</c> into (N, rest); false for non-layer tensors.</summary>
    public static bool TryParseLayer(string name, out int layer, out string suffix)
    {
        var m = LayerRegex().Match(name);
        if (m.Success && int.TryParse(m.Groups[1].ValueSpan, out layer)) { suffix = m.Groups[2].Value; return true; }
        layer = -1; suffix = ""; return false;
    }

    /// <summary>Parses a layer-relative suffix <c>block_sparse_moe.experts.E.wK.weight</c>.</summary>
    public static bool TryParseExpert(string suffix, out int expert, out string w)
    {
        var m = ExpertRegex().Match(suffix);
        if (m.Success && int.TryParse(m.Groups[1].ValueSpan, out expert)) { w = m.Groups[2].Value; return true; }
        expert = -1; w = ""; return false;
    }

    /// <summary>Embeddings before the layers, then layers by number, then final norm and lm_head; ordinal within a group.</summary>
    public static int Compare(string a, string b)
    {
        var (ga, la) = Key(a);
        var (gb, lb) = Key(b);
        if (ga != gb) return ga.CompareTo(gb);
        if (la != lb) return la.CompareTo(lb);
        return string.CompareOrdinal(a, b);
    }

    private static (int group, int layer) Key(string n)
    {
        if (TryParseLayer(n, out var l, out _)) return (1, l);
        if (n.Contains("embed")) return (0, 0);
        return (2, 0);
    }

    public static List<string> SortNatural(IEnumerable<string> names)
    {
        var list = names.ToList();
        list.Sort(Compare);
        return list;
    }
}
