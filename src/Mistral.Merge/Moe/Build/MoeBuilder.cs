using System.Text;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Moe.Build;

public sealed record MoeBuildOptions
{
    public WriterOptions Writer { get; init; } = new();
    public bool CopyTokenizer { get; init; } = true;
    /// <summary>Forward-pass threads of the <c>hidden</c> gates: 0 = one per physical core.</summary>
    public int Threads { get; init; }
    /// <summary>Seed of <c>random</c> / <c>uniform_random</c> gates and of <c>noise_scale</c>.</summary>
    public ulong Seed { get; init; }
    /// <summary>mergekit's <c>--i-understand-this-is-not-useful-without-training</c>: allow every expert to be the same model.</summary>
    public bool AllowAllSame { get; init; }
    /// <summary>Hugging Face Hub settings to resolve model ids with (null: local folders and the cache only).</summary>
    public Hub.HubOptions? Hub { get; init; }
    public Action<string>? Log { get; init; }
}

public sealed record MoeBuildResult(string Destination, int Layers, int Experts, int ExpertsPerToken, long Parameters, DType? OutDType, float[][] Gates);

/// <summary>
/// mergekit-moe's Mixtral writer (mergekit/moe/mixtral.py <c>MixtralMoE.write_model</c>): attention, norms,
/// embeddings and head from <c>base_model</c>, expert e's <c>w1/w3/w2</c> = expert e's <c>gate/up/down_proj</c>
/// (w2 × <c>residual_scale</c>, + <c>noise_scale</c> · N(0,1) when given), router rows from <see cref="GateVectors"/>;
/// config: the base's with MixtralForCausalLM, <c>num_local_experts</c>, <c>num_experts_per_tok</c>,
/// <c>sliding_window</c> null. Every tensor at the output dtype (<c>dtype</c>, else the base's torch_dtype),
/// bytes copied when unchanged; written through the atomic <see cref="CheckpointWriter"/>.
/// </summary>
public static class MoeBuilder
{
    public static MoeBuildResult Build(string configPath, string destination, MoeBuildOptions o, CancellationToken token = default)
    {
        var problems = new RecipeProblems(configPath);
        var c = MoeBuildConfigReader.ReadFile(configPath, problems);
        problems.ThrowIfAny();
        return Build(c, destination, o, token);
    }

    public static MoeBuildResult Build(MoeBuildConfig c, string destination, MoeBuildOptions o, CancellationToken token = default)
    {
        var problems = new RecipeProblems(c.Path);
        var resolver = new ModelResolver(Path.GetDirectoryName(Path.GetFullPath(c.Path))!, hub: o.Hub);
        using var src = MoeBuildSources.Open(c, resolver, o.AllowAllSame, problems);
        CheckpointWriter.CheckDestination(destination, o.Writer.Force); // before the forward passes
        var outDType = c.DType ?? (src.Base.Config!.TorchDtype is { } td && DTypes.TryParseUser(td, out var t) ? t : null);

        o.Log?.Invoke($"gates: {MoeBuildConfig.ModeName(c.GateMode)} for {c.Experts.Count} experts × {src.Layers} layers");
        var gates = GateVectors.Compute(c, src.Base.Path, src.Layers, src.Hidden, o.Seed, o.Threads, token);

        var mix = Architecture.Mixtral;
        var dense = src.Names;
        var mlp = new HashSet<string>(Enumerable.Range(0, src.Layers).SelectMany(l => new[] { dense.Layer(l, dense.Gate!), dense.Layer(l, dense.Up!), dense.Layer(l, dense.Down!) }));
        var carried = src.Base.TensorNames.Where(n => !mlp.Contains(n) && !IsIgnored(dense, n)).ToList();
        DType Out(DType stored) => outDType is { } d && stored.IsFloatMath() ? d : stored;
        var plan = carried.Select(n => new PlannedTensor(n, Out(src.Base.Info(n).DType), src.Base.Info(n).Shape)).ToList();
        var experts = new List<(string Out, int Expert, string Source, bool Down)>();
        for (int l = 0; l < src.Layers; l++)
        {
            plan.Add(new PlannedTensor(MixtralLayout.Router(l), outDType ?? DType.F32, [c.Experts.Count, src.Hidden]));
            for (int e = 0; e < c.Experts.Count; e++)
                foreach (var (wn, s, down) in new[] { ("w1", dense.Gate!, false), ("w3", dense.Up!, false), ("w2", dense.Down!, true) })
                {
                    var name = MixtralLayout.ExpertTensor(l, e, wn);
                    var source = dense.Layer(l, s);
                    experts.Add((name, e, source, down));
                    plan.Add(new PlannedTensor(name, Out(src.Experts[e].Info(source).DType), src.Experts[e].Info(source).Shape));
                }
        }
        plan.Sort((a, b) => mix.Compare(a.Name, b.Name));

        using var w = new CheckpointWriter(destination, plan, o.Writer);
        foreach (var n in carried) CopyAs(src.Base, n, w, n, Out(src.Base.Info(n).DType), null);
        foreach (var (name, e, source, down) in experts)
        {
            token.ThrowIfCancellationRequested();
            var x = c.Experts[e];
            Func<float[], float[]>? change = x.NoiseScale == null && !(down && x.ResidualScale != null) ? null : v => NoiseAndScale(v, x, down, o.Seed, name);
            CopyAs(src.Experts[e], source, w, name, Out(src.Experts[e].Info(source).DType), change);
        }
        for (int l = 0; l < src.Layers; l++) CheckpointOutput.WriteFloats(w, MixtralLayout.Router(l), gates[l], outDType ?? DType.F32);

        long parameters = plan.Sum(p => p.ElementCount);
        src.Base.CheckUnchanged();
        foreach (var f in src.Experts) f.CheckUnchanged();
        w.AddFile("config.json", JsonText.Write(Config(src.Base.Config!, c, outDType)));
        if (o.CopyTokenizer) SideFiles.CopyExisting(src.Base.Path, w, SideFiles.All);
        w.AddFile("mergekit_moe_config.yml", c.Text);
        w.AddFile("README.md", ModelCard(c, parameters, o.Seed));
        w.Commit(o.Writer.Force);
        return new MoeBuildResult(destination, src.Layers, c.Experts.Count, c.ExpertsPerToken, parameters, outDType, gates);
    }

    private static bool IsIgnored(Architecture a, string name) => a.IgnoredSuffixes.Any(s => name.EndsWith(s, StringComparison.Ordinal));

    /// <summary>mergekit's <c>noise_and_scale</c>: + noise_scale · N(0, 1) (portable seeded draws keyed by the output name), then w2 × residual_scale.</summary>
    public static float[] NoiseAndScale(float[] v, MoeBuildExpert x, bool down, ulong seed, string outName)
    {
        if (x.NoiseScale is { } s)
        {
            ulong key = MaskGenerator.Key(seed, outName, 1);
            for (int i = 0; i < v.Length; i++) v[i] += (float)(GateVectors.Normal(key, i) * s);
        }
        if (down && x.ResidualScale is { } r)
            for (int i = 0; i < v.Length; i++) v[i] = (float)(v[i] * r);
        return v;
    }

    /// <summary>Copies a source tensor's bytes under a new name, or goes through float32 when the dtype or the values change.</summary>
    private static void CopyAs(ModelFolder src, string srcName, CheckpointWriter w, string outName, DType target, Func<float[], float[]>? change)
    {
        var (file, info) = src.Lookup(srcName);
        if (change == null && info.DType == target)
        {
            if (!Numerics.FiniteScan.AllFinite(file.GetBytes(info), info.DType))
                throw new MergeException($"{src.Path}: tensor '{srcName}' holds non-finite values; nothing was written");
            w.CopyFrom(outName, file, info, 0, info.ByteLength);
            return;
        }
        var values = src.ReadSingle(srcName);
        CheckpointOutput.WriteFloats(w, outName, change?.Invoke(values) ?? values, target);
    }

    /// <summary>mergekit's <c>_generate_config</c>: the base's keys, Mixtral's architecture and expert counts, no sliding window.</summary>
    public static JsonObject Config(ModelConfig b, MoeBuildConfig c, DType? outDType)
    {
        var j = b.CloneJson();
        j["architectures"] = new JsonArray("MixtralForCausalLM");
        j["model_type"] = "mixtral";
        j["num_local_experts"] = c.Experts.Count;
        j["num_experts_per_tok"] = c.ExpertsPerToken;
        j["sliding_window"] = null;
        if (outDType is { } d) j["torch_dtype"] = d.ToTorchName();
        return j;
    }

    private static string ModelCard(MoeBuildConfig c, long parameters, ulong seed)
    {
        var sb = new StringBuilder();
        sb.AppendLine("---\ntags:\n- merge\n- mistral-merge\n- moe\n---");
        sb.AppendLine($"# {CardText.Inline(Path.GetFileNameWithoutExtension(c.Path))} — a Mixtral built from dense experts");
        sb.AppendLine();
        sb.AppendLine($"Made with `mistral-merge moe-build` (mergekit-moe's config format): attention, norms and embeddings from {CardText.Code(c.BaseModel)}, one expert per source model's MLP, router rows from `gate_mode: {MoeBuildConfig.ModeName(c.GateMode)}`{(c.GateMode is GateMode.Random or GateMode.UniformRandom ? $" (seed {seed})" : "")}, top-{c.ExpertsPerToken} routing.");
        sb.AppendLine();
        sb.AppendLine("| expert | source model | positive prompts | negative prompts |");
        sb.AppendLine("|---|---|---|---|");
        for (int e = 0; e < c.Experts.Count; e++)
            sb.AppendLine($"| {e} | {CardText.Code(c.Experts[e].SourceModel)} | {c.Experts[e].PositivePrompts.Count} | {c.Experts[e].NegativePrompts.Count} |");
        sb.AppendLine();
        sb.AppendLine($"Parameters: {parameters:N0}");
        sb.AppendLine();
        sb.AppendLine("The config is saved as `mergekit_moe_config.yml`.");
        return sb.ToString();
    }
}
