using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.Inference.Gguf;
using Mistral.Merge.IO;
using Mistral.Merge.IO.Gguf;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>export-gguf MODEL OUT.gguf [--type] [--out-shard-size] [--force]</c>: a model folder as a GGUF file for llama.cpp.</summary>
public static class ExportGgufCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Input model folder (Mistral, Mixtral, Llama or Qwen2; safetensors or .bin, config.json, tokenizer); or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var output = new Argument<string>("OUT") { Description = "Output .gguf file (with --out-shard-size: OUT-00001-of-0000N.gguf when it needs several)" };
        var type = new Option<string>("--type")
        {
            Description = "Tensor type: f32, f16, bf16, q8_0 or q4_0 (norms, biases and the MoE router stay f32; a row not a multiple of 32 falls back to f16)",
            DefaultValueFactory = _ => "f16",
        }.OneOf([.. GgufTensorType.Names]);
        var shardSize = new Option<string?>("--out-shard-size")
        {
            Description = "Split into files of at most this size, named and keyed as llama.cpp's gguf-split does (e.g. 4GB); default: one file",
        }.Check(v => { if (v != null) ByteSize.Parse(v); });
        var force = new Option<bool>("--force") { Description = "Replace an existing output file" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json("out, files, architecture, tensors, parameters, bytes, tensor_types, seconds");
        var cmd = new Command("export-gguf", "Write a model as GGUF v3 (llama.cpp, Ollama, LM Studio): tensors renamed and converted one at a time, tokenizer and chat template included")
        {
            model, output, type, shardSize, force, threads, json,
        };
        return cmd.WithAction((p, token) =>
        {
            var options = new GgufExportOptions
            {
                Type = GgufTensorType.Parse(p.GetValue(type)!),
                ShardSize = p.GetValue(shardSize) is { } s ? ByteSize.Parse(s) : 0,
                Force = p.GetValue(force),
                Threads = p.GetValue(threads),
            };
            var outPath = p.GetValue(output)!;
            string folder = ModelArguments.Resolve(p, model);
            var sw = Stopwatch.StartNew();
            GgufExportResult result;
            using (var progress = Progress.For(p, "export-gguf", Progress.Bytes))
            {
                result = GgufExporter.Export(folder, outPath, options with { Progress = progress.IsQuiet ? null : progress.Report }, token);
                progress.Complete();
            }
            var types = string.Join(", ", result.TypeCounts.OrderBy(kv => kv.Key).Select(kv => $"{kv.Value} {GgmlTypes.Name(kv.Key)}"));
            var o = p.InvocationConfiguration.Output;
            if (p.GetValue(json))
            {
                var typeCounts = new JsonObject();
                foreach (var (t, n) in result.TypeCounts.OrderBy(kv => kv.Key)) typeCounts[GgmlTypes.Name(t)] = n;
                CommonOptions.Print(p, new JsonObject
                {
                    ["version"] = CommonOptions.Version,
                    ["model"] = p.GetValue(model),
                    ["type"] = p.GetValue(type)!.ToLowerInvariant(),
                    ["out"] = outPath,
                    ["files"] = new JsonArray([.. result.Files.Select(f => (JsonNode)f)]),
                    ["architecture"] = result.Architecture,
                    ["tensors"] = result.Tensors,
                    ["parameters"] = result.Parameters,
                    ["bytes"] = result.Bytes,
                    ["tensor_types"] = typeCounts,
                    ["seconds"] = Math.Round(sw.Elapsed.TotalSeconds, 3),
                });
                return Cli.Ok;
            }
            var ci = CultureInfo.InvariantCulture;
            o.WriteLine($"wrote {(result.Files.Count == 1 ? result.Files[0] : $"{result.Files.Count} files {result.Files[0]} …")}: GGUF {result.Architecture}, "
                + $"{result.Tensors} tensors ({types}), {result.Parameters.ToString("N0", ci)} parameters, {ByteSize.Format(result.Bytes)}, {sw.Elapsed.TotalSeconds.ToString("0.00", ci)} s");
            return Cli.Ok;
        });
    }
}
