using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.Merging;
using Mistral.Merge.Planning;

namespace Mistral.Merge.Cli.Commands;

/// <summary>
/// <c>methods [--markdown] [--json]</c>: every merge method of the registry with its parameters (scope, type,
/// default, range) and facts, read from the declarations. README's method table is this command's --markdown
/// output (a test keeps them equal).
/// </summary>
public static class MethodsCommand
{
    public static Command Create()
    {
        var markdown = new Option<bool>("--markdown") { Description = "Print the Markdown table of README's \"Methods\" section" };
        var json = CommonOptions.Json("methods: name, base, facts, parameters with scope, type, default, required, range");
        var cmd = new Command("methods", "List the merge methods a recipe can name, with their parameters (scope, type, default, range) and facts") { markdown, json };
        return cmd.WithAction((p, _) =>
        {
            var o = p.InvocationConfiguration.Output;
            if (p.GetValue(json)) CommonOptions.Print(p, Json());
            else if (p.GetValue(markdown)) Markdown().WriteMarkdown(o);
            else Text().Write(o);
            return Cli.Ok;
        });
    }

    /// <summary>One row per method: its base role, global and per-model parameters, facts.</summary>
    internal static TextTable Markdown()
    {
        var table = new TextTable("method", "base model", "global parameters", "per-model parameters", "facts");
        foreach (var m in MergeMethods.Methods)
        {
            var s = m.Spec;
            table.Add($"`{s.Name}`", Base(s.Base), Params(s.Global), Params(s.PerModel), Facts(s) is { Count: > 0 } f ? string.Join("; ", f) : "–");
        }
        return table;

        static string Params(IReadOnlyList<ParamDef> defs) => defs.Count == 0 ? "–" : string.Join("<br>", defs.Select(d => $"`{d.Name}` {Describe(d)}"));
    }

    /// <summary>One row per parameter (a method without parameters has one row).</summary>
    private static TextTable Text()
    {
        var table = new TextTable("method", "base", "parameter", "scope", "type", "default", "values", "facts");
        foreach (var m in MergeMethods.Methods)
        {
            var s = m.Spec;
            var facts = string.Join("; ", Facts(s));
            if (s.Params.Count == 0) table.Add(s.Name, Base(s.Base), "–", "", "", "", "", facts);
            for (int i = 0; i < s.Params.Count; i++)
            {
                var d = s.Params[i];
                table.Add(i == 0 ? s.Name : "", i == 0 ? Base(s.Base) : "", d.Name, Scope(d.Scope), Type(d.Kind),
                    d.Default != null ? Value(d.Default) : d.Required ? "required" : "unset", d.Range?.Describe() ?? "", i == 0 ? facts : "");
            }
        }
        return table;
    }

    private static JsonObject Json() => new()
    {
        ["version"] = CommonOptions.Version,
        ["methods"] = new JsonArray([.. MergeMethods.Methods.Select(m => (JsonNode)new JsonObject
        {
            ["name"] = m.Spec.Name,
            ["base"] = Base(m.Spec.Base),
            ["random_masks"] = m.Spec.UsesRandomMasks,
            ["base_shapes_output"] = m.Spec.BaseShapesOutput,
            ["copies_input"] = m.Spec.CopiesInput,
            ["same_shapes"] = m.Spec.SameShapes,
            ["parameters"] = new JsonArray([.. m.Spec.Params.Select(d => (JsonNode)new JsonObject
            {
                ["name"] = d.Name,
                ["scope"] = d.Scope == ParamScope.Global ? "global" : "per_model",
                ["type"] = Type(d.Kind),
                ["default"] = d.Default switch { double x => x, bool b => b, string t => t, _ => null },
                ["required"] = d.Required,
                ["range"] = d.Range?.Describe(),
            })]),
        })]),
    };

    /// <summary>"number, required, in [0, 1]", "bool = true", "number, optional".</summary>
    private static string Describe(ParamDef d)
    {
        var text = Type(d.Kind) + (d.Default != null ? $" = {Value(d.Default)}" : d.Required ? ", required" : ", optional");
        return d.Range?.Describe() is { } range ? $"{text}, {range}" : text;
    }

    private static List<string> Facts(MethodSpec s)
    {
        var facts = new List<string>();
        if (s.UsesRandomMasks) facts.Add("random masks (--seed)");
        if (s.BaseShapesOutput) facts.Add("output shaped like the base");
        if (s.CopiesInput) facts.Add("a lone input without parameters is copied byte for byte");
        if (s.SameShapes) facts.Add("inputs of one shape (embeddings are not cropped)");
        return facts;
    }

    private static string Base(BaseRole role) => role switch { BaseRole.Required => "required", BaseRole.Optional => "optional", _ => "an ordinary input" };
    private static string Scope(ParamScope scope) => scope == ParamScope.Global ? "global" : "per model";
    private static string Type(ParamKind kind) => kind switch { ParamKind.Number => "number", ParamKind.Bool => "bool", _ => "string" };
    private static string Value(object v) => v switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => v.ToString()!,
    };
}
