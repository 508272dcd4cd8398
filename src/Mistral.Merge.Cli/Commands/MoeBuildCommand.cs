using System.CommandLine;
using System.Text.Json.Nodes;
using Mistral.Merge.Moe.Build;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>moe-build CONFIG OUT</c>: mergekit-moe — a Mixtral from dense Llama/Mistral experts and a YAML config (docs/moe.md).</summary>
public static class MoeBuildCommand
{
    public static Command Create()
    {
        var config = new Argument<string>("CONFIG") { Description = "mergekit-moe YAML config (base_model, experts with source_model and positive_prompts, gate_mode, dtype, experts_per_token)" };
        var output = new Argument<string>("OUT") { Description = "Output folder" };
        var shard = CommonOptions.OutShardSize();
        var force = CommonOptions.Force();
        var noTok = new Option<bool>("--no-copy-tokenizer") { Description = "Do not copy the base model's tokenizer files" };
        var seed = new Option<ulong>("--seed", "--random-seed") { Description = "Seed of gate_mode random / uniform_random and of noise_scale (mergekit draws them from torch's global state)", DefaultValueFactory = _ => 0 };
        var allowSame = new Option<bool>("--i-understand-this-is-not-useful-without-training") { Description = "Build even when every expert is the same model (mergekit's flag)" };
        var cache = new Option<string?>("--transformers-cache") { Description = "Hugging Face cache folder to find hub models in" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json("out, layers, experts, experts_per_token, gate_mode, parameters, dtype");
        var cmd = new Command("moe-build", "Build a Mixtral from dense Llama/Mistral models with a mergekit-moe config: attention from the base, one expert per model's MLP, routers from prompts (gate_mode hidden, cheap_embed, random, uniform_random)")
        { config, output, shard, force, noTok, seed, allowSame, cache, threads, json };
        return cmd.WithAction((p, token) =>
        {
            var err = p.InvocationConfiguration.Error;
            bool quiet = CommonOptions.IsQuiet(p);
            var path = p.GetValue(config)!;
            using var downloads = new LazyProgress(p, "download");
            var o = new MoeBuildOptions
            {
                Writer = new IO.WriterOptions { ShardSize = IO.ByteSize.Parse(p.GetValue(shard)!), Force = p.GetValue(force) },
                CopyTokenizer = !p.GetValue(noTok),
                Seed = p.GetValue(seed),
                AllowAllSame = p.GetValue(allowSame),
                Threads = p.GetValue(threads),
                Hub = ModelArguments.Options(p, downloads, p.GetValue(cache)),
                Log = quiet ? null : line => err.WriteLine(line),
            };
            var problems = new Recipes.RecipeProblems(path);
            var c = MoeBuildConfigReader.ReadFile(path, problems);
            problems.ThrowIfAny();
            var r = MoeBuilder.Build(c, p.GetValue(output)!, o, token);
            var outp = p.InvocationConfiguration.Output;
            if (p.GetValue(json))
            {
                var j = new JsonObject
                {
                    ["version"] = CommonOptions.Version, ["out"] = r.Destination, ["layers"] = r.Layers, ["experts"] = r.Experts,
                    ["experts_per_token"] = r.ExpertsPerToken, ["gate_mode"] = MoeBuildConfig.ModeName(c.GateMode), ["parameters"] = r.Parameters,
                    ["dtype"] = r.OutDType?.ToTorchName(),
                };
                outp.WriteLine(IO.JsonText.Write(j));
            }
            else outp.WriteLine($"wrote {r.Destination}: Mixtral, {r.Layers} layers × {r.Experts} experts (top-{r.ExpertsPerToken}), gate_mode {MoeBuildConfig.ModeName(c.GateMode)}, {r.Parameters:N0} parameters");
            return Cli.Ok;
        });
    }
}
