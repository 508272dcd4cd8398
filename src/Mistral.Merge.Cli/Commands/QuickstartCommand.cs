using System.CommandLine;

namespace Mistral.Merge.Cli.Commands;

/// <summary>
/// <c>quickstart [DIR]</c>: the whole job on a built-in default with no downloads: synthesize two small
/// models (with a built-in byte-level tokenizer), merge them with a SLERP recipe, inspect the result,
/// measure its perplexity on a built-in text and sample from it. Each step runs the real subcommand.
/// </summary>
public static class QuickstartCommand
{
    private const string Recipe = """
        # Quickstart: SLERP of two synthesized models, with separate t schedules for attention and MLP.
        merge_method: slerp
        base_model: tiny-a
        models:
          - model: tiny-a
          - model: tiny-b
        parameters:
          t:
            - filter: self_attn
              value: [0, 0.5, 1]
            - filter: mlp
              value: [1, 0.5, 0]
            - value: 0.5
        dtype: bfloat16
        """;

    private const string Text = """
        Once upon a time, there was a little robot named Bolt. Bolt lived in a small town by the sea.
        Every morning he walked to the harbour to watch the boats. One day he saw a seagull with a hurt wing.
        Bolt carried the bird home and made it a soft bed from an old scarf. After many days the wing was strong
        again, and the seagull flew high over the water. Bolt waved, and the bird came back every morning to say hello.
        """;

    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "Working folder (default: ./quickstart)", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => "quickstart" };
        var force = new Option<bool>("--force") { Description = "Replace the outputs of an earlier quickstart in DIR" };
        var cmd = new Command("quickstart", "Synthesize two small models, merge them (SLERP), inspect, evaluate perplexity and generate — no downloads") { dir, force };
        return cmd.WithAction((p, _) =>
        {
            var o = p.InvocationConfiguration.Output;
            var root = Path.GetFullPath(p.GetValue(dir)!);
            bool replace = p.GetValue(force);
            string[] f = replace ? ["--force"] : [];
            foreach (var sub in new[] { "tiny-a", "tiny-b", "merged" })
                IO.CheckpointWriter.CheckDestination(Path.Combine(root, sub), replace);
            var files = new[] { (Name: "recipe.yml", Text: Recipe + "\n"), (Name: "text.txt", Text: Text + "\n") };
            foreach (var (name, text) in files)
            {
                var path = Path.Combine(root, name);
                if (!replace && File.Exists(path) && File.ReadAllText(path) != text)
                    throw new MergeException($"{path}: exists and differs from the quickstart's (use --force to replace it)");
            }
            Directory.CreateDirectory(root);
            foreach (var (name, text) in files) File.WriteAllText(Path.Combine(root, name), text);

            string[] dims = ["--arch", "mistral", "--hidden", "128", "--layers", "4", "--heads", "8", "--kv-heads", "4",
                "--intermediate", "344", "--vocab", "448", "--tokenizer", BuiltinTokenizer.Name];
            string[][] steps =
            [
                ["synth", Path.Combine(root, "tiny-a"), .. dims, "--seed", "1", .. f],
                ["synth", Path.Combine(root, "tiny-b"), .. dims, "--seed", "2", .. f],
                ["merge", Path.Combine(root, "recipe.yml"), Path.Combine(root, "merged"), .. f],
                ["inspect", Path.Combine(root, "merged")],
                ["perplexity", Path.Combine(root, "merged"), "--text", Path.Combine(root, "text.txt"), "--ctx", "64"],
                ["compare", Path.Combine(root, "tiny-a"), Path.Combine(root, "merged"), "--text", Path.Combine(root, "text.txt"), "--ctx", "64"],
                ["generate", Path.Combine(root, "merged"), "--prompt", "Once upon a time", "--max-new-tokens", "24", "--temperature", "0"],
            ];
            foreach (var step in steps)
            {
                o.WriteLine();
                o.WriteLine("$ mistral-merge " + string.Join(' ', step.Select(a => a.Contains(' ') ? $"\"{a}\"" : a)));
                int rc = Program.BuildRoot().Parse(step).Invoke(p.InvocationConfiguration);
                if (rc != 0) return rc;
            }
            o.WriteLine();
            o.WriteLine($"quickstart done: models, recipe and merge are in {root}. Random weights, so the text is noise; try the recipes in examples/ next.");
            return Cli.Ok;
        });
    }
}
