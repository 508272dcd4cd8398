using System.Text.Json;

namespace Mistral.Merge.Hub;

/// <summary>
/// The files of a repository the tool reads: the configs and tokenizer files, then the weights: the safetensors
/// shards the index names (model.safetensors.index.json's weight_map), else every top-level *.safetensors, and the
/// pytorch_model*.bin files only when there is no safetensors file. Files in subfolders (e.g. original/) are skipped.
/// </summary>
public static class HubFiles
{
    public const string SafetensorsIndex = "model.safetensors.index.json";
    public const string BinIndex = "pytorch_model.bin.index.json";

    public static readonly string[] SideFiles =
    [
        "config.json", "generation_config.json", "tokenizer.model", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "chat_template.jinja", "added_tokens.json", "adapter_config.json",
    ];

    /// <summary>The small files to fetch first: the side files and the weights' index, those the repository has.</summary>
    public static List<string> First(IReadOnlyList<string> repoFiles)
    {
        var wanted = new List<string>(SideFiles) { HasSafetensors(repoFiles) ? SafetensorsIndex : BinIndex };
        return repoFiles.Where(wanted.Contains).ToList();
    }

    /// <summary>The weight files, once the index (when there is one) is in <paramref name="snapshot"/>.</summary>
    public static List<string> Weights(IReadOnlyList<string> repoFiles, string snapshot, string repo)
    {
        bool st = HasSafetensors(repoFiles);
        var index = st ? SafetensorsIndex : BinIndex;
        if (repoFiles.Contains(index))
        {
            var named = ShardsOf(Path.Combine(snapshot, index), repo);
            var missing = named.FirstOrDefault(n => !repoFiles.Contains(n));
            if (missing != null) throw new HubException(HubFailure.Other, $"{repo}: {index} names '{missing}', which the repository does not hold");
            return named;
        }
        return repoFiles.Where(f => !f.Contains('/') && (st ? f.EndsWith(".safetensors", StringComparison.Ordinal)
            : f.StartsWith("pytorch_model", StringComparison.Ordinal) && f.EndsWith(".bin", StringComparison.Ordinal))).ToList();
    }

    /// <summary>
    /// What a snapshot folder lacks to be usable: a shard its index names (a dangling link counts as missing), or any
    /// weight file at all; null when complete. A download interrupted in a commit's folder leaves it so.
    /// </summary>
    public static string? MissingWeights(string snapshot)
    {
        foreach (var index in new[] { SafetensorsIndex, BinIndex })
        {
            var path = Path.Combine(snapshot, index);
            if (!File.Exists(path)) continue;
            List<string> shards;
            try { shards = ShardsOf(path, snapshot); }
            catch (HubException) { return $"a valid {index}"; }
            return shards.FirstOrDefault(n => !File.Exists(Path.Combine(snapshot, n)));
        }
        bool any = Directory.EnumerateFiles(snapshot).Select(Path.GetFileName).Any(f => File.Exists(Path.Combine(snapshot, f!))
            && (f!.EndsWith(".safetensors", StringComparison.Ordinal) || (f.StartsWith("pytorch_model", StringComparison.Ordinal) && f.EndsWith(".bin", StringComparison.Ordinal))));
        return any ? null : "its weights (*.safetensors or pytorch_model*.bin)";
    }

    private static bool HasSafetensors(IReadOnlyList<string> repoFiles)
        => repoFiles.Any(f => !f.Contains('/') && f.EndsWith(".safetensors", StringComparison.Ordinal));

    /// <summary>The distinct files an index's weight_map names, in order of first appearance.</summary>
    internal static List<string> ShardsOf(string indexPath, string repo)
    {
        try
        {
            using var doc = JsonDocument.Parse(IO.InputFile.ReadAllText(indexPath, IO.InputFile.Limits.JsonSideFile, "a weights index"));
            var names = new List<string>();
            foreach (var p in doc.RootElement.GetProperty("weight_map").EnumerateObject())
                if (p.Value.GetString() is { } f && !names.Contains(f)) names.Add(f);
            if (names.Any(n => n.Contains('/') || n.Contains('\\') || n.StartsWith('.')))
                throw new JsonException("a shard name with a folder");
            return names;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new HubException(HubFailure.Other, $"{repo}: {Path.GetFileName(indexPath)} has no valid weight_map ({e.Message})");
        }
    }
}
