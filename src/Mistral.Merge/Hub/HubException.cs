namespace Mistral.Merge.Hub;

/// <summary>Why the Hub did not give a model; lets a caller add context to the cases a typo in a path can cause.</summary>
public enum HubFailure { Other, Unauthorized, Gated, RepoNotFound, RevisionNotFound, FileNotFound, Network, Offline }

/// <summary>A one-line Hub error (a <see cref="MergeException"/>) with its kind.</summary>
public sealed class HubException(HubFailure kind, string message, Exception? inner = null) : MergeException(message, inner!)
{
    public HubFailure Kind { get; } = kind;
}
