using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

/// <summary>
/// Refuses, before any tensor is planned, to merge models whose configs name different architectures or give
/// different dimensions (mergekit's rule; <c>--allow-crimes</c> turns the refusal into a warning). Each model that
/// gives tensors (base models and sources, not a tokenizer-only source) is compared with the first one, on its
/// config.json: the architecture a config names (<c>architectures[0]</c>, else <c>model_type</c>; a config with
/// neither, or a model without config.json, matches any), and hidden_size, intermediate_size, the head counts,
/// head_dim and the expert count where both configs give them. The vocabulary and the layer count may differ:
/// embeddings are cropped and slices pick layers.
/// </summary>
internal sealed class ArchitectureCheck
{
    private readonly PlanContext _c;

    public ArchitectureCheck(PlanContext context) { _c = context; }

    public void Check()
    {
        var r = _c.Recipe;
        var refs = new List<ModelRef>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in new[] { r.BaseModel }.Concat(r.Slices.SelectMany(s => s.Sources.Select(x => x.Model).Prepend(s.BaseModel))))
            if (m != null && seen.Add(m.Text) && _c.Models.TryGetValue(m.Text, out var im) && im.Folder.Config != null) refs.Add(m);
        for (int i = 1; i < refs.Count; i++)
        {
            var (a, b) = (refs[0], refs[i]);
            if (Difference(_c.Models[a.Text].Folder.Config!, _c.Models[b.Text].Folder.Config!) is not { } what) continue;
            string line = $"models '{a.Text}' and '{b.Text}' {what}";
            if (_c.Options.AllowCrimes) _c.Warnings.Add($"{line}; merging anyway (--allow-crimes)");
            else _c.Problems.Add(b.Mark, $"{line}; merging them is refused (pass --allow-crimes to merge anyway)");
        }
    }

    /// <summary>What differs between two configs ("have different architectures (…)" / "differ in …"), or null.</summary>
    internal static string? Difference(ModelConfig a, ModelConfig b)
    {
        bool known = a.Identity != ModelConfig.Unspecified && b.Identity != ModelConfig.Unspecified;
        bool same = a.Architecture != null && b.Architecture != null ? a.Architecture == b.Architecture : a.Identity == b.Identity;
        if (known && !same) return $"have different architectures ({a.Identity} vs {b.Identity})";
        var keys = a.Names.Keys;
        var dims = new (string Key, int A, int B)[]
        {
            (keys.Hidden, a.HiddenSize, b.HiddenSize),
            (keys.Intermediate, a.IntermediateSize, b.IntermediateSize),
            (keys.Heads, a.NumAttentionHeads, b.NumAttentionHeads),
            (keys.KvHeads, a.NumKeyValueHeads, b.NumKeyValueHeads),
            (keys.HeadDim, a.HeadDim, b.HeadDim),
            (keys.Experts ?? "experts", a.NumLocalExperts, b.NumLocalExperts),
        };
        var differ = dims.Where(d => d.A > 0 && d.B > 0 && d.A != d.B).Select(d => $"{d.Key} ({d.A} vs {d.B})").ToList();
        return differ.Count == 0 ? null : "differ in " + string.Join(", ", differ);
    }
}
