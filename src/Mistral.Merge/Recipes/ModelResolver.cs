using System.Text.RegularExpressions;

namespace Mistral.Merge.Recipes;

/// <summary>
/// Turns a recipe's model text into a folder: a local path (relative paths against the recipe's
/// folder) or a Hugging Face id <c>org/name[@revision]</c> found in the local HF cache
/// (<c>models--org--name/snapshots/REV</c>, <c>refs/REV</c> naming the snapshot; default <c>main</c>).
/// </summary>
public sealed partial class ModelResolver
{
    [GeneratedRegex(@"^(?<id>[A-Za-z0-9][\w.\-]*/[\w.\-]+)(@(?<rev>[\w.\-/]+))?$")]
    private static partial Regex HfIdRegex();

    public string BaseFolder { get; }
    public string HubCache { get; }

    public ModelResolver(string baseFolder, string? hubCache = null)
    {
        BaseFolder = Path.GetFullPath(baseFolder);
        HubCache = hubCache ?? DefaultHubCache();
    }

    /// <summary>$HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.</summary>
    public static string DefaultHubCache()
    {
        var hub = Environment.GetEnvironmentVariable("HF_HUB_CACHE");
        if (!string.IsNullOrEmpty(hub)) return hub;
        var home = Environment.GetEnvironmentVariable("HF_HOME");
        if (!string.IsNullOrEmpty(home)) return Path.Combine(home, "hub");
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg)) return Path.Combine(xdg, "huggingface", "hub");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface", "hub");
    }

    [GeneratedRegex(@"[/\\]models--(?<org>[A-Za-z0-9][\w.\-]*?)--(?<name>[\w.\-]+)[/\\]snapshots[/\\][^/\\]+[/\\]?$")]
    private static partial Regex SnapshotRegex();

    /// <summary>The Hub id <c>org/name</c> of a folder that is a snapshot in a Hugging Face cache; null for any other folder.</summary>
    public static string? HubIdOf(string folder)
    {
        var m = SnapshotRegex().Match(folder);
        return m.Success ? m.Groups["org"].Value + "/" + m.Groups["name"].Value : null;
    }

    /// <summary>The folder, or null with <paramref name="whereLooked"/> explaining where it looked.</summary>
    public string? TryResolve(string text, out string whereLooked)
    {
        var expanded = text.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), text[2..]) : text;
        var local = Path.GetFullPath(Path.IsPathRooted(expanded) ? expanded : Path.Combine(BaseFolder, expanded));
        if (Directory.Exists(local)) { whereLooked = ""; return local; }
        var looked = new List<string> { $"local folder {local}" };
        var m = HfIdRegex().Match(text);
        if (m.Success && !Path.IsPathRooted(text) && !text.StartsWith('.'))
        {
            var id = m.Groups["id"].Value;
            var rev = m.Groups["rev"].Success ? m.Groups["rev"].Value : "main";
            var repo = Path.Combine(HubCache, "models--" + id.Replace("/", "--"));
            var snapshots = Path.Combine(repo, "snapshots");
            var direct = Path.Combine(snapshots, rev);
            if (Directory.Exists(direct)) { whereLooked = ""; return direct; }
            var refFile = Path.Combine(repo, "refs", rev);
            if (File.Exists(refFile))
            {
                var hash = IO.InputFile.ReadAllText(refFile, 4096, "a Hugging Face cache ref").Trim();
                var snap = Path.Combine(snapshots, hash);
                if (hash.Length > 0 && Directory.Exists(snap)) { whereLooked = ""; return snap; }
                looked.Add($"Hugging Face cache {snap} (named by {refFile})");
            }
            else looked.Add($"Hugging Face cache {Path.Combine(snapshots, rev == "main" ? "<refs/main>" : rev)}");
        }
        whereLooked = string.Join(" and ", looked);
        return null;
    }
}
