using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Cli;

/// <summary>mergekit-yaml's command line on merge: a line pasted from a model card runs, with mergekit's meanings.</summary>
public sealed class MergekitCommandLineTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private string Recipe(string models = "  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\n")
    {
        if (!Directory.Exists(_d["a"])) { TinyModels.Write(_d["a"], 1); TinyModels.Write(_d["b"], 2); }
        return TinyModels.Recipe(_d.Path, "merge_method: linear\nmodels:\n" + models);
    }

    [Fact]
    public void TheUsageLineOfMergekitsReadmeRunsAndSaysWhatItIgnores()
    {
        // mergekit-yaml config.yml out --cuda --lazy-unpickle --allow-crimes, plus other flags model cards carry
        var r = CliRunner.Run("merge", Recipe(), _d["out"], "--cuda", "--lazy-unpickle", "--allow-crimes", "--copy-tokenizer", "--out-shard-size", "5B",
            "-v", "-v", "--low-cpu-memory", "--no-clone-tensors", "--trust-remote-code", "--write-threads", "4", "--device", "cuda", "-j", "2", "--random-seed", "7");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(_d["out"], "model.safetensors"))); // 5B = 5·10⁹ bytes: one shard
        var notes = r.Stderr.Split('\n').Where(l => l.StartsWith("note: ", StringComparison.Ordinal)).ToList();
        Assert.Equal(["--cuda", "--low-cpu-memory", "--lazy-unpickle", "--no-clone-tensors", "--trust-remote-code", "--device", "--write-threads"],
            notes.Select(n => n.Split(' ')[1]));
        Assert.Contains("note: --cuda (a mergekit option) is accepted and has no effect here: merges run on the CPU, streaming in float32; the result does not depend on the device", notes);
        Assert.Empty(CliRunner.Run("merge", Recipe(), _d["quiet"], "--cuda", "--quiet").Stderr); // --quiet drops the notes
    }

    [Fact]
    public void NoWriteModelCardLeavesOutTheCardAndTheRecipe()
    {
        Assert.Equal(0, CliRunner.Run("merge", Recipe(), _d["out"], "--no-write-model-card").ExitCode);
        Assert.False(File.Exists(Path.Combine(_d["out"], "README.md")));
        Assert.False(File.Exists(Path.Combine(_d["out"], "mergekit_config.yml")));
        Assert.Equal(0, CliRunner.Run("merge", Recipe(), _d["out2"], "--write-model-card").ExitCode);
        Assert.True(File.Exists(Path.Combine(_d["out2"], "README.md")));
    }

    [Fact]
    public void RandomSeedNumThreadsAndTransformersCacheMeanWhatTheyMeanInMergekit()
    {
        // a hub id found only in the cache that --transformers-cache names
        var snap = _d["cache/models--org--tiny/snapshots/abc"];
        TinyModels.Write(snap, 3);
        Directory.CreateDirectory(_d["cache/models--org--tiny/refs"]);
        File.WriteAllText(_d["cache/models--org--tiny/refs/main"], "abc");
        var recipe = Recipe("  - model: a\n    parameters: {weight: 1, density: 0.5}\n  - model: org/tiny\n    parameters: {weight: 1, density: 0.5}\n")
            .Replace("recipe.yml", "recipe.yml");
        File.WriteAllText(recipe, File.ReadAllText(recipe).Replace("merge_method: linear", "merge_method: dare_linear\nbase_model: a"));
        var a = CliRunner.Run("merge", recipe, _d["s1"], "--random-seed", "5", "--num-threads", "1", "--transformers-cache", _d["cache"], "--dry-run", "--json");
        var b = CliRunner.Run("merge", recipe, _d["s2"], "--seed", "5", "-j", "1", "--transformers-cache", _d["cache"], "--dry-run", "--json");
        Assert.True(a.ExitCode == 0, a.Stderr);
        Assert.Equal(b.Stdout, a.Stdout);
        Assert.Contains("\"seed\":5", a.Stdout.Replace(" ", ""));
        Assert.Contains("model 'org/tiny' not found", CliRunner.Run("merge", recipe, _d["s3"], "--transformers-cache", _d["empty"]).Stderr);
    }
}
