using Mistral.Merge.Models;

namespace Mistral.Merge.Tests;

/// <summary>
/// The default declaration's tensor names (<see cref="Architecture.Default"/>), for tests that build or read models
/// without one at hand. The library asks each model's own <see cref="Architecture"/>.
/// </summary>
internal static class TensorNames
{
    public static string Embed => Architecture.Default.Embed;
    public static string FinalNorm => Architecture.Default.FinalNorm;
    public static string LmHead => Architecture.Default.LmHead;

    public static string Layer(int layer, string suffix) => Architecture.Default.Layer(layer, suffix);

    /// <summary>Splits a layer tensor's name into (layer, suffix); false for non-layer tensors.</summary>
    public static bool TryParseLayer(string name, out int layer, out string suffix) => Architecture.Default.TryParseLayer(name, out layer, out suffix);

    /// <summary>Parses a layer-relative Mixtral expert suffix into (expert, w1|w2|w3).</summary>
    public static bool TryParseExpert(string suffix, out int expert, out string w) => Architecture.Mixtral.TryParseExpert(suffix, out expert, out w);

    public static int Compare(string a, string b) => Architecture.Default.Compare(a, b);

    public static List<string> SortNatural(IEnumerable<string> names) => Architecture.Default.SortNatural(names);
}
