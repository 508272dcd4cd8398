using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Recipes;

/// <summary>Tiny synthesized Mistral checkpoints for recipe and merge tests.</summary>
internal static class TinyModels
{
    public static string Write(string dir, ulong seed, int layers = 2, int vocab = 16, DType dtype = DType.F32, bool tied = false)
    {
        var cfg = Synthesizer.MakeConfig("mistral", hidden: 8, layers: layers, heads: 2, kvHeads: 1, intermediate: 12, vocab: vocab);
        if (tied) cfg = ModelConfig.FromJson(With(cfg, "tie_word_embeddings", true));
        Synthesizer.Write(dir, cfg, new SynthOptions { DType = dtype, Seed = seed });
        return dir;
    }

    private static System.Text.Json.Nodes.JsonObject With(ModelConfig c, string key, bool v)
    {
        var j = c.CloneJson();
        j[key] = v;
        return j;
    }

    /// <summary>Writes <paramref name="yaml"/> as recipe.yml in <paramref name="dir"/> and returns its path.</summary>
    public static string Recipe(string dir, string yaml, string name = "recipe.yml")
    {
        var p = Path.Combine(dir, name);
        File.WriteAllText(p, yaml.Replace("\r\n", "\n"));
        return p;
    }
}
