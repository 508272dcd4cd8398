using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Mistral.Merge.Models;

/// <summary>The config.json keys an architecture reads (HF names); the dimensions are shared by every declaration.</summary>
public sealed record ConfigKeys
{
    public string Hidden { get; init; } = "hidden_size";
    public string Intermediate { get; init; } = "intermediate_size";
    public string Layers { get; init; } = "num_hidden_layers";
    public string Heads { get; init; } = "num_attention_heads";
    public string KvHeads { get; init; } = "num_key_value_heads";
    public string HeadDim { get; init; } = "head_dim";
    public string Vocab { get; init; } = "vocab_size";
    public string RopeTheta { get; init; } = "rope_theta";
    public string RmsNormEps { get; init; } = "rms_norm_eps";
    public string TieWordEmbeddings { get; init; } = "tie_word_embeddings";
    /// <summary>The attention window (null: the architecture has none and the key is ignored).</summary>
    public string? SlidingWindow { get; init; } = "sliding_window";
    /// <summary>A boolean that must be true for <see cref="SlidingWindow"/> to apply (Qwen2's <c>use_sliding_window</c>).</summary>
    public string? SlidingWindowSwitch { get; init; }
    /// <summary>MoE: the number of experts and of experts routed per token (null for dense architectures).</summary>
    public string? Experts { get; init; }
    public string? ExpertsPerToken { get; init; }

    /// <summary>Every key listed, for documentation and <c>inspect</c>.</summary>
    public IEnumerable<string> All() => new[] { Hidden, Intermediate, Layers, Heads, KvHeads, HeadDim, Vocab, RopeTheta, RmsNormEps,
        TieWordEmbeddings, SlidingWindow, SlidingWindowSwitch, Experts, ExpertsPerToken }.OfType<string>();
}

/// <summary>Values <c>synth</c> writes into a new config.json of this architecture (beside the dimensions it is given).</summary>
public sealed record SynthDefaults
{
    public int MaxPositionEmbeddings { get; init; } = 32768;
    public double RopeTheta { get; init; } = 10000.0;
    /// <summary>Keys written after <c>rope_theta</c>, in this order (e.g. <c>sliding_window</c>).</summary>
    public IReadOnlyList<(string Key, JsonNode? Value)> Keys { get; init; } = [];
    /// <summary>MoE: keys written after the expert counts (e.g. <c>router_aux_loss_coef</c>).</summary>
    public IReadOnlyList<(string Key, JsonNode? Value)> MoeKeys { get; init; } = [];
}

/// <summary>
/// One supported model architecture, declared as data in its own file under <c>Models/Architectures/</c>: the HF
/// <c>architectures</c> / <c>model_type</c> values it matches, the config keys it reads, and the tensor-name
/// templates of its global tensors, of each layer (<c>{layer}</c>) and of each expert (<c>{expert}</c>). Everything
/// that reads or writes tensor names (planner, forward pass, synth, MoE surgery, CUDA layout, inspect) asks a
/// declaration; a new architecture is a new <c>static readonly Architecture</c> field in a new partial file.
/// </summary>
public sealed partial class Architecture
{
    /// <summary>Short name: <c>synth --arch</c>, messages.</summary>
    public required string Name { get; init; }
    /// <summary>HF <c>architectures[0]</c> values; the first is written by synth and MoE surgery.</summary>
    public required IReadOnlyList<string> HfArchitectures { get; init; }
    /// <summary>HF <c>model_type</c> values (used when a config has no <c>architectures</c>); the first is written.</summary>
    public required IReadOnlyList<string> ModelTypes { get; init; }
    /// <summary>Position in lists (<c>synth --arch</c>, messages).</summary>
    public required int Order { get; init; }
    public ConfigKeys Keys { get; init; } = new();
    public SynthDefaults Synth { get; init; } = new();

    // Global tensors.
    public required string Embed { get; init; }
    public required string FinalNorm { get; init; }
    /// <summary>The output head; with tied embeddings it may be absent and <see cref="Embed"/> stands for it.</summary>
    public required string LmHead { get; init; }

    // Per layer: LayerPrefix holds {layer}; the rest are relative to it.
    public required string LayerPrefix { get; init; }
    public required string InputNorm { get; init; }
    public required string PostAttentionNorm { get; init; }
    public required string Q { get; init; }
    public required string K { get; init; }
    public required string V { get; init; }
    public required string O { get; init; }
    /// <summary>Biases of the q/k/v projections (Qwen2), null when the architecture has none.</summary>
    public string? QBias { get; init; }
    public string? KBias { get; init; }
    public string? VBias { get; init; }
    /// <summary>Dense MLP (null for MoE architectures).</summary>
    public string? Gate { get; init; }
    public string? Up { get; init; }
    public string? Down { get; init; }
    /// <summary>MoE: the router and the per-expert templates (hold {expert}): w1 = gate, w3 = up, w2 = down.</summary>
    public string? Router { get; init; }
    public string? ExpertGate { get; init; }
    public string? ExpertUp { get; init; }
    public string? ExpertDown { get; init; }
    /// <summary>MoE: the dense architecture its experts collapse into (moe_to_dense output).</summary>
    public string? DenseCounterpart { get; init; }
    /// <summary>Layer tensors that hold no weights and are never merged (e.g. <c>rotary_emb.inv_freq</c> buffers).</summary>
    public IReadOnlyList<string> IgnoredSuffixes { get; init; } = [];

    public bool IsMoe => Router != null;
    public bool HasAttentionBias => QBias != null || KBias != null || VBias != null;
    public string HfArchitecture => HfArchitectures[0];
    public string ModelType => ModelTypes[0];
    /// <summary>What kind of model this is, for messages: <c>MistralForCausalLM</c>.</summary>
    public override string ToString() => HfArchitecture;

    // ------------------------------------------------------------------ registry

    private static IReadOnlyList<Architecture>? _all;

    /// <summary>Every declaration (the public static fields of this type), in <see cref="Order"/>.</summary>
    public static IReadOnlyList<Architecture> All => _all ??= typeof(Architecture)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.FieldType == typeof(Architecture) && f.IsInitOnly)
        .Select(f => (Architecture)f.GetValue(null)!)
        .OrderBy(a => a.Order).ThenBy(a => a.Name, StringComparer.Ordinal)
        .ToList();

    /// <summary>
    /// The naming used where a model has no config.json or an architecture no declaration matches: the planner,
    /// inspect and the natural tensor order still need to find layers (Mistral's HF layout, shared by the Llama family).
    /// </summary>
    public static Architecture Default => Mistral;

    /// <summary>By <c>synth --arch</c> name (case-insensitive), or null.</summary>
    public static Architecture? Named(string name) => All.FirstOrDefault(a => string.Equals(a.Name, name.Trim(), StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The declaration a config names: <c>architectures[0]</c> when present (HF's own choice), else <c>model_type</c>;
    /// null when neither matches one.
    /// </summary>
    public static Architecture? Match(string hfArchitecture, string modelType) =>
        hfArchitecture.Length > 0
            ? All.FirstOrDefault(a => a.HfArchitectures.Contains(hfArchitecture))
            : All.FirstOrDefault(a => a.ModelTypes.Contains(modelType));

    /// <summary>"MistralForCausalLM, …" for messages.</summary>
    public static string SupportedList => string.Join(", ", All.Select(a => a.HfArchitecture));

    // ------------------------------------------------------------------ names

    private Regex? _layerRegex;
    private (string W, Regex Pattern)[]? _expertPatterns;

    private Regex LayerRegex => _layerRegex ??= new Regex(
        "^" + Regex.Escape(LayerPrefix).Replace(Regex.Escape("{layer}"), @"(\d+)", StringComparison.Ordinal) + "(.+)$", RegexOptions.CultureInvariant);

    /// <summary>The full name of layer <paramref name="layer"/>'s tensor <paramref name="suffix"/>.</summary>
    public string Layer(int layer, string suffix) => LayerPrefix.Replace("{layer}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal) + suffix;

    /// <summary>Splits a layer tensor's name into (layer, suffix); false for tensors outside the layers.</summary>
    public bool TryParseLayer(string name, out int layer, out string suffix)
    {
        var m = LayerRegex.Match(name);
        if (m.Success && int.TryParse(m.Groups[1].ValueSpan, out layer)) { suffix = m.Groups[2].Value; return true; }
        layer = -1; suffix = ""; return false;
    }

    /// <summary>Expert <paramref name="expert"/>'s tensor of a layer-relative template.</summary>
    public static string Expert(string template, int expert) =>
        template.Replace("{expert}", expert.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    /// <summary>The MoE templates by their Mixtral names (w1 = gate, w3 = up, w2 = down).</summary>
    public string ExpertTemplate(string w) => w switch
    {
        "w1" => ExpertGate ?? throw NotMoe(),
        "w2" => ExpertDown ?? throw NotMoe(),
        "w3" => ExpertUp ?? throw NotMoe(),
        _ => throw new ArgumentException($"no expert weight '{w}' (w1, w2, w3)", nameof(w)),
    };

    private InvalidOperationException NotMoe() => new($"{HfArchitecture} has no experts");

    /// <summary>The layer-relative module that holds the experts (<c>…experts</c>), the name filters match for per-expert values.</summary>
    public string ExpertsModule => ExpertGate is { } g ? g[..g.IndexOf(".{expert}", StringComparison.Ordinal)] : throw NotMoe();

    private (string W, Regex Pattern)[] ExpertPatterns => _expertPatterns ??= new[] { ("w1", ExpertGate), ("w2", ExpertDown), ("w3", ExpertUp) }
        .Where(t => t.Item2 != null)
        .Select(t => (t.Item1, new Regex("^" + Regex.Escape(t.Item2!).Replace(Regex.Escape("{expert}"), @"(\d+)", StringComparison.Ordinal) + "$", RegexOptions.CultureInvariant)))
        .ToArray();

    /// <summary>Parses a layer-relative expert tensor into (expert, w1|w2|w3); false for anything else.</summary>
    public bool TryParseExpert(string suffix, out int expert, out string w)
    {
        foreach (var (name, pattern) in ExpertPatterns)
        {
            var m = pattern.Match(suffix);
            if (m.Success && int.TryParse(m.Groups[1].ValueSpan, out expert)) { w = name; return true; }
        }
        expert = -1; w = ""; return false;
    }

    /// <summary>Whether a layer-relative suffix belongs to the MoE block (router or any expert, even one out of range).</summary>
    public bool IsMoeSuffix(string suffix) => IsMoe && suffix.StartsWith(MoeBlockPrefix, StringComparison.Ordinal);

    private string MoeBlockPrefix => Router is { } r ? r[..(r.IndexOf('.', StringComparison.Ordinal) + 1)] : throw NotMoe();

    /// <summary>The input embedding or the output head: the tensors whose rows are the vocabulary.</summary>
    public bool IsVocabTensor(string name) => name == Embed || name == LmHead;

    /// <summary>A layer buffer that is not a weight (never merged).</summary>
    public bool IsIgnored(string name) => IgnoredSuffixes.Any(s => name.EndsWith(s, StringComparison.Ordinal));

    /// <summary>Embeddings before the layers, then layers by number, then the rest (final norm, lm_head); ordinal within a group.</summary>
    public int Compare(string a, string b)
    {
        var (ga, la) = Key(a);
        var (gb, lb) = Key(b);
        if (ga != gb) return ga.CompareTo(gb);
        if (la != lb) return la.CompareTo(lb);
        return string.CompareOrdinal(a, b);
    }

    private (int Group, int Layer) Key(string n)
    {
        if (TryParseLayer(n, out var l, out _)) return (1, l);
        if (n == Embed) return (0, 0);
        return (2, 0);
    }

    public List<string> SortNatural(IEnumerable<string> names)
    {
        var list = names.ToList();
        list.Sort(Compare);
        return list;
    }
}
