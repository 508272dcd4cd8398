using System.CommandLine;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.Hub;

namespace Mistral.Merge.Cli;

/// <summary>
/// Every command's MODEL argument goes through here: an existing file or folder is used as it is (a missing path keeps
/// the command's own "not found" error); a Hub id <c>org/name[@revision]</c> becomes its snapshot in the Hugging Face
/// cache, downloaded first when absent (<see cref="ModelLocator"/>), with the one progress display.
/// </summary>
internal static class ModelArguments
{
    public static string Resolve(ParseResult p, Argument<string> model) => Resolve(p, p.GetValue(model)!);

    public static string Resolve(ParseResult p, string text)
    {
        if (Directory.Exists(text) || File.Exists(text) || HubId.TryParse(text) == null) return text;
        using var display = new LazyProgress(p, $"download {text}");
        var folder = new ModelLocator(Options(p, display)).TryLocate(text, Directory.GetCurrentDirectory(), out var looked);
        if (folder == null) throw new MergeException($"model '{text}' not found: looked in {looked}");
        display.Complete();
        return folder;
    }

    /// <summary>The Hub settings of this run (its environment; <paramref name="cache"/> overrides the cache folder), reporting to <paramref name="display"/>.</summary>
    public static HubOptions Options(ParseResult p, LazyProgress display, string? cache = null)
    {
        var err = p.InvocationConfiguration.Error;
        bool quiet = CommonOptions.IsQuiet(p);
        return HubOptions.FromEnvironment(CliEnvironment.Get, cache) with
        {
            Progress = display.Report,
            Notice = line => { if (!quiet || line.StartsWith("warning:", StringComparison.Ordinal)) display.WriteLine(line); },
        };
    }
}

/// <summary>The download's progress display, drawn only once bytes are downloaded (a model found in the cache shows nothing).</summary>
internal sealed class LazyProgress(ParseResult p, string label) : IDisposable
{
    private readonly object _lock = new();
    private Progress? _progress;

    public void Report(long done, long total)
    {
        lock (_lock) _progress ??= Progress.For(p, label, Progress.Bytes);
        _progress.Report(done, total);
    }

    public void WriteLine(string line)
    {
        lock (_lock)
        {
            if (_progress != null) _progress.WriteLine(line);
            else p.InvocationConfiguration.Error.WriteLine(line);
        }
    }

    public void Complete() => _progress?.Complete();

    public void Dispose() => _progress?.Dispose();
}
