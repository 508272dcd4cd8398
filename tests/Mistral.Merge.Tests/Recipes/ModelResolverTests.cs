using Mistral.Merge.Recipes;

namespace Mistral.Merge.Tests.Recipes;

public class ModelResolverTests
{
    [Fact]
    public void LocalFolderRelativeToRecipeFolder()
    {
        using var d = new TempDir();
        Directory.CreateDirectory(d["models/a"]);
        var r = new ModelResolver(d.Path, d["hub"]);
        Assert.Equal(d["models/a"], r.TryResolve("models/a", out _));
        Assert.Equal(d["models/a"], r.TryResolve(d["models/a"], out _));
    }

    [Fact]
    public void HuggingFaceCacheRefsMainRevisionAndWhereLooked()
    {
        using var d = new TempDir();
        var repo = d["hub/models--org--name"];
        Directory.CreateDirectory(Path.Combine(repo, "snapshots", "abc123"));
        Directory.CreateDirectory(Path.Combine(repo, "snapshots", "def456"));
        // a snapshot counts only with its weights (an interrupted download's side files alone never do)
        foreach (var snap in new[] { "abc123", "def456" }) File.WriteAllBytes(Path.Combine(repo, "snapshots", snap, "model.safetensors"), []);
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), "abc123\n");
        File.WriteAllText(Path.Combine(repo, "refs", "v2"), "def456");
        var r = new ModelResolver(d["recipes"], d["hub"]);
        Assert.Equal(Path.Combine(repo, "snapshots", "abc123"), r.TryResolve("org/name", out _));
        Assert.Equal(Path.Combine(repo, "snapshots", "def456"), r.TryResolve("org/name@v2", out _));
        Assert.Equal(Path.Combine(repo, "snapshots", "def456"), r.TryResolve("org/name@def456", out _));
        Assert.Null(r.TryResolve("org/other", out var where));
        Assert.Contains(d["recipes/org/other"], where);
        Assert.Contains(d["hub/models--org--other/snapshots"], where);
    }
}
