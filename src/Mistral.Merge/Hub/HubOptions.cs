namespace Mistral.Merge.Hub;

/// <summary>
/// Where and how to reach the Hugging Face Hub, read once from an environment (never from the process's directly, so
/// callers and tests can pass their own): the cache folder, the endpoint, the token, offline mode.
/// </summary>
public sealed record HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>The hub cache folder holding <c>models--org--name</c> (shared with Python's huggingface_hub).</summary>
    public required string Cache { get; init; }
    public string Endpoint { get; init; } = DefaultEndpoint;
    public string? Token { get; init; }
    /// <summary>HF_HUB_OFFLINE: use the cache only, never the network.</summary>
    public bool Offline { get; init; }
    /// <summary>Files downloaded at once.</summary>
    public int Parallel { get; init; } = 4;
    /// <summary>Bytes downloaded of the bytes to download (called from several threads).</summary>
    public Action<long, long>? Progress { get; init; }
    /// <summary>An informational line ("downloading org/name ...") or a warning ("warning: ...").</summary>
    public Action<string>? Notice { get; init; }
    /// <summary>How long a connection or a silent server may take before the download fails.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The settings huggingface_hub reads: HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME for the cache, HF_ENDPOINT,
    /// HF_TOKEN, else the token file (HF_TOKEN_PATH, default $HF_HOME/token, which <c>huggingface-cli login</c>
    /// writes), HF_HUB_OFFLINE. <paramref name="cacheOverride"/> (a command's own option) wins over the environment.
    /// </summary>
    public static HubOptions FromEnvironment(Func<string, string?> env, string? cacheOverride = null)
    {
        var endpoint = Get(env, "HF_ENDPOINT") ?? DefaultEndpoint;
        return new HubOptions
        {
            Cache = cacheOverride ?? CacheFolder(env),
            Endpoint = endpoint.TrimEnd('/'),
            Token = TokenFrom(env),
            Offline = IsTrue(Get(env, "HF_HUB_OFFLINE")),
        };
    }

    /// <summary>The process's own environment.</summary>
    public static string? ProcessEnvironment(string name) => Environment.GetEnvironmentVariable(name);

    /// <summary>$HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.</summary>
    public static string CacheFolder(Func<string, string?> env)
        => Get(env, "HF_HUB_CACHE") ?? Get(env, "HUGGINGFACE_HUB_CACHE") ?? Path.Combine(HfHome(env), "hub");

    /// <summary>$HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.</summary>
    public static string HfHome(Func<string, string?> env) => Get(env, "HF_HOME")
        ?? Path.Combine(Get(env, "XDG_CACHE_HOME")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");

    /// <summary>HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the token file's content; null when neither gives one.</summary>
    public static string? TokenFrom(Func<string, string?> env)
    {
        var token = Get(env, "HF_TOKEN") ?? Get(env, "HUGGING_FACE_HUB_TOKEN");
        if (token != null) return token.Trim();
        var path = Get(env, "HF_TOKEN_PATH") ?? Path.Combine(HfHome(env), "token");
        if (!File.Exists(path)) return null;
        var text = IO.InputFile.ReadAllText(path, 64 * 1024, "a Hugging Face token file").Trim();
        return text.Length > 0 ? text : null;
    }

    /// <summary>huggingface_hub's truth values: 1, ON, YES, TRUE (any case).</summary>
    public static bool IsTrue(string? v) => v != null && v.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static string? Get(Func<string, string?> env, string name) => env(name) is { Length: > 0 } v ? v : null;
}
