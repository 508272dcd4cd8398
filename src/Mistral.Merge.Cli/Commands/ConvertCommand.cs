using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>convert MODEL OUT [--dtype] [--out-shard-size] [--force]</c>: streaming dtype conversion and resharding.</summary>
public static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Input model folder (single file, sharded with index, or several *.safetensors); or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var output = new Argument<string>("OUT") { Description = "Output model folder (must not be the input or contain it)" };
        var dtype = new Option<string?>("--dtype") { Description = "Convert F32/F16/BF16/F64 tensors to bfloat16, float16 or float32 (round to nearest even); default: keep dtypes, only reshard. Integer and FP8 tensors are copied unchanged" }
            .OneOf(CommonOptions.DTypes, v => { if (v != null) DTypes.ParseUser(v, "--dtype"); });
        var shardSize = CommonOptions.OutShardSize();
        var force = CommonOptions.Force();
        var json = CommonOptions.Json("out, tensors, parameters, bytes, files, seconds");
        var threads = CommonOptions.Threads();
        var cmd = new Command("convert", "Convert dtypes and reshard a checkpoint, streaming (bounded memory); copies config.json (torch_dtype updated) and tokenizer files")
        {
            model, output, dtype, shardSize, force, threads, json,
        };
        return cmd.WithAction((p, token) =>
        {
            var d = p.GetValue(dtype);
            var options = new ConvertOptions
            {
                DType = d == null ? null : DTypes.ParseUser(d, "--dtype"),
                Writer = new WriterOptions { ShardSize = ByteSize.Parse(p.GetValue(shardSize)!), Force = p.GetValue(force) },
                Threads = p.GetValue(threads),
            };
            var outDir = p.GetValue(output)!;
            var sw = Stopwatch.StartNew();
            using (var progress = Progress.For(p, "convert", Progress.Bytes))
            {
                CheckpointConverter.Convert(ModelArguments.Resolve(p, model), outDir, options with { Progress = progress.IsQuiet ? null : progress.Report }, token);
                progress.Complete();
            }
            Cli.ReportWritten(p.InvocationConfiguration.Output, outDir, sw.Elapsed,
                p.GetValue(json) ? new JsonObject { ["model"] = p.GetValue(model), ["dtype"] = d, ["out_shard_size"] = options.Writer.ShardSize } : null);
            return Cli.Ok;
        });
    }
}
