
using Mistral.Merge.IO;
using Mistral.Merge.Recipes;
using YamlDotNet.Core;
using Mark = Mistral.Merge.Recipes.Mark;
using YamlDotNet.RepresentationModel;

namespace Mistral.Merge.Moe.Build;

/// <summary>
/// Reads a mergekit-moe YAML config into a <see cref="MoeBuildConfig"/>, collecting every problem as
/// <c>file:line:column: message</c> (as recipes do) and checking what mergekit's <c>is_bad_config</c> checks.
/// Unlike mergekit (pydantic, which ignores unknown keys) an unknown key is an error with a suggestion.
/// </summary>
public static class MoeBuildConfigReader
{
    public static readonly string[] TopKeys = ["base_model", "experts", "gate_mode", "dtype", "out_dtype", "experts_per_token", "shared_experts", "architecture"];
    public static readonly string[] ExpertKeys = ["source_model", "positive_prompts", "negative_prompts", "noise_scale", "residual_scale"];
    public static readonly string[] GateModes = ["hidden", "hidden_last", "hidden_avg", "cheap_embed", "random", "uniform_random"];

    public static MoeBuildConfig ReadFile(string path, RecipeProblems problems)
    {
        if (Directory.Exists(path)) throw new MergeException($"{path}: is a folder; expected a mergekit-moe .yml config");
        if (!System.IO.Path.Exists(path)) throw new MergeException($"{path}: config file not found");
        return Read(InputFile.ReadAllTextStrict(path, InputFile.Limits.Recipe, "a mergekit-moe config"), path, problems);
    }

    public static MoeBuildConfig Read(string text, string path, RecipeProblems p)
    {
        var c = new MoeBuildConfig { Path = path, Text = text };
        if (YamlGuard.Check(text) is var (at, why)) { p.Add(at, why); return c; }
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e)
        {
            p.Add(Mark.From(e.Start), $"YAML syntax error: {(e.InnerException?.Message ?? e.Message).ReplaceLineEndings(" ")}");
            return c;
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            p.Add(new Mark(1, 1), "the config must be a mapping with base_model and experts (mergekit-moe's format)");
            return c;
        }
        new Reader(p).Top(root, c);
        return c;
    }

    private sealed class Reader(RecipeProblems p)
    {
        public void Top(YamlMappingNode root, MoeBuildConfig c)
        {
            bool hasBase = false, hasExperts = false;
            YamlNode? dtypeKey = null;
            foreach (var (k, v) in Entries(root, TopKeys, "top-level key"))
            {
                switch (((YamlScalarNode)k).Value)
                {
                    case "base_model":
                        hasBase = true;
                        if (String(v, "base_model") is { } b) { c.BaseModel = b; c.BaseMark = Mark.From(v.Start); }
                        break;
                    case "experts":
                        hasExperts = true;
                        c.ExpertsMark = Mark.From(k.Start);
                        ReadExperts(v, c);
                        break;
                    case "gate_mode":
                        c.GateModeMark = Mark.From(v.Start);
                        if (String(v, "gate_mode") is { } g)
                        {
                            c.GateModeName = g;
                            switch (g)
                            {
                                case "hidden" or "hidden_last": c.GateMode = GateMode.Hidden; break;
                                case "hidden_avg": c.GateMode = GateMode.HiddenAverage; break;
                                case "cheap_embed": c.GateMode = GateMode.CheapEmbed; break;
                                case "random": c.GateMode = GateMode.Random; break;
                                case "uniform_random": c.GateMode = GateMode.UniformRandom; break;
                                default: p.Add(Mark.From(v.Start), $"unknown gate_mode '{g}'{Suggest.Hint(g, GateModes)} (expected {string.Join(", ", GateModes)})"); break;
                            }
                        }
                        break;
                    case "dtype" or "out_dtype":
                        if (dtypeKey != null) { p.Add(Mark.From(k.Start), "give either 'dtype' or 'out_dtype', not both"); break; }
                        dtypeKey = k;
                        if (String(v, "dtype") is { } d)
                        {
                            if (DTypes.TryParseUser(d, out var t)) c.DType = t;
                            else p.Add(Mark.From(v.Start), $"{((YamlScalarNode)k).Value}: unknown dtype '{d}' (expected bfloat16, float16 or float32)");
                        }
                        break;
                    case "experts_per_token":
                        c.ExpertsPerTokenMark = Mark.From(v.Start);
                        if (RecipeScalar(v) is double n && n == Math.Floor(n) && n >= 1 && n <= 1024) c.ExpertsPerToken = (int)n;
                        else p.Add(Mark.From(v.Start), $"experts_per_token must be a whole number of at least 1, got '{(v as YamlScalarNode)?.Value}'");
                        break;
                    case "shared_experts":
                        if (v is YamlScalarNode s && RecipeScalar(s) == null) break;
                        if (v is YamlSequenceNode { Children.Count: 0 }) break;
                        p.Add(Mark.From(k.Start), "shared_experts: Mixtral output has no shared experts (mergekit writes them only for its qwen/deepseek outputs, which moe-build does not)");
                        break;
                    case "architecture":
                        if (String(v, "architecture") is { } a && !"mixtral".StartsWith(a.ToLowerInvariant(), StringComparison.Ordinal))
                            p.Add(Mark.From(v.Start), $"architecture '{a}': moe-build writes only Mixtral (mergekit's other outputs, deepseek and qwen, are not supported)");
                        break;
                }
            }
            if (!hasBase) p.Add(Mark.From(root.Start), "missing required key 'base_model'");
            if (!hasExperts) p.Add(Mark.From(root.Start), "missing required key 'experts'");
            Checks(c);
        }

        /// <summary>mergekit's <c>is_bad_config</c>, each problem at the value it is about.</summary>
        private void Checks(MoeBuildConfig c)
        {
            if (c.Experts.Count > 0 && c.ExpertsPerToken > c.Experts.Count)
                p.Add(c.ExpertsPerTokenMark.Line > 0 ? c.ExpertsPerTokenMark : c.ExpertsMark,
                    $"experts_per_token {c.ExpertsPerToken}{(c.ExpertsPerTokenMark.Line > 0 ? "" : " (the default)")} is more than the {c.Experts.Count} expert(s) given");
            if (!c.NeedsPrompts || c.Experts.Count == 0) return;
            for (int i = 0; i < c.Experts.Count; i++)
                if (c.Experts[i].PositivePrompts.Count == 0)
                    p.Add(c.Experts[i].Mark, $"expert {i} ({c.Experts[i].SourceModel}) has no positive_prompts; gate_mode {c.GateModeName} needs them");
            var first = c.Experts[0];
            if (c.Experts.Count > 1 && c.Experts.Skip(1).All(e => e.PositivePrompts.SequenceEqual(first.PositivePrompts) && e.NegativePrompts.SequenceEqual(first.NegativePrompts))
                && first.PositivePrompts.Count > 0)
                p.Add(c.ExpertsMark, "the positive and negative prompts are identical for all experts: the router could not tell them apart");
        }

        private void ReadExperts(YamlNode node, MoeBuildConfig c)
        {
            if (node is not YamlSequenceNode seq) { p.Add(Mark.From(node.Start), "experts must be a list of {source_model, positive_prompts, ...} entries"); return; }
            if (seq.Children.Count == 0) { p.Add(Mark.From(node.Start), "'experts' is empty"); return; }
            foreach (var item in seq.Children)
            {
                if (item is not YamlMappingNode m) { p.Add(Mark.From(item.Start), "an expert must be a mapping with 'source_model'"); continue; }
                string? source = null; Mark sourceMark = default;
                List<string> pos = [], neg = [];
                double? noise = null, residual = null;
                foreach (var (k, v) in Entries(m, ExpertKeys, "key of an expert"))
                {
                    switch (((YamlScalarNode)k).Value)
                    {
                        case "source_model": source = String(v, "source_model"); sourceMark = Mark.From(v.Start); break;
                        case "positive_prompts": pos = Prompts(v, "positive_prompts"); break;
                        case "negative_prompts": neg = Prompts(v, "negative_prompts"); break;
                        case "noise_scale": noise = Number(v, "noise_scale", min: 0); break;
                        case "residual_scale": residual = Number(v, "residual_scale", min: double.NegativeInfinity); break;
                    }
                }
                if (source == null) { if (!m.Children.Keys.Any(k => k is YamlScalarNode { Value: "source_model" })) p.Add(Mark.From(m.Start), "missing required key 'source_model'"); continue; }
                if (source.Trim().Length == 0) { p.Add(sourceMark, "'source_model' is empty"); continue; }
                c.Experts.Add(new MoeBuildExpert
                {
                    SourceModel = source.Trim(), SourceMark = sourceMark, Mark = Mark.From(m.Start),
                    PositivePrompts = pos, NegativePrompts = neg, NoiseScale = noise, ResidualScale = residual,
                });
            }
        }

        private List<string> Prompts(YamlNode v, string key)
        {
            if (v is YamlScalarNode s && RecipeScalar(s) == null) return [];
            if (v is not YamlSequenceNode seq) { p.Add(Mark.From(v.Start), $"{key} must be a list of strings"); return []; }
            var r = new List<string>();
            foreach (var item in seq.Children)
                if (item is YamlScalarNode sc && sc.Value != null) r.Add(sc.Value);
                else p.Add(Mark.From(item.Start), $"{key}: each prompt must be a string");
            return r;
        }

        private double? Number(YamlNode v, string key, double min)
        {
            if (v is YamlScalarNode s && RecipeScalar(s) == null) return null;
            if (RecipeScalar(v) is double d && d >= min) return d;
            p.Add(Mark.From(v.Start), $"{key} must be a number{(min == 0 ? " of at least 0" : "")}, got '{(v as YamlScalarNode)?.Value}'");
            return null;
        }

        private string? String(YamlNode v, string key)
        {
            if (v is YamlScalarNode s && s.Value is { Length: > 0 } text && RecipeScalar(s) is string or double) return text;
            p.Add(Mark.From(v.Start), $"{key} must be a string");
            return null;
        }

        private static object? RecipeScalar(YamlNode n) => RecipeParser.ScalarOf(n);

        private IEnumerable<(YamlNode Key, YamlNode Value)> Entries(YamlMappingNode m, string[] known, string what)
        {
            foreach (var (k, v) in m.Children)
            {
                if (k is not YamlScalarNode { Value: { } key }) { p.Add(Mark.From(k.Start), $"{what} must be a plain string"); continue; }
                if (Array.IndexOf(known, key) >= 0) { yield return (k, v); continue; }
                p.Add(Mark.From(k.Start), $"unknown {what} '{key}'{Suggest.Hint(key, known)}");
            }
        }
    }


}
