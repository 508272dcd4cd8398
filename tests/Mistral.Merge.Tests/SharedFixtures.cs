namespace Mistral.Merge.Tests;

/// <summary>Locates <c>../shared/fixtures</c> beside the repository root (absent in a user's clone).</summary>
public static class SharedFixtures
{
    public static readonly string RepoRoot = FindRepoRoot();
    public static readonly string Root = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures"));
    public static bool Available => Directory.Exists(Root) && File.Exists(Path.Combine(Root, "expected.json"));
    public const string SkipReason = "../shared/fixtures is not beside the repository; shared-fixture test skipped";

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Mistral.Merge.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find Mistral.Merge.sln above " + AppContext.BaseDirectory);
    }
}

/// <summary>A fact that needs ../shared/fixtures; skipped with a visible reason when it is absent.</summary>
public sealed class FixtureFactAttribute : FactAttribute
{
    public FixtureFactAttribute() { if (!SharedFixtures.Available) Skip = SharedFixtures.SkipReason; }
}

/// <summary>A theory that needs ../shared/fixtures; skipped with a visible reason when it is absent.</summary>
public sealed class FixtureTheoryAttribute : TheoryAttribute
{
    public FixtureTheoryAttribute() { if (!SharedFixtures.Available) Skip = SharedFixtures.SkipReason; }
}

/// <summary>A temporary folder deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mm-test-" + Guid.NewGuid().ToString("N")[..12]);
    public TempDir() => Directory.CreateDirectory(Path);
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}
