namespace Mistral.Merge.Hub;

/// <summary>
/// The one place a model's text becomes a folder, for every command's MODEL argument and every model of a recipe:
/// a local folder first (relative to a base folder; <c>~/</c> expanded); else, for a Hub id <c>org/name[@revision]</c>,
/// the snapshot in the Hugging Face cache, downloaded when the cache lacks it (unless downloading is off:
/// HF_HUB_OFFLINE, or a caller that only reads the cache).
/// </summary>
public sealed class ModelLocator(HubOptions hub, bool download = true)
{
    public HubOptions Hub { get; } = hub;

    /// <summary>The local folder <paramref name="text"/> names, relative paths against <paramref name="baseFolder"/>.</summary>
    public static string LocalPath(string text, string baseFolder)
    {
        var expanded = text.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), text[2..]) : text;
        return Path.GetFullPath(Path.IsPathRooted(expanded) ? expanded : Path.Combine(baseFolder, expanded));
    }

    /// <summary>
    /// The folder, or null with <paramref name="whereLooked"/> saying where it looked. A download that fails throws
    /// its <see cref="HubException"/> (for a text that could also be a mistyped path, naming the local folder too).
    /// </summary>
    public string? TryLocate(string text, string baseFolder, out string whereLooked)
    {
        var local = LocalPath(text, baseFolder);
        whereLooked = "";
        if (Directory.Exists(local)) return local;
        var localLooked = $"local folder {local}";
        if (HubId.TryParse(text) is not { } id) { whereLooked = localLooked; return null; }
        if (!download || Hub.Offline)
        {
            var cached = new HubCache(Hub.Cache, id).TryResolve(id.Revision, out var looked);
            if (cached != null) return cached;
            whereLooked = $"{localLooked} and {looked}" + (download ? " (HF_HUB_OFFLINE is set: not downloaded)" : "");
            return null;
        }
        try { return HubDownloader.Download(id, Hub).Path; }
        catch (HubException e) when (e.Kind is HubFailure.RepoNotFound or HubFailure.Unauthorized)
        {
            throw new HubException(e.Kind, $"no local folder {local}, and {e.Message}", e);
        }
    }
}
