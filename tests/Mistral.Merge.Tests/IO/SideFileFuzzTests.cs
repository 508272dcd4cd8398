using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mistral.Merge.Inference;
using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Planning;
using Mistral.Merge.Recipes;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.IO;

/// <summary>
/// Seeded mutations of every side file the library reads (config.json, tokenizer_config.json, tokenizer.model,
/// the shard index, recipes): the library entry point may only throw a one-line MergeException, and for a sample
/// the CLI must exit 1 with one "error: ..." line, never an internal error.
/// </summary>
public sealed class SideFileFuzzTests : IDisposable
{
    private const int Cases = 400, CliEvery = 20;
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    /// <summary>
    /// Writes each mutation to <paramref name="path"/> and runs <paramref name="load"/> (and sometimes <paramref name="cli"/>) on it.
    /// Recipe problems are the one exception to one line: every problem gets its own "file:line:column: ..." line.
    /// </summary>
    private static void Fuzz(string path, int seed, Func<Random, byte[]> mutate, Action load, Func<CliRunner.Result>? cli)
    {
        var rng = new Random(seed);
        var sw = Stopwatch.StartNew();
        int rejected = 0;
        for (int i = 0; i < Cases; i++)
        {
            var bytes = mutate(rng);
            File.WriteAllBytes(path, bytes);
            try { load(); }
            catch (MergeException e)
            {
                rejected++;
                if (e is RecipeException) Assert.All(e.Message.Split('\n'), l => Assert.StartsWith(path + ":", l));
                else Assert.DoesNotContain('\n', e.Message);
            }
            catch (Exception e)
            {
                Assert.Fail($"case {i}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}\nfor {Convert.ToBase64String(bytes)}");
            }
            if (cli != null && i % CliEvery == 0)
            {
                var r = cli();
                Assert.True(r.ExitCode is 0 or 1, $"case {i}: exit {r.ExitCode}: {r.Stderr}");
                Assert.DoesNotContain("internal error", r.Stderr);
                if (r.ExitCode == 1)
                {
                    var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                    Assert.True(lines[^1].StartsWith("error: ", StringComparison.Ordinal), $"case {i}: {r.Stderr}");
                    Assert.True(lines.Length == 1 || lines[..^1].All(l => l.StartsWith(path + ":", StringComparison.Ordinal)), $"case {i}: {r.Stderr}");
                }
            }
        }
        Assert.True(rejected > Cases / 10, $"only {rejected} of {Cases} mutations were rejected");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"{Cases} cases took {sw.Elapsed}");
    }

    private string TinyWithTokenizer()
    {
        var dir = _d["m"];
        var cfg = Synthesizer.MakeConfig("mixtral", 8, 2, 2, 1, 12, 512, experts: 2, expertsPerToken: 1);
        Synthesizer.Write(dir, cfg, new SynthOptions { TokenizerFiles = Mistral.Merge.Cli.BuiltinTokenizer.Files(512), DType = DType.F32 });
        return dir;
    }

    [Fact]
    public void ConfigJson()
    {
        var dir = TinyWithTokenizer();
        var path = Path.Combine(dir, "config.json");
        var valid = File.ReadAllText(path);
        Fuzz(path, 101, rng => Encoding.UTF8.GetBytes(TextMutator.Json(valid, rng)),
            () =>
            {
                var c = ModelConfig.Load(path);
                TransformerModel.ShapeOf(c, path);
                if ((long)c.NumHiddenLayers * (c.NumLocalExperts + 1) < 1000) Synthesizer.Plan(c, c.NumHiddenLayers, DType.BF16);
            },
            () => CliRunner.Run("inspect", dir));
    }

    [Fact]
    public void TokenizerConfigJson()
    {
        var dir = TinyWithTokenizer();
        var path = Path.Combine(dir, "tokenizer_config.json");
        var valid = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        valid["added_tokens_decoder"] = new JsonObject { ["0"] = new JsonObject { ["content"] = "<unk>", ["special"] = true } };
        valid["chat_template"] = "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}";
        var text = valid.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Fuzz(path, 202, rng => Encoding.UTF8.GetBytes(TextMutator.Json(text, rng)),
            () =>
            {
                TokenizerLoader.Load(dir).Encode("Hello <s> world", addBos: true);
                ChatTemplate.Resolve(ChatTemplate.Auto, dir).Render(ChatTemplate.Conversation("Hi", "S"), null);
            },
            () => CliRunner.Run("tokenize", dir, "hi"));
    }

    [Fact]
    public void TokenizerModel()
    {
        var dir = TinyWithTokenizer();
        var path = Path.Combine(dir, "tokenizer.model");
        var valid = File.ReadAllBytes(path);
        Fuzz(path, 303, rng => TextMutator.Bytes(valid, rng),
            () =>
            {
                var t = TokenizerLoader.Load(dir);
                var ids = t.Encode("Hello, wörld! 123", addBos: true);
                t.Decode(ids);
            },
            () => CliRunner.Run("tokenize", dir, "hi"));
    }

    [Fact]
    public void ShardIndex()
    {
        var dir = _d["sharded"];
        var cfg = Synthesizer.MakeConfig("mistral", 8, 2, 2, 1, 12, 16);
        Synthesizer.Write(dir, cfg, new SynthOptions { DType = DType.F32, Writer = new WriterOptions { ShardSize = 1024 } });
        var path = Path.Combine(dir, CheckpointWriter.IndexFileName);
        var valid = JsonNode.Parse(File.ReadAllText(path))!.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Fuzz(path, 404, rng => Encoding.UTF8.GetBytes(TextMutator.Json(valid, rng)),
            () => { using var m = ModelFolder.Open(dir); },
            () => CliRunner.Run("inspect", dir));
    }

    [Fact]
    public void RecipeYaml()
    {
        TinyModels.Write(_d["tiny-a"], 1);
        TinyModels.Write(_d["tiny-b"], 2);
        const string valid = "merge_method: ties\nbase_model: tiny-a\nmodels:\n  - model: tiny-a\n  - model: tiny-b\n    parameters:\n      weight: [0.2, 0.8]\n      density:\n        - filter: mlp\n          value: 0.5\n        - value: 0.7\nparameters:\n  normalize: true\ndtype: float32\nname: fuzz\n";
        var path = _d["recipe.yml"];
        Fuzz(path, 505, rng => Encoding.UTF8.GetBytes(TextMutator.Yaml(valid, rng)),
            () => MergePlanner.PlanFile(path).Dispose(),
            () => CliRunner.Run("merge", path, "--dry-run"));
    }
}
