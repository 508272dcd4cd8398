using System.Text;

namespace Mistral.Merge.Cli.Quickstart;

/// <summary>
/// What <c>quickstart</c> writes into its folder: the three stories260k models and the eval texts embedded from
/// examples/ (see the csproj: each resource is named "quickstart/" + its path in the folder) and two recipes.
/// </summary>
internal static class QuickstartFiles
{
    private const string Prefix = "quickstart/";

    /// <summary>examples/stories-slerp.yml's per-filter schedules at half strength (t ≤ 0.5 in attention and MLP),
    /// so the merge picks up WikiText and still tells a story; at full strength the story falls apart.</summary>
    public const string SlerpRecipe = """
        # SLERP of the TinyStories base with its WikiText fine-tune, separate t schedules for attention and MLP.
        merge_method: slerp
        base_model: base
        slices:
          - sources:
              - model: base
                layer_range: [0, 5]
              - model: wiki
                layer_range: [0, 5]
        parameters:
          t:
            - filter: self_attn
              value: [0, 0.25, 0.15, 0.35, 0.5]
            - filter: mlp
              value: [0.5, 0.25, 0.35, 0.15, 0]
            - value: 0.5
        dtype: bfloat16
        """;

    /// <summary>examples/stories-ties.yml on the quickstart's folders.</summary>
    public const string TiesRecipe = """
        # TIES of the wiki and code fine-tunes' task vectors on the TinyStories base.
        merge_method: ties
        base_model: base
        models:
          - model: wiki
            parameters:
              density: 0.5
              weight: 0.5
          - model: code
            parameters:
              density: 0.3
              weight: [0.3, 0.7]
        parameters:
          normalize: true
        dtype: bfloat16
        """;

    /// <summary>Every file as (path relative to the folder, bytes), in a stable order.</summary>
    public static List<(string Path, byte[] Bytes)> All()
    {
        var asm = typeof(QuickstartFiles).Assembly;
        var files = asm.GetManifestResourceNames()
            .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n => (n[Prefix.Length..], Read(asm, n)))
            .ToList();
        files.Add(("slerp.yml", Encoding.UTF8.GetBytes(SlerpRecipe + "\n")));
        files.Add(("ties.yml", Encoding.UTF8.GetBytes(TiesRecipe + "\n")));
        return files;
    }

    /// <summary>Refuses, unless <paramref name="force"/>, a file that exists with other contents (e.g. an edited recipe).</summary>
    public static void Check(string root, IEnumerable<(string Path, byte[] Bytes)> files, bool force)
    {
        if (force) return;
        foreach (var (rel, bytes) in files)
        {
            var path = Path.Combine(root, rel);
            if (File.Exists(path) && !File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes))
                throw new MergeException($"{path}: exists and differs from the quickstart's (use --force to replace it)");
        }
    }

    public static void Write(string root, IEnumerable<(string Path, byte[] Bytes)> files)
    {
        foreach (var (rel, bytes) in files)
        {
            var path = Path.Combine(root, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, bytes);
        }
    }

    private static byte[] Read(System.Reflection.Assembly asm, string name)
    {
        using var s = asm.GetManifestResourceStream(name)!;
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }
}
