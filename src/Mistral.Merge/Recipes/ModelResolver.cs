using Mistral.Merge.Hub;

namespace Mistral.Merge.Recipes;

/// <summary>
/// Turns a recipe's model text into a folder: a local path (relative paths against the recipe's folder) or a Hugging
/// Face id <c>org/name[@revision]</c> found in the local HF cache (<c>models--org--name/snapshots/REV</c>,
/// <c>refs/REV</c> naming the snapshot; default <c>main</c>), downloaded when the resolver was given Hub options
/// (see <see cref="ModelLocator"/>, which does the work).
/// </summary>
public sealed class ModelResolver
{
    private readonly ModelLocator _locator;

    public string BaseFolder { get; }
    public string HubCache { get; }

    /// <param name="hub">Hub settings to download with; null: the cache is only read.</param>
    public ModelResolver(string baseFolder, string? hubCache = null, HubOptions? hub = null)
    {
        BaseFolder = Path.GetFullPath(baseFolder);
        HubCache = hubCache ?? hub?.Cache ?? DefaultHubCache();
        _locator = hub == null ? new ModelLocator(new HubOptions { Cache = HubCache }, download: false)
            : new ModelLocator(hub with { Cache = HubCache });
    }

    /// <summary>$HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.</summary>
    public static string DefaultHubCache() => HubOptions.CacheFolder(HubOptions.ProcessEnvironment);

    /// <summary>The Hub id <c>org/name</c> of a folder that is a snapshot in a Hugging Face cache; null for any other folder.</summary>
    public static string? HubIdOf(string folder) => Mistral.Merge.Hub.HubCache.IdOfSnapshot(folder);

    /// <summary>The folder, or null with <paramref name="whereLooked"/> explaining where it looked; a failed download throws its one-line error.</summary>
    public string? TryResolve(string text, out string whereLooked) => _locator.TryLocate(text, BaseFolder, out whereLooked);
}
