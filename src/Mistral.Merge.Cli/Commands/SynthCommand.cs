using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>synth OUT (--config FILE | --arch ... dims)</c>: a seeded random-init checkpoint.</summary>
public static class SynthCommand
{
    public static Command Create()
    {
        var output = new Argument<string>("OUT") { Description = "Output model folder" };
        var config = new Option<string?>("--config") { Description = "Take the architecture and dimensions from this config.json (e.g. a real model's)" };
        var arch = new Option<string?>("--arch") { Description = "Architecture when no --config is given" }.OneOf(Architecture.All.Select(a => a.Name).ToArray());
        var hidden = new Option<int?>("--hidden") { Description = "hidden_size" }.AtLeast(1);
        var layers = new Option<int?>("--layers") { Description = "num_hidden_layers" }.AtLeast(1);
        var heads = new Option<int?>("--heads") { Description = "num_attention_heads" }.AtLeast(1);
        var kvHeads = new Option<int?>("--kv-heads") { Description = "num_key_value_heads (default: --heads)" }.AtLeast(1);
        var inter = new Option<int?>("--intermediate") { Description = "intermediate_size (per expert for MoE architectures)" }.AtLeast(1);
        var vocab = new Option<int?>("--vocab") { Description = "vocab_size" }.AtLeast(1);
        var experts = new Option<int?>("--experts") { Description = "number of experts (MoE architectures)" };
        var perTok = new Option<int?>("--experts-per-token") { Description = "experts routed per token (MoE architectures)" };
        var layersOverride = new Option<int?>("--layers-override") { Description = "Write this many layers instead of the config's num_hidden_layers (config.json is updated)" }.AtLeast(0);
        var dtype = new Option<string>("--dtype") { Description = "Weight dtype", DefaultValueFactory = _ => "bfloat16" }
            .OneOf(CommonOptions.DTypes, v => DTypes.ParseUser(v, "--dtype"));
        var seed = new Option<ulong>("--seed") { Description = "Random seed (same seed, same bytes)", DefaultValueFactory = _ => 0 };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "tokenizer.model to copy (tokenizer_config.json and special_tokens_map.json beside it are copied too), or 'byte-level' for the built-in 448-piece byte-level tokenizer" };
        var shardSize = CommonOptions.OutShardSize();
        var force = CommonOptions.Force();
        var json = CommonOptions.Json("config, seed, dtype, out, tensors, parameters, bytes, files, seconds");
        var threads = CommonOptions.Threads();

        var cmd = new Command("synth", "Write a seeded random-init checkpoint (HF tensor names, config.json) for benchmarks and tests")
        {
            output, config, arch, hidden, layers, heads, kvHeads, inter, vocab, experts, perTok, layersOverride, dtype, seed, tokenizer, shardSize, force, threads, json,
        };
        return cmd.WithAction((p, token) =>
        {
            ModelConfig cfg;
            var configPath = p.GetValue(config);
            if (configPath != null)
            {
                if (p.GetValue(arch) != null || p.GetValue(hidden) != null || p.GetValue(layers) != null || p.GetValue(heads) != null
                    || p.GetValue(kvHeads) != null || p.GetValue(inter) != null || p.GetValue(vocab) != null || p.GetValue(experts) != null || p.GetValue(perTok) != null)
                    throw new MergeException("synth: give either --config or --arch with dimensions, not both (use --layers-override to change the layer count)");
                if (!Path.Exists(configPath)) throw new MergeException($"--config: {configPath} not found");
                cfg = ModelConfig.Load(configPath);
            }
            else
            {
                var a = p.GetValue(arch) ?? throw new MergeException($"synth: give --config FILE or --arch {string.Join('|', Architecture.All.Select(x => x.Name))} with --hidden, --layers, --heads, --kv-heads, --intermediate and --vocab");
                int Need(Option<int?> o) => p.GetValue(o) ?? throw new MergeException($"synth --arch {a}: {o.Name} is required");
                int h = Need(hidden), l = Need(layers), nh = Need(heads);
                cfg = Synthesizer.MakeConfig(a, h, l, nh, p.GetValue(kvHeads) ?? nh, Need(inter), Need(vocab), p.GetValue(experts) ?? 0, p.GetValue(perTok) ?? 0);
            }
            var lo = p.GetValue(layersOverride);
            var options = new SynthOptions
            {
                LayersOverride = lo,
                DType = DTypes.ParseUser(p.GetValue(dtype)!, "--dtype"),
                Seed = p.GetValue(seed),
                TokenizerPath = p.GetValue(tokenizer) is var t && t != BuiltinTokenizer.Name ? t : null,
                TokenizerFiles = p.GetValue(tokenizer) == BuiltinTokenizer.Name ? BuiltinTokenizer.Files(cfg.VocabSize) : null,
                Writer = new WriterOptions { ShardSize = ByteSize.Parse(p.GetValue(shardSize)!), Force = p.GetValue(force) },
                Threads = p.GetValue(threads),
            };
            var outDir = p.GetValue(output)!;
            var sw = Stopwatch.StartNew();
            using (var progress = Progress.For(p, "synth", Progress.Bytes))
            {
                Synthesizer.Write(outDir, cfg, options with { Progress = progress.IsQuiet ? null : progress.Report }, token);
                progress.Complete();
            }
            Cli.ReportWritten(p.InvocationConfiguration.Output, outDir, sw.Elapsed,
                p.GetValue(json) ? new JsonObject { ["config"] = configPath, ["arch"] = cfg.ArchitectureName, ["seed"] = options.Seed, ["dtype"] = options.DType.ToTorchName() } : null);
            return Cli.Ok;
        });
    }
}
