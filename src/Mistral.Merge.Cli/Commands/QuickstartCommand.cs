using System.CommandLine;
using System.Text.Json.Nodes;
using Mistral.Merge.Cli.Quickstart;
using Mistral.Merge.Cli.Terminal;

namespace Mistral.Merge.Cli.Commands;

/// <summary>
/// <c>quickstart [DIR]</c>: the whole job on a built-in default with no downloads. Writes the three small trained
/// models shipped inside the program (stories260k and its WikiText and Python fine-tunes, bf16) and short eval texts
/// into DIR, merges the fine-tunes with the base by a per-filter SLERP and by TIES, inspects one merge, prints a
/// perplexity table (models × texts) and a greedy story from the SLERP merge. Each merge, inspect and generate step
/// runs the real subcommand.
/// </summary>
public static class QuickstartCommand
{
    private const int Ctx = 256;
    private static readonly string[] Models = ["base", "wiki", "code", "slerp", "ties"];
    private static readonly string[] Texts = ["tinystories", "wiki", "code"];

    private static readonly string[] Merges = ["slerp", "ties"];

    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Working folder (default: ./quickstart)", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "quickstart" };
        var force = new Option<bool>("--force") { Description = "Replace the outputs of an earlier quickstart in DIR" };
        var json = CommonOptions.Json("dir, models, texts, ctx, perplexity[model][text]; the transcript goes to stderr");
        var cmd = new Command("quickstart", "Merge three small shipped models (SLERP and TIES), inspect, tabulate perplexities and tell a story — no downloads") { dir, force, json };
        return cmd.WithAction((p, cancel) =>
        {
            bool asJson = p.GetValue(json);
            var o = asJson ? p.InvocationConfiguration.Error : p.InvocationConfiguration.Output;
            var nested = asJson ? new InvocationConfiguration { Output = o, Error = o, EnableDefaultExceptionHandler = false } : p.InvocationConfiguration;
            double[,]? ppl = null;
            var root = Path.GetFullPath(p.GetValue(dir)!);
            bool replace = p.GetValue(force);
            string[] f = [.. replace ? ["--force"] : Array.Empty<string>(), .. CommonOptions.IsQuiet(p) ? ["--quiet"] : Array.Empty<string>()];
            string At(string name) => Path.Combine(root, name);

            // Everything is checked before anything is written.
            foreach (var merge in Merges) IO.CheckpointWriter.CheckDestination(At(merge), replace);
            var files = QuickstartFiles.All();
            QuickstartFiles.Check(root, files, replace);
            QuickstartFiles.Write(root, files);
            o.WriteLine($"wrote {root}: models base (stories260k), wiki and code (its WikiText and Python fine-tunes), text/, slerp.yml, ties.yml");

            int rc = Run(nested, ["merge", At("slerp.yml"), At("slerp"), .. f])
                  ?? Run(nested, ["merge", At("ties.yml"), At("ties"), .. f])
                  ?? Run(nested, ["inspect", At("slerp")])
                  ?? Table(p, o, Models.Select(At).ToArray(), Texts.Select(t => At($"text/{t}.txt")).ToArray(), out ppl, cancel)
                  ?? Run(nested, ["generate", At("slerp"), "--prompt", "Once upon a time", "--max-new-tokens", "75", "--temperature", "0"])
                  ?? Cli.Ok;
            if (rc != Cli.Ok) return rc;
            o.WriteLine();
            o.WriteLine($"quickstart done: models, texts, recipes and merges are in {root}; try the recipes in examples/ next.");
            if (asJson)
                CommonOptions.Print(p, new JsonObject
                {
                    ["version"] = CommonOptions.Version,
                    ["dir"] = root,
                    ["models"] = new JsonObject(Models.Select(m => KeyValuePair.Create(m, (JsonNode?)At(m)))),
                    ["texts"] = new JsonObject(Texts.Select(t => KeyValuePair.Create(t, (JsonNode?)At($"text/{t}.txt")))),
                    ["ctx"] = Ctx,
                    ["perplexity"] = new JsonObject(Models.Select((m, i) => KeyValuePair.Create(m,
                        (JsonNode?)new JsonObject(Texts.Select((t, j) => KeyValuePair.Create(t, (JsonNode?)ppl![i, j])))))),
                });
            return Cli.Ok;
        });
    }

    /// <summary>Runs one real subcommand, echoed as a shell line; null when it succeeded.</summary>
    private static int? Run(InvocationConfiguration config, string[] args)
    {
        var o = config.Output;
        o.WriteLine();
        o.WriteLine("$ mistral-merge " + string.Join(' ', args.Select(a => a.Contains(' ') ? $"\"{a}\"" : a)));
        int rc = Program.BuildRoot().Parse(args).Invoke(config);
        return rc == Cli.Ok ? null : rc;
    }

    private static int? Table(ParseResult p, TextWriter o, string[] models, string[] texts, out double[,] ppl, CancellationToken cancel)
    {
        o.WriteLine();
        o.WriteLine($"perplexity, lower is better (each cell = mistral-merge perplexity MODEL --text text/TEXT.txt --ctx {Ctx}):");
        using (var progress = Progress.For(p, "perplexity table", "cells"))
        {
            ppl = PerplexityTable.Measure(models, texts, Ctx, progress, cancel);
            progress.Complete();
        }
        PerplexityTable.Print(o, Models, Texts, ppl);
        return null;
    }
}
