using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Moe;

/// <summary>
/// Small synthesized checkpoints (the <c>synth</c> command, F32, with the built-in byte-level tokenizer) for
/// the forward-pass tests that must not depend on ../shared, plus surgery helpers to derive MoE variants.
/// </summary>
internal static class SynthMixtral
{
    public const string Text = """
        Once upon a time there was a small robot who lived by the sea. Every morning it walked to the harbour
        to count the boats, and every evening it wrote the number in a little book. One day a storm came and
        the boats stayed home, so the robot counted the waves instead. def count(boats): return len(boats)
        The wiki says: the harbour was built in 1887 , and it was extended twice before the war .
        """;

    public static string WriteText(string dir, int repeat = 3)
    {
        var path = Path.Combine(dir, "text.txt");
        File.WriteAllText(path, string.Concat(Enumerable.Repeat(Text, repeat)));
        return path;
    }

    private static string Tokenizer(string root) =>
        Path.Combine(SentencePieceModelBuilder.ByteLevel().WriteFolder(Path.Combine(root, "tok"),
            """{"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}"""), "tokenizer.model");

    /// <summary><c>synth --arch mixtral|mistral</c> with hidden 32, 2 layers, 4 heads / 2 KV heads, intermediate 48, vocab 512, F32.</summary>
    public static string Synth(string root, string name, string arch = "mixtral", int experts = 4, int perTok = 2, ulong seed = 1)
    {
        var dir = Path.Combine(root, name);
        var args = new List<string> { "synth", dir, "--arch", arch, "--hidden", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2",
            "--intermediate", "48", "--vocab", "512", "--dtype", "float32", "--seed", seed.ToString(), "--tokenizer", Tokenizer(root) };
        if (arch == "mixtral") args.AddRange(["--experts", experts.ToString(), "--experts-per-token", perTok.ToString()]);
        var r = CliRunner.Run([.. args]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return dir;
    }

    /// <summary>Copies a checkpoint, replacing tensors (<paramref name="replace"/> returns null to keep one) and editing config.json.</summary>
    public static string Rewrite(string src, string dst, Func<string, float[], float[]?> replace, Action<JsonObject>? config = null,
        IReadOnlyDictionary<string, (long[] Shape, float[] Data)>? add = null, Func<string, bool>? drop = null)
    {
        using var f = ModelFolder.Open(src);
        var tensors = new List<(string Name, long[] Shape, float[] Data)>();
        foreach (var n in f.TensorNames)
        {
            if (drop?.Invoke(n) == true) continue;
            var data = f.ReadSingle(n);
            tensors.Add((n, f.Info(n).Shape, replace(n, data) ?? data));
        }
        foreach (var (n, (shape, data)) in add ?? new Dictionary<string, (long[], float[])>()) tensors.Add((n, shape, data));
        tensors.Sort((a, b) => TensorNames.Compare(a.Name, b.Name));
        using var w = new CheckpointWriter(dst, tensors.Select(t => new PlannedTensor(t.Name, DType.F32, t.Shape)).ToList());
        foreach (var t in tensors) w.Write(t.Name, MemoryMarshal.AsBytes(t.Data.AsSpan()));
        var cfg = f.Config!.CloneJson();
        cfg["torch_dtype"] = "float32";
        config?.Invoke(cfg);
        w.AddFile("config.json", cfg.ToJsonString());
        foreach (var side in new[] { "tokenizer.model", "tokenizer_config.json" })
            if (File.Exists(Path.Combine(src, side))) w.CopyFile(Path.Combine(src, side), side);
        w.Commit();
        return dst;
    }

    /// <summary>A dense Mistral as an exact MoE: every MLP copied into <paramref name="experts"/> experts, a random router.</summary>
    public static string Upcycle(string dense, string dst, int experts, int perTok, int seed = 5)
    {
        using var f = ModelFolder.Open(dense);
        var c = f.Config!;
        var rng = new Random(seed);
        var add = new Dictionary<string, (long[], float[])>();
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            add[Mistral.Merge.Moe.MixtralLayout.Router(l)] = ([experts, c.HiddenSize], Enumerable.Range(0, experts * c.HiddenSize).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
            foreach (var (w, mlp) in new[] { ("w1", "gate_proj"), ("w3", "up_proj"), ("w2", "down_proj") })
            {
                var name = TensorNames.Layer(l, $"mlp.{mlp}.weight");
                for (int e = 0; e < experts; e++) add[Mistral.Merge.Moe.MixtralLayout.ExpertTensor(l, e, w)] = (f.Info(name).Shape, f.ReadSingle(name));
            }
        }
        return Rewrite(dense, dst, (_, _) => null, cfg =>
        {
            cfg["architectures"] = new JsonArray("MixtralForCausalLM");
            cfg["model_type"] = "mixtral";
            cfg["num_local_experts"] = experts;
            cfg["num_experts_per_tok"] = perTok;
            cfg["sliding_window"] = null;
        }, add, n => n.Contains(".mlp.", StringComparison.Ordinal));
    }

    /// <summary>The same Mixtral with every router zeroed (all experts equally likely; top-k ties go to the lowest indices).</summary>
    public static string ZeroRouters(string src, string dst, int? perTok = null) =>
        Rewrite(src, dst, (n, d) => n.EndsWith("block_sparse_moe.gate.weight", StringComparison.Ordinal) ? new float[d.Length] : null,
            cfg => { if (perTok != null) cfg["num_experts_per_tok"] = perTok; });
}
