using System.CommandLine;
using System.Globalization;
using Mistral.Merge.Moe;
using Mistral.Merge.Moe.Surgery;

namespace Mistral.Merge.Cli.Commands;

/// <summary>
/// The MoE commands' options that mirror other commands' (--ctx/--stride as perplexity's, with routing's default window)
/// and the moe-convert options derived from the surgeries' parameter declarations (recipe name → --option).
/// </summary>
internal static class MoeOptions
{
    /// <summary>--ctx as perplexity's; absent: the model's context (<see cref="MoeForwardPass.DefaultContext"/>).</summary>
    public static Option<int?> Ctx() => new Option<int?>("--ctx")
    {
        Description = $"Tokens per window of the forward pass (as perplexity's --ctx; default the model's max_position_embeddings, at most {MoeForwardPass.MaxDefaultContext})",
    }.AtLeast(2);

    public static Option<int?> Stride() => new Option<int?>("--stride")
    {
        Description = "Distance between window starts (default: --ctx, non-overlapping); each token is routed once, in the first window that holds it",
    }.AtLeast(1);

    /// <summary>1 ≤ --stride ≤ --ctx, checked while parsing (usage error).</summary>
    public static Command CheckRoutingWindows(this Command cmd, Option<int?> ctx, Option<int?> stride) => cmd.Check(r =>
    {
        if (r.GetValue(ctx) is { } c && r.GetValue(stride) is { } s && s > c) throw new MergeException($"--stride must be between 1 and --ctx ({c}), got {s}");
    });

    /// <summary>One option per parameter the surgeries declare (shared ones once), spelled <see cref="SurgeryParam.Option"/>.</summary>
    public static List<(SurgeryParam Param, Option Option)> FromDeclarations(IEnumerable<ISurgery> surgeries)
    {
        var list = new List<(SurgeryParam, Option)>();
        foreach (var p in surgeries.SelectMany(s => s.Spec.Params).DistinctBy(p => p.Name))
        {
            var used = string.Join(", ", surgeries.Where(s => s.Spec.Find(p.Name) != null).Select(s => s.Spec.Name));
            string help = $"[{used}] {p.Description}";
            Option o = p switch
            {
                IntParam i => new Option<int?>(i.Option) { Description = help + (i.Default is { } d ? $" (default {d})" : ""), HelpName = "N" }.AtLeast(i.Min),
                ChoiceParam c => new Option<string?>(c.Option) { Description = help + $" (default {c.Default})" }.OneOf(c.Choices, v => CheckChoice(c, v)),
                FlagParam f => new Option<bool>(f.Option) { Description = help },
                ExpertsParam => new Option<string?>(p.Option) { Description = help, HelpName = "E[,E...]" },
                RidgeParam => new Option<string?>(p.Option) { Description = help, HelpName = "auto|X" },
                _ => new Option<string?>(p.Option) { Description = help, HelpName = "FILE" },
            };
            list.Add((p, o));
        }
        return list;
    }

    /// <summary>The values given on the command line, in the recipe's kinds (numbers as double, lists as double[]).</summary>
    public static Dictionary<SurgeryParam, object> Given(ParseResult r, IEnumerable<(SurgeryParam Param, Option Option)> options)
    {
        var given = new Dictionary<SurgeryParam, object>();
        foreach (var (p, o) in options)
        {
            if (r.GetResult(o) is not { Implicit: false }) continue;
            given[p] = o switch
            {
                Option<int?> i => (double)r.GetValue(i)!.Value,
                Option<bool> f => r.GetValue(f),
                Option<string?> s when p is ExpertsParam => ExpertList(r.GetValue(s)!, p.Option),
                Option<string?> s when p is ChoiceParam => r.GetValue(s)!.ToLowerInvariant(),
                Option<string?> s => r.GetValue(s)!,
                _ => throw new InvalidOperationException(p.Name),
            };
        }
        return given;
    }

    /// <summary>A value outside the declared choices: "--strategy: unknown strategy 'avg' (expected mean, … or concat)".</summary>
    private static void CheckChoice(ChoiceParam c, string? v)
    {
        if (v == null || c.Choices.Contains(v, StringComparer.OrdinalIgnoreCase)) return;
        var expected = string.Join(", ", c.Choices[..^1]) + " or " + c.Choices[^1];
        throw new MergeException($"{c.Option}: unknown {c.Name.Replace('_', ' ')} '{v}'{Recipes.Suggest.Hint(v, c.Choices)} (expected {expected})");
    }

    /// <summary>"2" (every layer) or "2,1" (one per layer: a gradient over the layers, as in a recipe).</summary>
    private static object ExpertList(string text, string option)
    {
        var v = text.Split(',', StringSplitOptions.TrimEntries).Select(x =>
            int.TryParse(x, NumberStyles.Integer, CultureInfo.InvariantCulture, out var e) ? (double)e : throw new MergeException($"{option}: '{x}' is not an integer")).ToArray();
        return v.Length == 1 ? v[0] : v;
    }
}
