using System.Text.RegularExpressions;

namespace Mistral.Merge.Hub;

/// <summary>A Hub model as written on a command line or in a recipe: <c>org/name[@revision]</c> (default revision main).</summary>
public sealed partial record HubId(string Repo, string Revision)
{
    [GeneratedRegex(@"^(?<id>[A-Za-z0-9][\w.\-]*/[\w.\-]+)(@(?<rev>[\w.\-/]+))?$")]
    private static partial Regex Pattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    /// <summary>The id of <paramref name="text"/>, or null for text that can only be a path (rooted, ./, ../, ~/).</summary>
    public static HubId? TryParse(string text)
    {
        if (Path.IsPathRooted(text) || text.StartsWith('.') || text.StartsWith('~')) return null;
        var m = Pattern().Match(text);
        if (!m.Success) return null;
        var rev = m.Groups["rev"].Success ? m.Groups["rev"].Value : "main";
        // the revision names files under refs/ and snapshots/: no "." or ".." step out of them
        if (rev.Split('/').Any(step => step is "" or "." or "..")) return null;
        return new HubId(m.Groups["id"].Value, rev);
    }

    /// <summary>A full commit sha (40 lowercase hex digits), as opposed to a branch or tag name.</summary>
    public static bool IsCommit(string revision) => CommitPattern().IsMatch(revision);

    /// <summary>The repository's folder name in the cache: <c>models--org--name</c>.</summary>
    public string FolderName => "models--" + Repo.Replace("/", "--");

    public override string ToString() => Revision == "main" ? Repo : $"{Repo}@{Revision}";
}
