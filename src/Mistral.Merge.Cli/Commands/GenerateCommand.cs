using System.CommandLine;
using System.Text.Json.Nodes;
using Mistral.Merge.Inference;
using Mistral.Merge.Inference.Tokenization;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>generate MODEL (--prompt TEXT | --messages FILE.json) [--chat-template auto] …</c>: streams a continuation.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Model folder (Mistral, Mixtral or Llama; F32/F16/BF16 safetensors), or a .gguf file (f32/f16/bf16/q8_0/q4_0, CPU); or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var prompt = new Option<string?>("--prompt") { Description = "The prompt text (one user message)" };
        var messages = new Option<string?>("--messages") { Description = "A JSON file with a list of {\"role\", \"content\"} messages (instead of --prompt)" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => 128 }.AtLeast(0);
        // Sampling options are nullable: a value not given falls back to generation_config.json, then to the tool's default.
        // Each is checked on its own, by the library's rule, against the other settings' defaults.
        var temperature = new Option<float?>("--temperature") { Description = "Softmax temperature; 0 = greedy (default: generation_config.json, else 0.7)" }
            .Check(v => { if (v is { } t) new SamplingOptions { Temperature = t }.Validate(); });
        var topK = new Option<int?>("--top-k") { Description = "Sample only from the k most likely tokens, 0 = off (default: generation_config.json, else 0)" }
            .Check(v => { if (v is { } k) new SamplingOptions { TopK = k }.Validate(); });
        var topP = new Option<float?>("--top-p") { Description = "Nucleus sampling: the smallest set of tokens with probability ≥ p, 1 = off (default: generation_config.json, else 1)" }
            .Check(v => { if (v is { } pp) new SamplingOptions { TopP = pp }.Validate(); });
        var penalty = new Option<float?>("--repetition-penalty") { Description = "HF repetition penalty over prompt and output, 1 = off (default: generation_config.json, else 1)" }
            .Check(v => { if (v is { } r) new SamplingOptions { RepetitionPenalty = r }.Validate(); });
        var seed = new Option<ulong?>("--seed") { Description = "Random seed: the same seed gives the same output" };
        var template = new Option<string>("--chat-template")
        {
            Description = "auto (the model's own Jinja template, none if it has none), none, a built-in format, or a .jinja file",
            DefaultValueFactory = _ => ChatTemplate.Auto,
            HelpName = string.Join('|', ChatTemplate.Choices) + "|FILE.jinja",
        }.Check(v => { if (ChatTemplate.Problem(v) is { } bad) throw new MergeException(bad); });
        var system = new Option<string?>("--system") { Description = "System prompt: added as the first message, or replacing the system message of --messages" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var device = EvalCommon.Device();
        var offload = EvalCommon.Offload();
        var weights = EvalCommon.Weights("auto: the weights as stored; q8_0: every projection quantized to ggml Q8_0 at load (CPU; llama.cpp-style integer dot products in decode)");
        var cmd = new Command("generate", "Generate text from a prompt or a conversation with a KV cache, streaming it as it is produced; stops at EOS")
        { model, prompt, messages, maxNew, temperature, topK, topP, penalty, seed, template, system, threads, json, device, offload, weights };
        cmd.Check(r =>
        {
            bool hasPrompt = r.GetResult(prompt) != null, hasMessages = r.GetResult(messages) != null;
            if (hasPrompt == hasMessages) throw new MergeException("generate needs exactly one of --prompt and --messages");
        });
        return cmd.WithAction((p, cancel) =>
        {
            int budget = p.GetValue(maxNew);
            int nThreads = p.GetValue(threads);
            string dev = EvalCommon.CheckDevice(p.GetValue(device));
            var conversation = p.GetValue(messages) is { } file
                ? ChatTemplate.WithSystem(ChatTemplate.ReadMessages(file), p.GetValue(system))
                : ChatTemplate.Conversation(p.GetValue(prompt)!, p.GetValue(system));
            string folder = ModelArguments.Resolve(p, model);
            using var m = TransformerModel.Load(folder, EvalCommon.WeightsFor(p.GetValue(weights), dev, p.GetValue(offload)), nThreads);
            var chat = ChatTemplate.Resolve(p.GetValue(template)!, m.Path);
            var generationConfig = GenerationConfig.Load(m.Path);
            var tok = TokenizerLoader.Load(m.Path);
            var tokens = TokenizerLoader.Config(m.Path);
            var promptText = chat.Render(conversation, tokens);
            // The rendered text holds its special tokens as text; BOS is added only when the template did not write it.
            bool addBos = tok.AddBosByDefault && !(chat.Template != null && tokens.BosToken is { Length: > 0 } bos && promptText.StartsWith(bos, StringComparison.Ordinal));
            var ids = chat.Template != null ? tok.EncodeWithSpecialTokens(promptText, addBos) : tok.Encode(promptText, addBos);
            var settings = GenerationSettings.Resolve(generationConfig, p.GetValue(temperature), p.GetValue(topK), p.GetValue(topP), p.GetValue(penalty), tok.EosId);
            var options = settings.Options(p.GetValue(seed));
            int allowed = ContextBudget.GenerationBudget(m, ids.Length, budget, out bool clipped);
            using var backend = EvalCommon.Backend(m, dev, nThreads, p.GetValue(offload));
            var sampler = new Sampler(options, m.Shape.Vocab);
            var o = p.InvocationConfiguration.Output;
            bool asJson = p.GetValue(json);
            var r = Generator.Generate(backend, tok, ids, allowed, sampler, asJson ? null : s => { o.Write(s); o.Flush(); }, settings.StopIds, cancel);
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
                    ["sampling"] = new JsonObject
                    {
                        ["temperature"] = Described(settings.Temperature.Value, settings.Temperature.Source),
                        ["top_k"] = Described(settings.TopK.Value, settings.TopK.Source),
                        ["top_p"] = Described(settings.TopP.Value, settings.TopP.Source),
                        ["repetition_penalty"] = Described(settings.RepetitionPenalty.Value, settings.RepetitionPenalty.Source),
                    },
                    ["stop_ids"] = new JsonArray([.. settings.StopIds.Select(i => (JsonNode)i)]),
                    ["generation_config"] = generationConfig.Path,
                    ["prompt"] = promptText,
                    ["prompt_ids"] = new JsonArray([.. ids.Select(i => (JsonNode)i)]),
                    ["ids"] = new JsonArray([.. r.Ids.Select(i => (JsonNode)i)]),
                    ["text"] = r.Text,
                    ["stopped_at_eos"] = r.StoppedAtEos,
                    ["stopped_at_context"] = atContext,
                    ["chat_template"] = chat.Name,
                    ["chat_template_source"] = chat.Source,
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

    private static JsonObject Described<T>(T value, string source) => new() { ["value"] = JsonValue.Create(value), ["source"] = source };
}
