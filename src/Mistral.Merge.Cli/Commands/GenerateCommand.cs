using System.CommandLine;
using System.Text.Json.Nodes;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>generate MODEL --prompt TEXT [--max-new-tokens 128] [--temperature 0.7] …</c>: streams a continuation.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Model folder (Mistral, Mixtral or Llama; F32/F16/BF16 safetensors), or a .gguf file (f32/f16/bf16/q8_0/q4_0, CPU)" };
        var prompt = new Option<string>("--prompt") { Description = "The prompt text", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => 128 }.AtLeast(0);
        // Each sampling option is checked on its own, by the library's rule, against the other settings' defaults.
        var temperature = new Option<float>("--temperature") { Description = "Softmax temperature; 0 = greedy (deterministic)", DefaultValueFactory = _ => 0.7f }
            .Check(v => new SamplingOptions { Temperature = v }.Validate());
        var topK = new Option<int>("--top-k") { Description = "Sample only from the k most likely tokens (0 = off)", DefaultValueFactory = _ => 0 }
            .Check(v => new SamplingOptions { TopK = v }.Validate());
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling: the smallest set of tokens with probability ≥ p (1 = off)", DefaultValueFactory = _ => 1f }
            .Check(v => new SamplingOptions { TopP = v }.Validate());
        var penalty = new Option<float>("--repetition-penalty") { Description = "HF repetition penalty over prompt and output (1 = off)", DefaultValueFactory = _ => 1f }
            .Check(v => new SamplingOptions { RepetitionPenalty = v }.Validate());
        var seed = new Option<ulong?>("--seed") { Description = "Random seed: the same seed gives the same output" };
        var template = new Option<string>("--chat-template") { Description = "auto (from tokenizer_config.json), mistral, chatml or none", DefaultValueFactory = _ => "auto" }
            .OneOf("auto", "mistral", "chatml", "none");
        var system = new Option<string?>("--system") { Description = "System prompt (with a chat template)" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var device = EvalCommon.Device();
        var offload = EvalCommon.Offload();
        var cmd = new Command("generate", "Generate text from a prompt with a KV cache, streaming it as it is produced; stops at EOS")
        { model, prompt, maxNew, temperature, topK, topP, penalty, seed, template, system, threads, json, device, offload };
        return cmd.WithAction((p, cancel) =>
        {
            var options = new SamplingOptions
            {
                Temperature = p.GetValue(temperature), TopK = p.GetValue(topK), TopP = p.GetValue(topP),
                RepetitionPenalty = p.GetValue(penalty), Seed = p.GetValue(seed),
            };
            int budget = p.GetValue(maxNew);
            int nThreads = p.GetValue(threads);
            string dev = EvalCommon.CheckDevice(p.GetValue(device));
            string folder = p.GetValue(model)!;
            using var m = TransformerModel.Load(folder);
            var kind = ChatTemplate.Parse(p.GetValue(template)!, m.Path);
            var tok = TokenizerLoader.Load(m.Path);
            var promptText = ChatTemplate.Apply(kind, p.GetValue(prompt)!, p.GetValue(system));
            var ids = tok.Encode(promptText, addBos: true);
            int allowed = ContextBudget.GenerationBudget(m, ids.Length, budget, out bool clipped);
            using var backend = EvalCommon.Backend(m, dev, nThreads, p.GetValue(offload));
            var sampler = new Sampler(options, m.Shape.Vocab);
            var o = p.InvocationConfiguration.Output;
            bool asJson = p.GetValue(json);
            var r = Generator.Generate(backend, tok, ids, allowed, sampler, asJson ? null : s => { o.Write(s); o.Flush(); }, cancel);
            m.CheckUnchanged();
            bool atContext = clipped && !r.StoppedAtEos && r.Ids.Length == allowed;
            if (asJson)
                CommonOptions.Print(p, new JsonObject
                {
                    ["version"] = CommonOptions.Version,
                    ["model"] = m.Path,
                    ["max_new_tokens"] = budget,
                    ["temperature"] = options.Temperature,
                    ["seed"] = options.Seed,
                    ["prompt"] = promptText,
                    ["prompt_ids"] = new JsonArray([.. ids.Select(i => (JsonNode)i)]),
                    ["ids"] = new JsonArray([.. r.Ids.Select(i => (JsonNode)i)]),
                    ["text"] = r.Text,
                    ["stopped_at_eos"] = r.StoppedAtEos,
                    ["stopped_at_context"] = atContext,
                    ["chat_template"] = kind.ToString().ToLowerInvariant(),
                    ["prefill_tokens_per_second"] = Math.Round(r.PrefillTokensPerSecond, 1),
                    ["decode_tokens_per_second"] = Math.Round(r.DecodeTokensPerSecond, 1),
                });
            else
            {
                o.WriteLine();
                if (!CommonOptions.IsQuiet(p)) p.InvocationConfiguration.Error.WriteLine(
                    $"[{r.Ids.Length} tokens{(r.StoppedAtEos ? ", stopped at EOS" : "")}{(atContext ? $", stopped at the model's context of {ContextBudget.ModelContext(m)} tokens" : "")}; prefill {ids.Length} tokens at {EvalCommon.F(r.PrefillTokensPerSecond, "0.0")} tokens/s, decode {EvalCommon.F(r.DecodeTokensPerSecond, "0.0")} tokens/s, {backend.Name}]");
            }
            return Cli.Ok;
        });
    }
}
