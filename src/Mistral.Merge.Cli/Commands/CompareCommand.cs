using System.CommandLine;
using System.Text.Json.Nodes;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>compare MODEL_A MODEL_B --text FILE [--ctx] [--stride] [--max-tokens]</c>: KL(A‖B), top-1 agreement, both perplexities.</summary>
public static class CompareCommand
{
    public static Command Create()
    {
        var modelA = new Argument<string>("MODEL_A") { Description = "Reference model folder or .gguf file (P in KL(P‖Q); its tokenizer is used); or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var modelB = new Argument<string>("MODEL_B") { Description = "Model folder or .gguf file to compare (Q), same vocabulary; or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var text = new Option<string>("--text") { Description = "UTF-8 text file", Required = true };
        var ctx = EvalCommon.Ctx();
        var stride = new Option<int?>("--stride") { Description = "Distance between window starts (default: --ctx)" };
        var maxTokens = EvalCommon.MaxTokens("Use only the first N tokens (with BOS); 0 = all");
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var device = EvalCommon.Device();
        var offload = EvalCommon.Offload();
        var weights = EvalCommon.Weights("Weights of MODEL_B: auto (as stored) or q8_0 (projections quantized to ggml Q8_0 at load, CPU): compare a model with its own q8_0 form");
        var cmd = new Command("compare", "Compare two models on the same text: per-token KL(A‖B) mean / p99 / max, top-1 agreement, both perplexities")
        { modelA, modelB, text, ctx, stride, maxTokens, threads, json, device, offload, weights };
        return cmd.CheckWindows(ctx, stride).WithAction((p, cancel) =>
        {
            int c = p.GetValue(ctx), s = p.GetValue(stride) ?? c;
            int nThreads = p.GetValue(threads);
            string dev = EvalCommon.CheckDevice(p.GetValue(device));
            string textPath = p.GetValue(text)!;
            string content = TextTokens.ReadText(textPath);
            using var a = TransformerModel.Load(ModelArguments.Resolve(p, modelA));
            using var b = TransformerModel.Load(ModelArguments.Resolve(p, modelB), EvalCommon.WeightsFor(p.GetValue(weights), dev, p.GetValue(offload)), nThreads);
            if (a.Shape.Vocab != b.Shape.Vocab)
                throw new MergeException($"{b.Path}: vocabulary of {b.Shape.Vocab} tokens, but {a.Path} has {a.Shape.Vocab}; KL needs the same tokenizer");
            var tok = TokenizerLoader.Load(a.Path);
            var ids = TextTokens.Encode(tok, content, p.GetValue(maxTokens), textPath);
            ContextBudget.CheckWindow(a, c, ids.Length, models: 2);
            ContextBudget.CheckWindow(b, c, ids.Length, models: 2);
            using var ba = EvalCommon.Backend(a, dev, nThreads, p.GetValue(offload));
            using var bb = EvalCommon.Backend(b, dev, nThreads, p.GetValue(offload));
            using var progress = Progress.For(p, "compare", "tokens");
            var r = Compare.Run(ba, bb, ids, c, s, progress.Report, cancel);
            progress.Complete();
            a.CheckUnchanged();
            b.CheckUnchanged();
            var o = p.InvocationConfiguration.Output;
            if (p.GetValue(json))
                CommonOptions.Print(p, new JsonObject
                {
                    ["version"] = CommonOptions.Version,
                    ["model_a"] = a.Path,
                    ["model_b"] = b.Path,
                    ["text"] = textPath,
                    ["ctx"] = c,
                    ["stride"] = s,
                    ["max_tokens"] = p.GetValue(maxTokens),
                    ["kl_mean"] = r.MeanKl,
                    ["kl_p99"] = r.P99Kl,
                    ["kl_max"] = r.MaxKl,
                    ["top1_agreement"] = r.Top1Agreement,
                    ["perplexity_a"] = r.A.Perplexity,
                    ["perplexity_b"] = r.B.Perplexity,
                    ["nll_a"] = r.A.MeanNll,
                    ["nll_b"] = r.B.MeanNll,
                    ["tokens"] = r.Tokens,
                    ["tokens_per_second"] = Math.Round(r.Seconds > 0 ? r.Tokens / r.Seconds : 0, 1),
                });
            else
            {
                TextTable.WriteFields(o,
                    ("KL(A‖B)", $"mean {EvalCommon.F(r.MeanKl, "0.000000")}   p99 {EvalCommon.F(r.P99Kl, "0.000000")}   max {EvalCommon.F(r.MaxKl, "0.000000")} nats"),
                    ("top-1 agreement", $"{EvalCommon.F(r.Top1Agreement * 100, "0.00")}%"),
                    ("perplexity A", $"{EvalCommon.F(r.A.Perplexity)}   ({a.Path})"),
                    ("perplexity B", $"{EvalCommon.F(r.B.Perplexity)}   ({b.Path})"),
                    ("tokens", $"{r.Tokens} scored of {ids.Length} (ctx {c}, stride {s}), {EvalCommon.F(r.Seconds, "0.00")} s"));
            }
            return Cli.Ok;
        });
    }
}
