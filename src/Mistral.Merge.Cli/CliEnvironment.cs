namespace Mistral.Merge.Cli;

/// <summary>
/// The environment variables a command reads (HF_HOME, HF_TOKEN, HF_ENDPOINT, ...): the process's own, or those an
/// in-process caller passed for this one run (tests run many CLIs at once, each with its own HF_HOME and endpoint).
/// </summary>
internal static class CliEnvironment
{
    private static readonly AsyncLocal<Func<string, string?>?> Current = new();

    public static string? Get(string name) => (Current.Value ?? Environment.GetEnvironmentVariable)(name);

    /// <summary>Uses <paramref name="environment"/> (null: the process's) until the returned scope is disposed.</summary>
    public static IDisposable Use(Func<string, string?>? environment)
    {
        var previous = Current.Value;
        Current.Value = environment;
        return new Scope(() => Current.Value = previous);
    }

    private sealed class Scope(Action end) : IDisposable
    {
        public void Dispose() => end();
    }
}
