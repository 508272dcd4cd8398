using Mistral.Merge.IO.Gguf;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>Helpers of the GGUF tests: export through the CLI, synthesize small models, read floats back.</summary>
internal static class GgufExport
{
    public static GgufReader Run(string model, string outPath, params string[] extra)
    {
        var r = CliRunner.Run(["export-gguf", model, outPath, "--quiet", .. extra]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return GgufReader.Open(outPath);
    }

    /// <summary>A float32 model of <paramref name="arch"/> with the built-in byte-level sentencepiece tokenizer (448 pieces).</summary>
    public static string Synth(string dir, string arch, params string[] extra)
    {
        var r = CliRunner.Run(["synth", dir, "--arch", arch, "--hidden", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2",
            "--intermediate", "64", "--vocab", "448", "--dtype", "float32", "--tokenizer", "byte-level", "--seed", "7", "--quiet", .. extra]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return dir;
    }

    public static float[] Floats(GgufReader g, string name)
    {
        var t = g.Tensor(name);
        Assert.Equal(GgmlType.F32, t.Type);
        var b = g.ReadBytes(name);
        var f = new float[b.Length / 4];
        Buffer.BlockCopy(b, 0, f, 0, b.Length);
        return f;
    }

    public static object Value(GgufReader g, string key) => g[key].Value;
}
