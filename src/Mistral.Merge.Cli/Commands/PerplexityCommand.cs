using System.CommandLine;
using System.Text.Json.Nodes;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>perplexity MODEL --text FILE [--ctx 512] [--stride N] [--max-tokens N]</c>.</summary>
public static class PerplexityCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Model folder (Mistral, Mixtral or Llama; F32/F16/BF16 safetensors), or a .gguf file (f32/f16/bf16/q8_0/q4_0, CPU); or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var text = new Option<string>("--text") { Description = "UTF-8 text file to score", Required = true };
        var ctx = EvalCommon.Ctx();
        var stride = new Option<int?>("--stride") { Description = "Distance between window starts (default: --ctx, non-overlapping)" };
        var maxTokens = EvalCommon.MaxTokens("Use only the first N tokens (with BOS) of the text; 0 = all");
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var device = EvalCommon.Device();
        var offload = EvalCommon.Offload();
        var weights = EvalCommon.Weights("auto: the weights as stored; q8_0: every projection quantized to ggml Q8_0 at load (CPU; llama.cpp-style integer dot products in decode)");
        var cmd = new Command("perplexity", "Perplexity of a model on a text: BOS + the tokenized text in windows of --ctx tokens, PPL = exp(mean NLL)")
        { model, text, ctx, stride, maxTokens, threads, json, device, offload, weights };
        return cmd.CheckWindows(ctx, stride).WithAction((p, cancel) =>
        {
            int c = p.GetValue(ctx), s = p.GetValue(stride) ?? c;
            int nThreads = p.GetValue(threads);
            string dev = EvalCommon.CheckDevice(p.GetValue(device));
            string textPath = p.GetValue(text)!;
            string content = TextTokens.ReadText(textPath);
            using var m = TransformerModel.Load(ModelArguments.Resolve(p, model), EvalCommon.WeightsFor(p.GetValue(weights), dev, p.GetValue(offload)), nThreads);
            var tok = TokenizerLoader.Load(m.Path);
            var ids = TextTokens.Encode(tok, content, p.GetValue(maxTokens), textPath);
            ContextBudget.CheckWindow(m, c, ids.Length);
            using var backend = EvalCommon.Backend(m, dev, nThreads, p.GetValue(offload));
            using var progress = Progress.For(p, "perplexity", "tokens");
            var r = Perplexity.Evaluate(backend, ids, c, s, progress.Report, cancel);
            progress.Complete();
            m.CheckUnchanged();
            var o = p.InvocationConfiguration.Output;
            if (p.GetValue(json))
                CommonOptions.Print(p, new JsonObject
                {
                    ["version"] = CommonOptions.Version,
                    ["model"] = m.Path,
                    ["text"] = textPath,
                    ["ctx"] = c,
                    ["stride"] = s,
                    ["max_tokens"] = p.GetValue(maxTokens),
                    ["perplexity"] = r.Perplexity,
                    ["nll"] = r.MeanNll,
                    ["tokens"] = r.Tokens,
                    ["tokens_per_second"] = Math.Round(r.TokensPerSecond, 1),
                });
            else
            {
                TextTable.WriteFields(o,
                    ("perplexity", EvalCommon.F(r.Perplexity)),
                    ("mean NLL", $"{EvalCommon.F(r.MeanNll, "0.000000")} nats"),
                    ("tokens", $"{r.Tokens} scored of {ids.Length} (ctx {c}, stride {s})"),
                    ("speed", $"{EvalCommon.F(r.TokensPerSecond, "0.0")} tokens/s ({EvalCommon.F(r.Seconds, "0.00")} s, {backend.Name})"));
            }
            return Cli.Ok;
        });
    }
}
